"""Every benchmark script imports and parses its arguments: ``main(["--help"])`` prints its usage and exits 0.

The benchmarks' numbers live in ``benchmarks/results``; this only catches a script broken by a change
elsewhere (a moved function, a renamed option) before someone needs its numbers.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py"))


def load(path: Path, monkeypatch):
    """The script as a module, its folder on sys.path (scripts import their siblings) as when run."""
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_script_is_covered():
    assert len(SCRIPTS) >= 25 and all(p.read_text().count("def main(argv=None)") == 1 for p in SCRIPTS), \
        [p.name for p in SCRIPTS if p.read_text().count("def main(argv=None)") != 1]


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_the_script_imports_and_parses_its_arguments(path, capsys, monkeypatch):
    module = load(path, monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and (module.__doc__ or "").split("\n")[0].strip()[:40] in " ".join(out.split())
