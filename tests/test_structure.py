"""The package's structure, checked from its source (issue 37, "Done when").

No import cycle between ``defectnet`` modules (function-level imports included), no function
over 80 lines, no private name imported across modules or by a benchmark, and every committed
benchmark result names the commit and the command that made it. The allow-lists below are the
known exceptions, each with its reason; they only shrink.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "defectnet"
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"

MAX_FUNCTION_LINES = 80

#: Import edges allowed to close a cycle. The CLI's deliberate lazy imports (each subcommand
#: imports its library module inside ``run``, for start-up time) close none: the subcommand
#: modules take their shared base from ``defectnet.output``, not from ``defectnet.cli``.
ALLOWED_EDGES: set[tuple[str, str]] = set()

#: Committed results that are not the output of one command, with the reason.
RESULTS_WITHOUT_COMMAND = {
    # An investigation's write-up (2026-11-22); its scratch scripts were not kept.
    "tier-gap/REPORT.md",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names, resolving relative imports."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


#: A deferred import by name, as the package's registries spell it: ``"defectnet.model.x:Class"``.
DEFERRED = re.compile(r"^(defectnet(?:\.\w+)+):(\w+)$")


def _imports(module: str, path: Path):
    """Every ``(imported module, [names])`` in ``path``, at any depth (function-level too).

    A string ``"defectnet.mod:Name"`` (registries that import on first use) counts as importing
    ``Name`` from ``defectnet.mod``. The package's lazy re-exports (``defectnet._LAZY``) do not:
    they are plain module names, and ``defectnet/__init__`` imports none of them itself.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and DEFERRED.match(node.value):
            target, name = DEFERRED.match(node.value).groups()
            yield target, [name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield _absolute(module, node, is_package), [a.name for a in node.names]


def _import_graph() -> dict[str, set[str]]:
    """``{module: modules of defectnet it imports}``; ``from pkg import mod`` is an edge to ``pkg.mod``."""
    sources = _sources()
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for module, path in sources.items():
        for target, names in _imports(module, path):
            if target not in sources:
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in sources]
            # ``from defectnet.data import config`` depends on the submodule, not on the package.
            graph[module].update(subs or [target])
            if len(subs) < len(names):
                graph[module].add(target)
    for module in graph:
        graph[module].discard(module)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = _import_graph()
    for a, b in ALLOWED_EDGES:
        graph[a].discard(b)
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles between defectnet modules: " + "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a}->{b}" for a in c for b in sorted(graph[a]) if b in c) + ")"
        for c in cycles)


def test_allowed_edges_exist():
    graph = _import_graph()
    stale = {e for e in ALLOWED_EDGES if e[1] not in graph[e[0]]}
    assert not stale, f"allowed import edges that no longer exist (drop them): {sorted(stale)}"


def _functions(tree: ast.Module, prefix: str = ""):
    """``(qualified name, node)`` of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from _functions(node, name + ".")
        else:
            yield from _functions(node, prefix)


def _long_functions() -> dict[str, int]:
    out = {}
    for module, path in _sources().items():
        for name, node in _functions(_tree(path)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            span = node.end_lineno - first + 1
            if span > MAX_FUNCTION_LINES:
                out[f"{module}:{name}"] = span
    return out


def test_no_long_functions():
    long = _long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _private_imports() -> set[str]:
    """``"importer -> module.name"`` for every ``_name`` imported from another module."""
    files = _sources() | {f"benchmarks.{p.stem}": p for p in sorted(BENCHMARKS.glob("*.py"))}
    out = set()
    for module, path in files.items():
        for target, names in _imports(module, path):
            if target == module or not target.startswith("defectnet"):
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    out.add(f"{module} -> {target}.{name}")
    return out


def test_no_private_names_across_modules():
    found = _private_imports()
    assert not found, "private names imported across modules (make them public or move them): " + ", ".join(
        sorted(found))


def _results() -> list[Path]:
    return sorted(p for p in RESULTS.rglob("*") if p.suffix in (".json", ".md"))


def _named_provenance(path: Path) -> bool:
    """Whether a result file names the commit and the command that made it.

    JSON: a ``provenance`` object (top level, or in ``meta``) with a ``commit`` and a ``command``,
    as :func:`defectnet.provenance.provenance` writes. Markdown: a line naming ``commit <sha>``
    and a command in backticks. Provenance added by hand says so in the record ("inferred").
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return any(re.search(r"\bcommit\s+[0-9a-f]{7,40}\b", line, re.I) and re.search(r"`[^`]+`", line)
                   for line in text.splitlines())
    data = json.loads(text)
    prov = data.get("provenance") or data.get("meta", {}).get("provenance") if isinstance(data, dict) else None
    return bool(prov and re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", str(prov.get("commit"))) and prov.get("command"))


def test_results_name_commit_and_command():
    missing = [str(p.relative_to(RESULTS)) for p in _results()
               if str(p.relative_to(RESULTS)) not in RESULTS_WITHOUT_COMMAND and not _named_provenance(p)]
    assert not missing, f"result files that do not name their commit and command: {missing}"


def test_results_in_one_folder_per_benchmark():
    flat = sorted(p.name for p in RESULTS.iterdir() if p.is_file())
    assert not flat, f"results lie flat in benchmarks/results (move them to results/<script>/): {flat}"


def test_results_without_command_exist():
    stale = {p for p in RESULTS_WITHOUT_COMMAND if not (RESULTS / p).exists()}
    assert not stale, f"no longer committed (drop them): {sorted(stale)}"
