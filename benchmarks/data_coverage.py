"""Coverage of the training data (issue 35): every curated library host, by family, in the data or why not.

For each curated host of the library (``defectnet hosts list source=curated``): its structure
family (the library's prototype, its chemical family beside it), the committed files that hold
its spectra and how many, whether it has a committed signature basis, whether a benchmark holds
it out (and in which set), and, for a host the training data does not hold, the reason: the
failure a generation store or a committed file records (imaginary modes at Γ, a failed
relaxation, unstable patches), ``in progress in data/cur.sqlite (n/N samples)`` for a host a
running store holds, or ``not generated yet``. Then per family: the curated hosts, those in the
data and those with a basis, and the same counts over every host of the data (curated or not),
flagging the families with fewer than two training hosts (the issue's target: every family of
the library represented by at least two).

Only names are read (the training files' ``host_names``, ``host_id`` and attributes, the basis
file names, the stores' rows opened read-only), so it takes seconds. Relative paths are taken
from the working directory, so the command below can read another checkout's data (its
uncommitted stores) and still write its results into this one:

    python benchmarks/data_coverage.py
    cd /path/to/checkout && python /path/to/this/benchmarks/data_coverage.py

Writes ``benchmarks/results/coverage/coverage.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The held-out sets the conditioned network never trains on: a host in them is no training host.
CONDITIONED_SETS = ("conditioned.py TEST_HOSTS", "conditioned.py FAMILY_TEST_HOSTS", "conditioned.py CURATED_TEST_HOSTS")
#: Keys of a training config's ``split`` that name held-out hosts.
SPLIT_KEYS = ("ood_hosts", "calib_hosts")
#: Status of a curated host, in the order the summary counts them.
STATUSES = ("in data", "failed", "in progress", "stopped", "not generated")


class Names:
    """Data names → library names (aliases resolved), remembering the names the library lacks.

    Parameters
    ----------
    library : defectnet.hosts.HostLibrary
        The host library in use.
    """

    def __init__(self, library):
        self.library = library
        self.unknown: set[str] = set()
        self.aliased: dict[str, str] = {}
        self.candidates: set[str] = set()
        self.built = {h.name for h in library.hosts}

    def __call__(self, name: str) -> str:
        from defectnet.errors import DefectnetError

        try:
            host = self.library.get(name)
        except DefectnetError:
            self.unknown.add(name)
            return name
        if host.name != name:
            self.aliased[name] = host.name
        if host.name not in self.built:
            self.candidates.add(host.name)
        return host.name

    def family(self, name: str) -> str:
        """The prototype of library host ``name``, ``?`` for a name the library lacks."""
        return "?" if name in self.unknown else self.library.get(name).prototype


def file_hosts(path: Path) -> dict:
    """Spectra per host and the recorded failures of one training file, from names only.

    Parameters
    ----------
    path : Path
        A training file (``.h5`` or ``.npz``, as ``defectnet dataset export`` writes it).

    Returns
    -------
    dict
        ``spectra`` {host: count} (a host listed with no spectrum at 0), ``failed`` {host:
        reason}, ``incomplete`` [host], ``tier`` and ``potential``, as the file records them.
    """
    keys = ("failed_hosts", "incomplete_hosts", "tier", "potential")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names, host_id = [str(x) for x in z["host_names"]], z["host_id"]
            attrs = {k: z[k].item() for k in keys if k in z.files}
    else:
        import h5py

        with h5py.File(path, "r") as f:
            names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["host_names"][()]]
            host_id, attrs = f["host_id"][()], {k: f.attrs[k] for k in keys if k in f.attrs}
    counts = np.bincount(np.asarray(host_id, int), minlength=len(names))
    return {"spectra": dict(zip(names, counts.tolist())), "failed": json.loads(attrs.get("failed_hosts", "{}")),
            "incomplete": json.loads(attrs.get("incomplete_hosts", "[]")), "tier": attrs.get("tier"),
            "potential": attrs.get("potential")}


def committed_data(paths, names: Names) -> dict:
    """What a set of committed training files holds, per library host name.

    Parameters
    ----------
    paths : list of Path
        The files (:func:`defectnet.data.training_file.training_file_paths`).
    names : Names
        Resolves the files' host names.

    Returns
    -------
    dict
        ``spectra`` {host: {file: count}} (files with none left out), ``listed`` {host: [file]}
        of the files that list a host without a spectrum, ``failed`` {host: {reason: [file]}},
        ``done`` (hosts a file holds with all their samples) and ``settings`` ({(tier, potential)}).
    """
    from defectnet.data.training_file import training_file_hosts

    out = {"spectra": defaultdict(dict), "listed": defaultdict(list), "failed": defaultdict(lambda: defaultdict(list)),
           "done": set(), "settings": set()}
    for path in paths:
        label, rec = f"{path.parent.name}/{path.name}", file_hosts(path)
        for name, n in rec["spectra"].items():
            if n:
                out["spectra"][names(name)][label] = n
            else:
                out["listed"][names(name)].append(label)
        for name, reason in rec["failed"].items():
            out["failed"][names(name)][reason].append(label)
        out["done"] |= {names(n) for n in training_file_hosts(path)[0]}
        out["settings"].add((rec["tier"], rec["potential"]))
    return out


#: Rows of a store per host, status and failure reason.
ROW_COUNTS = {
    "samples": "SELECT host, status, reason, COUNT(*) FROM samples GROUP BY 1, 2, 3",
    "patches": "SELECT h.name, p.status, p.reason, COUNT(*) FROM patches p JOIN hosts h ON h.id = p.host_id "
               "GROUP BY 1, 2, 3",
}


def store_record(path: Path, names: Names) -> dict:
    """What one generation store holds, read with SQLite's read-only mode (a running job may write it).

    Parameters
    ----------
    path : Path
        A ``defectnet generate`` store (``.sqlite``).
    names : Names
        Resolves its host names.

    Returns
    -------
    dict
        ``path``, ``tier``, ``potential``, ``samples_per_host``, ``run`` (the status of its last
        run: ``running``, ``interrupted``, ...) and ``hosts`` {host: {status, reason, error,
        samples {reason or 'ok': count}, patches {reason or 'ok': count}}}.
    """
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        config = json.loads(dict(con.execute("SELECT key, value FROM meta")).get("config") or "{}")
        run = con.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        hosts = {names(n): {"status": s, "reason": r, "error": e, "samples": {}, "patches": {}}
                 for n, s, r, e in con.execute("SELECT name, status, reason, error FROM hosts")}
        for table, sql in ROW_COUNTS.items():
            for name, status, reason, n in con.execute(sql):
                hosts[names(name)][table][reason or status] = n
    finally:
        con.close()
    return {"path": str(path), "tier": config.get("tier"), "potential": config.get("potential"),
            "samples_per_host": config.get("samples_per_host"), "run": run[0] if run else None, "hosts": hosts}


def read_stores(folder: Path, names: Names, settings: set) -> tuple[list[dict], list[str]]:
    """The stores of ``folder`` (those made like the training data first) and the ones that could not be read.

    Each store gets a ``label``: its path, with its tier and potential when they are not the
    training data's (``settings``, a set of (tier, potential)).
    """
    stores, unreadable = [], []
    for path in sorted(Path(folder).glob("*.sqlite")) if Path(folder).is_dir() else []:
        try:
            st = store_record(path, names)
        except (sqlite3.Error, KeyError, ValueError) as exc:
            unreadable.append(f"{path}: {exc}")
            continue
        st["training"] = (st["tier"], st["potential"]) in settings
        st["label"] = str(path) if st["training"] else f"{path} ({st['tier']} tier, {st['potential']})"
        stores.append(st)
    return sorted(stores, key=lambda s: not s["training"]), unreadable


def basis_status(folder: Path, names: Names) -> dict[str, str]:
    """{host: ``committed`` | ``not committed`` | ``being built``} of the bases in ``folder``.

    Committed means tracked by git (``git ls-files``); outside a git checkout every finished
    basis counts as committed. ``being built``: only a basis run's checkpoint (``.<host>.cells.npz``).
    """
    from defectnet.signatures import basis_files

    folder = Path(folder)
    finished = {p.stem: p for p in basis_files(folder)} if folder.is_dir() else {}
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=folder, capture_output=True, text=True,
                                check=True, timeout=30).stdout
        tracked = {Path(p).stem for p in listed.split("\0") if p.endswith(".npz")}
    except (OSError, subprocess.SubprocessError):
        tracked = set(finished)
    status = {names(n): "committed" if n in tracked else "not committed" for n in finished}
    for p in folder.glob(".*.cells.npz") if folder.is_dir() else []:
        status.setdefault(names(p.name[1:-len(".cells.npz")]), "being built")
    return status


def held_out_sets(split_configs, names: Names) -> dict[str, list[str]]:
    """{set: [host]}: the conditioned benchmark's ``TEST_HOSTS``, ``FAMILY_TEST_HOSTS`` and ``CURATED_TEST_HOSTS``, and
    the ``split.ood_hosts`` / ``split.calib_hosts`` of each training config in ``split_configs``."""
    import yaml
    from conditioned import CURATED_TEST_HOSTS, FAMILY_TEST_HOSTS, TEST_HOSTS

    sets = dict(zip(CONDITIONED_SETS, (TEST_HOSTS, FAMILY_TEST_HOSTS, CURATED_TEST_HOSTS)))
    for path in split_configs:
        split = (yaml.safe_load(Path(path).read_text()) or {}).get("split") or {}
        sets |= {f"{Path(path).name} {key}": split[key] for key in SPLIT_KEYS if split.get(key)}
    return {label: [names(n) for n in hosts] for label, hosts in sets.items()}


def hand_excluded(generation_configs, names: Names) -> dict[str, list[str]]:
    """{host: [config]} of the hosts a generation config leaves out by name (``hosts.exclude``)."""
    import yaml

    out = defaultdict(list)
    for path in generation_configs:
        hosts = (yaml.safe_load(Path(path).read_text()) or {}).get("hosts")
        for name in (hosts.get("exclude") or ()) if isinstance(hosts, dict) else ():
            out[names(name)].append(str(path))
    return dict(out)


def store_reason(name: str, stores: list[dict]) -> tuple[str, str] | None:
    """(status, reason) of host ``name`` from the first store that holds it, None if none does."""
    for st in stores:
        h = st["hosts"].get(name)
        if h is None:
            continue
        if h["status"] == "failed":
            return "failed", f"{h['reason']}: {h['error']} ({st['label']})"
        n, want, ok = sum(h["samples"].values()), st["samples_per_host"] or 0, h["samples"].get("ok", 0)
        patches = sum(h["patches"].values())
        lost = ", ".join(f"{r} {k}" for r, k in sorted(h["samples"].items()) if r != "ok")
        detail = f"{n}/{want} samples, {ok} ok" + (f" ({lost})" if lost else "") + f", {patches} patches"
        if n < want:
            verb = "in progress" if st["run"] == "running" else "stopped"
            return verb, f"{verb} in {st['label']} ({detail})"
        if not ok:
            return "failed", f"every sample failed in {st['label']} ({detail})"
        return "stopped", f"done in {st['label']} ({detail}), not exported yet"
    return None


def not_in_data_reason(host, data: dict, stores: list[dict], excluded: dict) -> tuple[str, str]:
    """(status, reason) of a library host the training data has no spectrum of."""
    found = store_reason(host.name, stores)
    if found is None and data["failed"].get(host.name):
        found = "failed", "; ".join(f"{r} ({', '.join(f)})" for r, f in data["failed"][host.name].items())
    if found is None and host.name in excluded:
        found = "failed", f"excluded by name in {', '.join(excluded[host.name])} (hosts.exclude)"
    if found is None and data["listed"].get(host.name):
        found = "stopped", f"begun, listed with no spectrum in {', '.join(data['listed'][host.name])}"
    status, reason = found or ("not generated", "not generated yet")
    if host.dynamically_stable is False:
        lowest = host.provenance.get("min_frequency_mev")
        reason += "; the library build found imaginary modes" + (f" (lowest {lowest:.2f} meV)" if lowest else "")
    return status, reason


def curated_rows(library, data: dict, other: dict, stores, bases, held, excluded) -> list[dict]:
    """One row per curated library host (see the module docstring); ``other``: committed files
    that are not training data (validation, cross-potential)."""
    rows = []
    for h in (h for h in library.hosts if h.source == "curated"):
        files = data["spectra"].get(h.name, {})
        row = {"host": h.name, "family": h.prototype, "chemical_family": h.family, "spectra": sum(files.values()),
               "files": files, "other_files": other["spectra"].get(h.name, {}), "basis": bases.get(h.name),
               "held_out": [label for label, hosts in held.items() if h.name in hosts],
               "library_dynamically_stable": h.dynamically_stable}
        if files:
            row["status"], row["complete"] = "in data", h.name in data["done"]
            in_store = store_reason(h.name, stores)
            row["note"] = "" if row["complete"] else "incomplete" + (f"; {in_store[1]}" if in_store else "")
        else:
            row["status"], row["note"] = not_in_data_reason(h, data, stores, excluded)
        rows.append(row)
    return rows


def family_summary(library, names: Names, data: dict, rows: list[dict], bases: dict, held: dict) -> list[dict]:
    """Per family (library prototype): library, curated and data hosts, with basis, held out, training.

    A training host is one with spectra in the training data that the conditioned benchmark
    does not hold out (:data:`CONDITIONED_SETS`); ``training_with_basis`` are those it trains
    on (it reads every host through its basis). ``flag`` marks fewer than two of either.
    """
    out = defaultdict(Counter)
    for h in library.hosts:
        out[h.prototype]["library"] += 1
    for r in rows:
        c = out[r["family"]]
        c["curated"] += 1
        c["curated_in_data"] += r["status"] == "in data"
        c["curated_with_basis"] += r["basis"] == "committed"
    held_out = {n for label in CONDITIONED_SETS for n in held.get(label, ())}
    for name in data["spectra"]:
        c, basis = out[names.family(name)], bases.get(name) == "committed"
        c["in_data"] += 1
        c["with_basis"] += basis
        c["held_out"] += name in held_out
        c["training"] += name not in held_out
        c["training_with_basis"] += basis and name not in held_out
    table = []
    for fam, c in out.items():
        flag = "< 2 training hosts" if c["training"] < 2 else ("< 2 with basis" if c["training_with_basis"] < 2 else "")
        table.append({"family": fam, **{k: int(c[k]) for k in FAMILY_COLUMNS}, "flag": flag})
    return sorted(table, key=lambda r: (-r["in_data"], -r["curated"], -r["library"], r["family"]))


#: Columns of the per-family table, in order.
FAMILY_COLUMNS = ("library", "curated", "curated_in_data", "curated_with_basis", "in_data", "with_basis", "held_out",
                  "training", "training_with_basis")


def observations(library, names: Names, data: dict, rows: list[dict], bases: dict, held: dict) -> list[str]:
    """What does not line up between the library, the data, the bases and the held-out sets."""
    from defectnet.hosts.curated import CURATED

    out = [f"not a library host: {n}" for n in sorted(names.unknown)]
    out += [f"named by an alias: {a} (library name {n})" for a, n in sorted(names.aliased.items())]
    out += [f"a candidate, not a built library host: {n}" for n in sorted(names.candidates)]
    specs, built = {s.name for s in CURATED}, {r["host"] for r in rows}
    out += [f"curated host missing from the library in use: {n}" for n in sorted(specs - built)]
    out += [f"curated in the library but not in defectnet.hosts.curated: {n}" for n in sorted(built - specs)]
    for label, hosts in held.items():
        missing = [n for n in hosts if n not in data["spectra"]]
        out += [f"{label}: not in the training data: {', '.join(missing)}"] if missing else []
        no_basis = [n for n in hosts if n in data["spectra"] and bases.get(n) != "committed"]
        if label in CONDITIONED_SETS and no_basis:  # the conditioned benchmark scores a host through its basis
            out.append(f"{label}: no committed basis yet (not scored): {', '.join(no_basis)}")
    held_out = {n for label in CONDITIONED_SETS for n in held.get(label, ())}
    formula = {n: library.get(n).formula for n in data["spectra"] if n not in names.unknown}
    twins = {n: sorted(m for m in formula if formula[m] == formula[n] and m not in held_out)
             for n in sorted(held_out & set(formula))}
    if any(twins.values()):
        out.append("held-out hosts with a polymorph among the training hosts: "
                   + "; ".join(f"{n} ({', '.join(t)})" for n, t in twins.items() if t))
    out += [f"basis {b} of a host the training data does not hold ({s})" for b, s in sorted(bases.items())
            if b not in data["spectra"]]
    out += [f"basis {b}: {s}" for b, s in sorted(bases.items()) if s != "committed" and b in data["spectra"]]
    out += [f"listed with no spectrum: {n} in {', '.join(f)}" for n, f in sorted(data["listed"].items())
            if n not in data["spectra"]]
    return out


def status_counts(rows: list[dict], held: dict) -> dict:
    """How many curated hosts have each status, and how many are held out (any set, conditioned sets)."""
    c = Counter(r["status"] for r in rows)
    return {**{s: c[s] for s in STATUSES}, "curated": len(rows), "held_out": sum(bool(r["held_out"]) for r in rows),
            "held_out_conditioned": sum(any(s in CONDITIONED_SETS for s in r["held_out"]) for r in rows),
            "in_data_with_basis": sum(r["status"] == "in data" and r["basis"] == "committed" for r in rows)}


def family_table_md(families: list[dict]) -> list[str]:
    """Markdown lines of the per-family table, with a totals row."""
    heads = ("library hosts", "curated", "curated in data", "curated with basis", "hosts in data", "with basis",
             "held out", "training hosts", "training with basis")
    lines = ["| family | " + " | ".join(heads) + " | flag |", "|---" * (len(heads) + 2) + "|"]
    for f in families:
        lines.append(f"| {f['family']} | " + " | ".join(str(f[k]) for k in FAMILY_COLUMNS) + f" | {f['flag']} |")
    totals = " | ".join(str(sum(f[k] for f in families)) for k in FAMILY_COLUMNS)
    return lines + [f"| **all** | {totals} | {sum(bool(f['flag']) for f in families)} flagged |"]


def host_table_md(rows: list[dict]) -> list[str]:
    """Markdown lines of the curated-host table, hosts in the data first, then by status and family."""
    lines = ["| host | family | chemical family | spectra | files | basis | held out | status | reason or note |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {s: i for i, s in enumerate(STATUSES)}
    for r in sorted(rows, key=lambda r: (order[r["status"]], r["family"], r["host"])):
        files = ", ".join(f"{Path(f).stem} ({n})" for f, n in r["files"].items())
        other = ", ".join(f"{Path(f).stem} ({n})" for f, n in r["other_files"].items())
        files += f"; not training: {other}" if other else ""
        lines.append(f"| {r['host']} | {r['family']} | {r['chemical_family']} | {r['spectra']} | {files} | "
                     f"{r['basis'] or ''} | {', '.join(r['held_out'])} | {r['status']} | {r['note']} |")
    return lines


#: What the columns of the two tables mean.
FAMILY_NOTE = ("Family: the library's prototype. Hosts in data: hosts with spectra in the training data, curated or "
               "not; held out: those in the conditioned benchmark's `TEST_HOSTS`, `FAMILY_TEST_HOSTS` or `CURATED_TEST_HOSTS`; training "
               "hosts: the others (with basis: what the conditioned network trains on). Flag: fewer than two training "
               "hosts (or fewer than two with a basis).")
HOST_NOTE = ("Files: spectra per committed file (validation and cross-potential files are not training data). Reason: "
             "the failure a store or a committed file records, or where the host stands.")


def summary_md(r: dict) -> list[str]:
    """The opening paragraph: the counts of curated hosts and of families with two training hosts."""
    c, d = r["counts"], r["data"]
    fams = [f for f in r["families"] if f["library"]]
    two, two_basis = sum(f["training"] >= 2 for f in fams), sum(f["training_with_basis"] >= 2 for f in fams)
    hosts = (f"{c['curated']} curated library hosts: **{c['in data']} in the training data** "
             f"({c['in_data_with_basis']} with a committed basis), {c['failed']} failed with a recorded reason, "
             f"{c['in progress']} in progress, {c['stopped']} begun and stopped, {c['not generated']} not generated "
             f"yet. {c['held_out']} are held out by a benchmark ({c['held_out_conditioned']} by the conditioned "
             "benchmark's sets).")
    families = (f"The training data ({', '.join(r['sources']['data'])}): {d['spectra']:,} spectra of {d['hosts']} "
                f"hosts in {d['files']} files. Of the library's {len(fams)} families (prototypes), **{two} have at "
                f"least two training hosts** and {two_basis} at least two with a committed basis (the issue's target: "
                "all of them).")
    return [hosts, "", families]


def table_md(r: dict) -> str:
    """The whole Markdown report."""
    p = r["provenance"]
    lines = ["# Coverage of the training data: curated hosts, by family (issue 35)", "", *summary_md(r),
             "", "## By family", "", FAMILY_NOTE, "", *family_table_md(r["families"]),
             "", "## Curated hosts", "", HOST_NOTE, "", *host_table_md(r["curated"]),
             "", "## What does not line up", ""]
    lines += [f"- {o}" for o in r["observations"]] or ["Nothing."]
    lines += ["", "## Sources", ""]
    lines += [f"- store {s['label']}: last run {s['run']}, {s['samples_per_host']} samples per host, "
              f"{len(s['hosts'])} hosts" for s in r["sources"]["stores"]]
    lines += [f"- unreadable store {s}" for s in r["sources"]["unreadable_stores"]]
    lines += [f"- held out, {label}: {', '.join(hosts)}" for label, hosts in r["sources"]["held_out"].items()]
    made = f"Commit {p['commit']}, `{p['command']}`, {p['date']}"
    lines += ["", f"{made}; data read at commit {p['data_commit']}."]
    return "\n".join(lines) + "\n"


def paths_of(spec: str) -> list[Path]:
    """The files a comma-separated list of glob patterns names (relative to the working directory)."""
    import glob

    return [Path(p) for pattern in spec.split(",") if pattern.strip() for p in sorted(glob.glob(pattern.strip()))]


def coverage(args) -> dict:
    """The whole result, without provenance.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`main` (``data``, ``other``, ``stores``, ``bases``, ``split_configs``,
        ``generation_configs``); relative paths from the working directory.

    Returns
    -------
    dict
        ``counts``, ``families``, ``curated`` (one row per curated host), ``data``,
        ``observations`` and ``sources``.
    """
    from defectnet.data.training_file import training_file_paths
    from defectnet.hosts import get_library

    library = get_library()
    names = Names(library)
    data = committed_data(training_file_paths(args.data), names)
    other = committed_data(training_file_paths(args.other, missing_ok=True), names)
    stores, unreadable = read_stores(Path(args.stores), names, data["settings"])
    bases = basis_status(Path(args.bases), names)
    held = held_out_sets(paths_of(args.split_configs), names)
    excluded = hand_excluded(paths_of(args.generation_configs), names)
    rows = curated_rows(library, data, other, stores, bases, held, excluded)
    families = family_summary(library, names, data, rows, bases, held)
    n_files = len({f for files in data["spectra"].values() for f in files})
    return {"counts": status_counts(rows, held), "families": families, "curated": rows,
            "data": {"hosts": len(data["spectra"]), "spectra": sum(sum(f.values()) for f in data["spectra"].values()),
                     "files": n_files},
            "observations": observations(library, names, data, rows, bases, held),
            "sources": {"data": args.data.split(","), "other": args.other.split(","), "bases": args.bases,
                        "stores": [{k: s[k] for k in ("label", "tier", "potential", "samples_per_host", "run", "training")}
                                   | {"hosts": sorted(s["hosts"])} for s in stores],
                        "unreadable_stores": unreadable, "held_out": held, "hand_excluded": excluded}}


def main(argv=None):
    """Build the coverage tables, print them and write ``coverage.{json,md}`` to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="datasets/reference,datasets/textbook", help="training files or folders")
    ap.add_argument("--other", default="datasets/validation,datasets/cross-potential",
                    help="committed files that are not training data")
    ap.add_argument("--bases", default="datasets/reference/bases", help="folder of signature bases")
    ap.add_argument("--stores", default="data", help="folder of generation stores (*.sqlite), opened read-only")
    ap.add_argument("--split-configs", default="configs/candidate-unseen.yaml",
                    help="training configs whose split.ood_hosts and split.calib_hosts are held out (globs)")
    ap.add_argument("--generation-configs", default="examples/generate-*.yaml,benchmarks/configs/*.yaml",
                    help="generation configs whose hosts.exclude leave hosts out (globs)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "coverage")
    args = ap.parse_args(argv)

    from defectnet.provenance import git_commit, provenance

    t0 = time.perf_counter()
    result = coverage(args)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    result["provenance"] = provenance() | {"data_commit": git_commit(Path.cwd())}  # no machine path in a result
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coverage.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / "coverage.md").write_text(table_md(result))
    print(table_md(result))


if __name__ == "__main__":
    main()
