"""Store summary: what ``defectnet dataset info`` reports about a dataset store.

:func:`summarize` reads an open :class:`~defectnet.data.store.Store` and returns a
JSON-serialisable dict of its metadata, row counts, failures by reason, per-host
sample counts, mean stage timings and generation runs (with their total busy wall time);
:class:`GenerateSummary` is what one ``generate`` run reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from defectnet.data.store import Store


def summarize(store: Store) -> dict:
    """Everything ``defectnet dataset info`` prints: counts, failures by reason, hosts, timings, runs."""
    conn = store.conn
    meta = store.meta()
    per_host = {}
    for host, status, n in conn.execute("SELECT host, status, COUNT(*) FROM samples GROUP BY host, status"):
        per_host.setdefault(host, {})[status] = n
    hosts = []
    for h in store.hosts():
        c = per_host.get(h["name"], {})
        hosts.append({"name": h["name"], "formula": h["formula"], "prototype": h["prototype"], "status": h["status"],
                      "reason": h["reason"], "supercell_atoms": h["supercell_atoms"], "ok": c.get("ok", 0),
                      "failed": c.get("failed", 0), "pool": h["pool"]})
    timings = {}
    for table, keys in (("hosts", ("host_relax_s", "host_force_constants_s", "supercell_s", "diagonalise_s", "total_s")),
                        ("patches", ("relax_s", "displace_force_s", "total_s")),
                        ("samples", ("context_s", "tier_s", "diagonalise_s", "pack_s", "total_s"))):
        sums, n = dict.fromkeys(keys, 0.0), 0
        for (t,) in conn.execute(f"SELECT timings FROM {table} WHERE status = 'ok'"):
            t = json.loads(t or "{}")
            n += 1
            for k in keys:
                sums[k] += float(t.get(k, 0.0) or 0.0)
        timings[table] = {"rows": n, **{k: v / n for k, v in sums.items()}} if n else {"rows": 0}
    runs = store.runs()
    size = sum(p.stat().st_size for p in (store.path, store.path.with_name(store.path.name + "-wal")) if p.exists())
    return {
        "path": str(store.path), "bytes": size, "schema_version": meta.get("schema_version"),
        "defectnet_version": meta.get("defectnet_version"), "config": meta.get("config"),
        "potential": meta.get("potential"), "tier": meta.get("tier"), "grid_id": meta.get("grid_id"),
        "broadening": meta.get("broadening"), "counts": store.counts(),
        "failures": [{"stage": s, "reason": r, "count": n} for s, r, n in store.failures()],
        "hosts": hosts, "timings_mean_s": timings,
        "runs": [{k: r[k] for k in ("id", "started", "finished", "status", "workers", "code_version")} | {
            "wall_s": (r["summary"] or {}).get("wall_s")} for r in runs],
        "wall_s_total": _busy_wall_s(store, runs),
    }


def _busy_wall_s(store, runs) -> float:
    """Wall time of all runs, s: start to finish, or to the last row a killed run wrote."""
    total = 0.0
    for i, r in enumerate(runs):
        end = r["finished"]
        if end is None:  # killed: its last committed row is when it stopped
            nxt = runs[i + 1]["started"] if i + 1 < len(runs) else float("inf")
            end = max((store.conn.execute(f"SELECT max(created) FROM {t} WHERE created >= ? AND created < ?",
                                        (r["started"], nxt)).fetchone()[0] or r["started"]
                       for t in ("hosts", "patches", "samples")), default=r["started"])
        total += max(0.0, end - r["started"])
    return total


@dataclass
class GenerateSummary:
    """What one ``generate`` run did."""

    store: str
    workers: str
    wall_s: float
    hosts: dict = field(default_factory=dict)  # status -> count, this run
    patches: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)  # "stage:reason" -> count, this run
    skipped_samples: int = 0  # already in the store
    retried: dict = field(default_factory=dict)  # table -> failed rows deleted to be computed again
    writer: dict = field(default_factory=dict)  # rows, transactions, seconds, rows_per_s
    startup_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        ok, failed = self.samples.get("ok", 0), self.samples.get("failed", 0)
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        again = f"; {self.retried['samples']} failed samples retried" if self.retried.get("samples") else ""
        return (f"{ok} new samples ({failed} failed; {self.skipped_samples} already stored or exported{again}), "
                f"{self.hosts.get('ok', 0)} new hosts, {self.patches.get('ok', 0)} new patches in "
                f"{self.wall_s:.1f} s on {self.workers}; failures: {fails}")
