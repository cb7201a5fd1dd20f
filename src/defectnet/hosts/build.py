"""``defectnet hosts build``: relax and check every candidate host, resumably and in parallel.

Candidates (curated hosts first, then decorated prototypes in rank order) are relaxed and
checked one by one by :func:`defectnet.hosts.checks.evaluate_host` (relaxation, volume,
distances, symmetry, Born mechanical and phonon dynamical stability).

Results are appended, one JSON line per host, to ``<out>/build.jsonl`` as they arrive. JSON
lines rather than SQLite because there is exactly one writer (the client process), the file
is append-only, each line is flushed and fsync'd so a crash loses only hosts in flight, a torn
last line is detected and dropped on restart, and the store stays greppable and diffable. A
restart skips every name already in the store (failed and errored hosts included, unless
``retry_errors``). :func:`finalize` turns the store into the compact package library.

With ``workers > 0`` the build starts worker processes by *spawning*: a script that calls
:func:`build_library` must do so under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from distributed import WorkerPlugin

from defectnet.errors import DefectnetError
from defectnet.output import SINGLE_THREAD_ENV
from defectnet.hosts.checks import BuildConfig, evaluate_host
from defectnet.hosts.library import (
    CANDIDATES_FILE,
    LIBRARY_FILE,
    Host,
    data_path,
    read_hosts,
    write_hosts,
)
from defectnet.phonons.potentials import DEFAULT_POTENTIAL

STORE_FILE = "build.jsonl"
CONFIG_FILE = "build_config.json"


# ===================================================================== the store
class BuildStore:
    """Append-only JSON-lines store of build results (one writer)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / STORE_FILE

    def repair(self) -> int:
        """Drop a torn last line left by a crash mid-write; returns the bytes removed."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as fh:
            fh.truncate(keep)
        return len(data) - keep

    def records(self) -> list[dict]:
        """Every complete record, in file order (unparseable lines are skipped)."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn last line: not committed
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def latest(self) -> dict[str, dict]:
        """name → its latest record."""
        return {r["name"]: r for r in self.records()}

    def append(self, record: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


# ===================================================================== the build
@dataclass
class BuildSummary:
    """What a build run did (counts are over the whole store, this run included)."""

    store: Path
    n_records: int = 0
    n_passed: int = 0
    n_failed: int = 0
    n_errors: int = 0
    n_run: int = 0  # evaluated in this run
    seconds: float = 0.0
    seconds_per_host: float = float("nan")  # wall time per host evaluated in this run
    failed_checks: dict = field(default_factory=dict)  # check -> count over failed records

    def to_dict(self) -> dict:
        d = asdict(self)
        d["store"] = str(self.store)
        return d


def _summarise(store: BuildStore, summary: BuildSummary) -> BuildSummary:
    latest = store.latest()
    summary.n_records = len(latest)
    summary.n_passed = sum(r["status"] == "passed" for r in latest.values())
    summary.n_failed = sum(r["status"] == "failed" for r in latest.values())
    summary.n_errors = sum(r["status"] == "error" for r in latest.values())
    counts: dict[str, int] = {}
    for r in latest.values():
        for c in r.get("failed_checks", []):
            counts[c] = counts.get(c, 0) + 1
    summary.failed_checks = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return summary


def _check_config(directory: Path, cfg: BuildConfig, resume: bool) -> None:
    path = directory / CONFIG_FILE
    store = directory / STORE_FILE
    if resume and path.exists():
        old = json.loads(path.read_text())
        if old != cfg.to_dict():
            diff = sorted(k for k in set(old) | set(cfg.to_dict()) if old.get(k) != cfg.to_dict().get(k))
            raise DefectnetError(
                f"the build in {directory} used other settings ({', '.join(diff)}); "
                "resume with the same settings or start afresh with resume=False"
            )
    if not resume and store.exists():
        n = 1
        while (directory / f"{STORE_FILE}.bak{n}").exists():
            n += 1
        store.rename(directory / f"{STORE_FILE}.bak{n}")  # never delete finished work
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True) + "\n")


