"""The generation pipeline's record of what finished: the store's rows, the counts, the progress bar.

:class:`Recorder` is the store's one writer during a run (each transaction timed: the writer
is the one central component); :class:`Progress` counts what finished and failed and keeps the
progress bar. :mod:`.generate` decides what a row says; these only write and count it.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import cached_property

from defectnet.data.summary import GenerateSummary
from defectnet.data.tasks import package_version


class Progress:
    """Counts of hosts, patches and samples by status, failures by stage and reason, and the bar.

    Parameters
    ----------
    show : bool
        Show a progress bar (rate and ETA) on stderr during :meth:`start` … :meth:`close`.
    """

    def __init__(self, show: bool):
        self.show = show
        self.counts = {"hosts": Counter(), "patches": Counter(), "samples": Counter(), "failures": Counter()}
        self.bar = None

    def start(self, total: int, done: int):
        """Open the bar at ``done`` of ``total`` spectra."""
        if self.show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="spectra", desc="generate", dynamic_ncols=True,
                            smoothing=0.05)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def count(self, what: str, status: str, stage: str, reason=None):
        """One ``what`` (hosts, patches, samples) finished with ``status``; a failed one counts at ``stage``."""
        self.counts[what][status] += 1
        if status != "ok":
            self.fail(stage, reason)

    def fail(self, stage: str, reason: str):
        self.counts["failures"][f"{stage}:{reason}"] += 1

    def advance(self, n: int):
        """``n`` more spectra are final (computed or failed)."""
        if self.bar is not None:
            self.bar.update(n)

    def drop(self, n: int):
        """``n`` spectra will never be made (their host failed): the bar's total shrinks."""
        if self.bar is not None:
            self.bar.total -= n
            self.bar.refresh()

    def hosts(self, open_: int, left: int):
        """The bar's note: hosts in progress and still to open, failures so far."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"hosts open {open_}, left {left}; "
                                     f"failed {sum(self.counts['failures'].values())}", refresh=False)


class Recorder:
    """The rows of one generation run, written to its store; timed, and counted in ``progress``.

    Parameters
    ----------
    store : Store
    config : GenerateConfig
    progress : Progress
    """

    def __init__(self, store, config, progress: Progress):
        self.store, self.config, self.progress = store, config, progress
        self.writer = {"rows": 0, "transactions": 0, "seconds": 0.0}

    def _write(self, fn, arg):
        """One store transaction (timed)."""
        t0 = time.perf_counter()
        out = fn(arg)
        self.writer["seconds"] += time.perf_counter() - t0
        self.writer["transactions"] += 1
        self.writer["rows"] += len(arg) if isinstance(arg, list) else 1
        return out

    @cached_property
    def potential(self):
        from defectnet.phonons.potentials import potential_info

        return potential_info(self.config.potential)

    def add_host(self, state, worker_row: dict) -> tuple[int, dict]:
        """Store the host row of ``state`` (what the worker or the plan found); its id and the row."""
        row = self.host_row(state, worker_row)
        return self._write(self.store.add_host, row), row

    def host_row(self, state, worker_row: dict) -> dict:
        """``worker_row`` with what the client knows of the host: input, recommendations, pool, potential, grid."""
        from defectnet.data.store import pack_arrays

        h, cfg, info = state.host, self.config, self.potential
        plan = state.plan
        a = h.atoms
        return {
            **worker_row,
            "name": h.name, "formula": h.formula, "prototype": h.prototype, "source": h.source,
            "elements": sorted(set(a.get_chemical_symbols())), "composition": h.composition,
            "structure_hash": h.structure_hash,
            "recommendations": [r.to_dict() for r in plan.records] if plan else None,
            "pool": list(plan.pool) if plan else None,
            "potential": info.name, "potential_version": f"{info.package} {info.version} ({info.model})",
            "tier": cfg.tier, "grid_id": cfg.grid.grid_id,
            "input": pack_arrays(cell=a.cell.array, scaled_positions=a.get_scaled_positions(), numbers=a.numbers),
        }

    def add_patch(self, state, row: dict):
        """Store a patch row of ``state``'s host and count it."""
        row["host_id"] = state.host_id
        self._write(self.store.add_patch, row)
        self.progress.count("patches", row["status"], "patch", row.get("reason"))

    def add_samples(self, state, rows: list[dict]):
        """Store sample rows of ``state``'s host (one transaction), count them and advance the bar."""
        for r in rows:
            r["host_id"] = state.host_id
        self._write(self.store.add_samples, rows)
        for r in rows:
            self.progress.count("samples", r["status"], "sample", r.get("reason"))
        self.progress.advance(len(rows))

    def failed_sample_row(self, state, job, reason: str, error: str) -> dict:
        """The row of a sample of ``state``'s host that ``job`` describes and that failed."""
        return {"host": state.host.name, "prototype": state.host.prototype, "sample_index": job.index,
                "seed": job.seed, "status": "failed", "reason": reason, "error": error,
                "n_dopants": len(job.dopants), "dopants": [[e, s, f, None] for e, s, f in job.dopants],
                "candidates": list(job.candidates), "distractors": list(job.distractors), "tier": self.config.tier,
                "potential": self.potential.name, "grid_id": self.config.grid.grid_id, "created": time.time(),
                "code_version": package_version()}

    def fill(self, summary: GenerateSummary, skipped: int):
        """The run's counts and writer rate in ``summary``; ``skipped`` samples were in the store or in ``--skip-in`` files already."""
        c = self.progress.counts
        summary.hosts, summary.patches, summary.samples = dict(c["hosts"]), dict(c["patches"]), dict(c["samples"])
        summary.failures = dict(c["failures"])
        summary.skipped_samples = skipped
        w = dict(self.writer)
        w["rows_per_s"] = w["rows"] / w["seconds"] if w["seconds"] > 0 else None
        summary.writer = w