def _init_worker_threads() -> None:
    """One torch thread per Dask worker: workers are the parallelism."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


class _WorkerSetup(WorkerPlugin):
    """Dask worker plugin: one torch thread, the potential loaded once per worker process."""

    name = "defectnet-hosts-setup"

    def __init__(self, potential: str):
        self.potential = potential

    def setup(self, worker):
        _init_worker_threads()
        from defectnet.phonons.potentials import get_calculator

        get_calculator(self.potential)


def build_library(
    out: str | os.PathLike,
    *,
    n_target: int = 2000,
    potential: str = DEFAULT_POTENTIAL,
    workers: int = 2,
    resume: bool = True,
    seed: int = 0,
    limit: int | None = None,
    candidates: Iterable[Host] | None = None,
    config: BuildConfig | None = None,
    retry_errors: bool = False,
    smallest_first: bool = False,
    scheduler_address: str | None = None,
    progress: bool = True,
    finalize_to: str | os.PathLike | None = None,
) -> BuildSummary:
    """Relax and check candidates until ``n_target`` hosts have passed (or candidates run out).

    Parameters
    ----------
    out : path
        Build directory: ``build.jsonl`` (results), ``build_config.json`` (settings).
    n_target : int
        Stop submitting work once this many hosts in the store have passed.
    potential : str
        Potential registry name (ignored if ``config`` is given).
    workers : int
        Dask worker processes (one thread each). ``0`` runs serially in this process.
    resume : bool
        Skip hosts already in the store. ``False`` moves an old store aside and starts afresh.
    seed : int
        Seed of the candidate list (ties in the ranking).
    limit : int, optional
        Consider only the first ``limit`` candidates of the list (small test builds).
    candidates : iterable of Host, optional
        Work list (default: curated hosts, then :func:`candidates.generate_candidates`).
    retry_errors : bool
        Re-run hosts whose record is an error (a crash, not a failed check).
    smallest_first : bool
        Evaluate the remaining candidates in order of primitive-cell size (stable, so ties keep
        the list's family round-robin). Cost grows steeply with cell size — 4 s per host at 1–2
        atoms, 70 s at 9–16 — so this passes the most hosts per hour when a build is cut short,
        at the price of favouring small cells in a partial library.
    scheduler_address : str, optional
        Use an existing Dask scheduler (e.g. a dask-jobqueue cluster) instead of a LocalCluster.
    finalize_to : path, optional
        Write the library file there when done (see :func:`finalize`).
    """
    t_start = time.perf_counter()
    cfg = config or BuildConfig(potential=potential)
    directory = Path(out)
    _check_config(directory, cfg, resume)
    store = BuildStore(directory)
    store.repair()

    latest = store.latest()
    todo = _todo(latest, candidates, seed=seed, limit=limit, retry_errors=retry_errors, smallest_first=smallest_first)
    summary = BuildSummary(store=store.path)
    n_passed = sum(r["status"] == "passed" for r in latest.values())
    _evaluate_all(todo, cfg, store, summary, n_passed, n_target=n_target, workers=workers,
                  scheduler_address=scheduler_address, progress=progress)
    summary.seconds = time.perf_counter() - t_start
    if summary.n_run:
        summary.seconds_per_host = summary.seconds / summary.n_run
    _summarise(store, summary)
    if finalize_to is not None:
        finalize(directory, finalize_to)
    return summary


def _todo(latest: dict, candidates, *, seed, limit, retry_errors, smallest_first) -> list[Host]:
    """The candidates still to evaluate (not in the store's ``latest`` records), in the order they will be."""
    if candidates is None:
        from defectnet.hosts.candidates import all_candidates

        candidates = all_candidates(seed=seed)
    work = list(candidates)[: limit if limit is not None else None]
    names = [h.name for h in work]
    if len(set(names)) != len(names):
        raise DefectnetError("the candidate list has duplicate names")
    todo = [h for h in work if h.name not in latest or (retry_errors and latest[h.name]["status"] == "error")]
    if smallest_first:
        todo.sort(key=lambda h: h.n_atoms)
    return todo


def _evaluate_all(todo, cfg, store, summary, n_passed: int, *, n_target, workers, scheduler_address, progress) -> None:
    """Evaluate ``todo`` into ``store`` (serially, or on Dask) until ``n_target`` hosts have passed,
    ``n_passed`` of them already."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="hosts", unit="host", disable=not progress, dynamic_ncols=True)
    config_dict = cfg.to_dict()
    queue = iter(todo)

    def commit(rec: dict) -> None:
        nonlocal n_passed
        store.append(rec)
        n_passed += rec["status"] == "passed"
        summary.n_run += 1
        bar.update(1)
        bar.set_postfix(passed=n_passed, refresh=False)

    try:
        if workers <= 0 and scheduler_address is None:
            for h in queue:
                if n_passed >= n_target:
                    break
                commit(evaluate_host(h.to_dict(), config_dict))
        elif todo and n_passed < n_target:
            _run_dask(
                queue, config_dict, commit, lambda: n_passed >= n_target, workers, scheduler_address, cfg.potential
            )
    finally:
        bar.close()


def _run_dask(queue, config_dict, commit, done, workers, scheduler_address, potential) -> None:
    """Keep ~2 tasks per worker in flight; commit each result the moment it arrives."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler_address is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port
            env=dict(SINGLE_THREAD_ENV),
        )
    client = Client(cluster if cluster is not None else scheduler_address)
    try:
        client.register_plugin(_WorkerSetup(potential))
        n_slots = 2 * max(1, len(client.scheduler_info().get("workers", {})) or workers)
        pending = as_completed()
        in_flight: dict = {}

        def submit_next() -> bool:
            if done():
                return False
            h = next(queue, None)
            if h is None:
                return False
            fut = client.submit(
                evaluate_host, h.to_dict(), config_dict, key=f"host-{h.name}-{time.monotonic_ns()}", pure=False
            )
            in_flight[fut.key] = h
            pending.add(fut)
            return True

        for _ in range(n_slots):
            if not submit_next():
                break
        for fut in pending:
            h = in_flight.pop(fut.key)
            try:
                rec = fut.result()
            except Exception as exc:  # the worker died (memory, segfault): record, move on
                rec = {
                    "name": h.name,
                    "status": "error",
                    "failed_checks": [],
                    "host": h.to_dict(),
                    "seconds": None,
                    "error": f"worker lost: {type(exc).__name__}: {str(exc)[:300]}",
                }
            fut.release()
            commit(rec)
            submit_next()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ===================================================================== the package library
def finalize(
    out: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    base: Iterable[Host] | None = None,
) -> Path:
    """Write the compact library from a build store.

    Curated hosts are always kept with their experimental structure — with the build's check
    flags and provenance when the store has them (the checks are of the MLIP-relaxed
    structure, whose cell is kept in ``provenance["mlip_cell"]``), so that ``hosts show``
    gives the measured lattice and every calculation relaxes with its own potential; prototype
    hosts enter only if they passed every check, with their relaxed structure (their
    starting structure was a radius-based guess). Order: curated (in
    :data:`curated.CURATED` order), then prototype hosts in the order they were built.

    Parameters
    ----------
    out : path
        The build directory.
    dest : path, optional
        Output file (default ``<out>/library.json.gz``; pass
        ``defectnet.hosts.library.data_path("library.json.gz")`` to update the package copy).
    base : iterable of Host, optional
        Curated hosts (default :func:`curated.curated_hosts`).
    """
    from defectnet.hosts.candidates import structure_key
    from defectnet.hosts.curated import curated_hosts

    store = BuildStore(out)
    latest = store.latest()
    curated = list(base) if base is not None else curated_hosts()
    curated_names = {h.name for h in curated}
    hosts = [
        _curated_with_checks(h, latest[h.name]["host"]) if h.name in latest and latest[h.name]["status"] != "error" else h
        for h in curated
    ]
    seen = {structure_key(h) for h in hosts}
    for name, rec in latest.items():
        if name in curated_names or rec["status"] != "passed":
            continue
        h = Host.from_dict(rec["host"])
        key = structure_key(h)
        if key in seen:  # two prototypes relaxed into the same structure: keep the first
            continue
        seen.add(key)
        hosts.append(h)
    potentials = sorted(
        {json.dumps(h.provenance.get("potential"), sort_keys=True) for h in hosts if h.provenance.get("potential")}
    )
    meta = {
        "built_from": STORE_FILE,
        "potentials": [json.loads(p) for p in potentials],
        "n_curated": len(curated),
        "n_prototype_passed": len(hosts) - len(curated),
        "n_evaluated": len(latest),
    }
    return write_hosts(dest or Path(out) / LIBRARY_FILE, hosts, meta=meta)


def _curated_with_checks(experimental: Host, built: dict) -> Host:
    """A curated host's experimental structure with the provenance of its build record."""
    b = Host.from_dict(built)
    prov = {**b.provenance, "relaxed": False, "structure": "experimental; checks on the MLIP-relaxed structure",
            "mlip_cell": np.round(b.cell, 5).tolist()}
    prov.pop("unrelaxed", None)
    return Host.from_dict({**experimental.to_dict(), "provenance": {**experimental.provenance, **prov}})


def write_unbuilt_library(directory: str | os.PathLike | None = None, *, seed: int = 0) -> tuple[Path, Path]:
    """Write the pre-build package data: curated hosts (unrelaxed) and the candidate list.

    ``directory`` defaults to the package's ``data/hosts``. An existing built library is left
    alone: only its candidates file is refreshed.
    """
    from defectnet.hosts.candidates import generate_candidates
    from defectnet.hosts.curated import curated_hosts

    lib = Path(directory) / LIBRARY_FILE if directory is not None else data_path(LIBRARY_FILE)
    cand = lib.with_name(CANDIDATES_FILE)
    if not lib.exists() or not read_hosts(lib)[1].get("built_from"):
        write_hosts(
            lib, curated_hosts(), meta={"built_from": None, "note": "curated experimental structures, unrelaxed"}
        )
    write_hosts(cand, generate_candidates(seed=seed), meta={"seed": seed, "note": "unrelaxed, unchecked candidates"})
    return lib, cand
