"""Throughput of dataset generation with 1 and 2 workers, where the time goes, and the writer's rate.

Three measurements, in one run:

1. **Throughput**: the same small dataset (Si and GaAs, SevenNet-0, patch tier, 448-atom
   supercells) generated from scratch with a LocalCluster of 1 and of 2 worker processes.
   Doped spectra per hour = successful samples / wall time (from cluster ready to the last
   commit; worker start-up, which loads the potential once per worker, is reported apart).
   Shares of worker time by stage come from the per-stage timings stored in every row.
2. **Writer**: rows per second the single SQLite writer commits — realistic sample rows
   (compressed spectra blobs, JSON metadata), one transaction per row and per 4-row task.
3. **Client loop**: trivial Dask tasks that return a pre-packed sample row, committed by the
   client as they arrive — the rate of the one central loop (scheduler round trip, transfer,
   commit), against what 1,000 workers would ask of it.

Run: ``python benchmarks/generation.py`` (~5 minutes on 2 cores). Writes
``benchmarks/results/generation/generation.json``. The machine's load average is recorded: other jobs
on the same cores slow the force calls (compare ``total_s`` with the workers' ``cpu_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import defectnet
from defectnet.data.generate import GenerateConfig, run_generate
from defectnet.data.store import Store, pack_arrays

RESULTS = Path(__file__).resolve().parent / "results" / "generation" / "generation.json"

#: The benchmark dataset: two cubic hosts of similar cost, so two workers stay busy; one
#: dopant per pool keeps the 1-worker run near 10 minutes on 2 shared cores with SevenNet.
WORKLOAD = {
    "hosts": {"names": ["Si", "GaAs"]},
    "samples_per_host": 8,
    "samples_per_task": 4,
    "potential": "sevennet",
    "tier": "patch",
    "supercell_atoms": [433, 500],
    "seed": 0,
    "sampler": {"n_dopants": [1, 2], "conc_range": [0.004, 0.05], "max_total": 0.08, "n_distractors": [1, 3],
                "dopant_pool": 1},
    "task_timeout_s": 3600,
}

#: Stage -> the (table, timing key) pairs summed into it. Seconds of worker wall time.
STAGES = {
    "relaxation": [("hosts", "host_relax_s"), ("patches", "relax_s")],
    "force calls (displacements)": [("hosts", "host_force_constants_s"), ("patches", "displace_force_s")],
    "diagonalisation + broadening": [("hosts", "diagonalise_s"), ("hosts", "host_mesh_dos_s"),
                                     ("samples", "diagonalise_s")],
    "supercell FC (ph2ph, shape search)": [("hosts", "supercell_s"), ("samples", "context_s"),
                                           ("patches", "context_s")],
    "patch transplant": [("samples", "tier_s")],
    "compression (workers)": [("hosts", "pack_s"), ("patches", "pack_s"), ("samples", "pack_s")],
}
#: Time inside the potential, whatever the stage (relaxation steps included).
FORCE_KEYS = [("hosts", "pristine_force_s"), ("patches", "patch_force_s")]


def _sum(store: Store, pairs) -> float:
    total = 0.0
    for table, key in pairs:
        for (t,) in store.conn.execute(f"SELECT timings FROM {table}"):
            total += float(json.loads(t or "{}").get(key, 0.0) or 0.0)
    return total


def time_shares(path, writer_s: float) -> dict:
    """Seconds and shares of worker time per stage, from a store's per-row timings."""
    with Store(path) as s:
        busy = _sum(s, [("hosts", "total_s"), ("patches", "total_s"), ("samples", "total_s")])
        cpu = _sum(s, [("hosts", "cpu_s"), ("patches", "cpu_s"), ("samples", "cpu_s")])
        stages = {name: _sum(s, pairs) for name, pairs in STAGES.items()}
        force = _sum(s, FORCE_KEYS)
        per_table = {t: _sum(s, [(t, "total_s")]) for t in ("hosts", "patches", "samples")}
        n_rows = {t: s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("hosts", "patches", "samples")}
        computed = s.conn.execute("SELECT COUNT(*) FROM patches WHERE force_calls > 0").fetchone()[0]
    stages["storage (client writer)"] = writer_s
    stages["other"] = max(busy - sum(v for k, v in stages.items() if k != "storage (client writer)"), 0.0)
    total = busy + writer_s
    return {
        "worker_busy_s": busy, "worker_cpu_s": cpu, "contention": busy / cpu if cpu else None,
        "stages_s": stages, "shares": {k: v / total for k, v in stages.items()},
        "inside_potential_s": force, "inside_potential_share": force / total,
        "per_table_s": per_table, "rows": n_rows, "patches_computed": computed,
        "mean_sample_s": per_table["samples"] / max(n_rows["samples"], 1),
    }


def throughput(workers: int, directory: Path) -> dict:
    cfg = GenerateConfig.from_dict(WORKLOAD)
    out = directory / f"bench-{workers}w.sqlite"
    load0 = os.getloadavg()[0]
    summary = run_generate(cfg, out, workers=workers, progress=False)
    ok = summary.samples.get("ok", 0)
    wall = summary.wall_s - summary.startup_s
    shares = time_shares(out, summary.writer["seconds"])
    return {
        "workers": workers, "samples_ok": ok, "samples_failed": summary.samples.get("failed", 0),
        "failures": summary.failures, "wall_s": wall, "startup_s": summary.startup_s,
        "spectra_per_hour": 3600 * ok / wall, "writer": summary.writer,
        "load_average": [load0, os.getloadavg()[0]], "utilisation": shares["worker_busy_s"] / (wall * workers),
        **shares,
    }


def _synthetic_row(i: int, rng) -> dict:
    v = rng.random((5, 640)).astype(np.float32)
    return {
        "host_id": 1, "host": "Si", "prototype": "diamond", "sample_index": i, "status": "ok", "n_dopants": 2,
        "dopants": [["Ge", "Si", 0.01, 4], ["B", "Si", 0.004, 2]], "concentrations": {"Ge": 0.0089, "B": 0.0045},
        "total_concentration": 0.0134, "candidates": ["B", "P", "Ge"], "distractors": ["P"], "tier": "patch",
        "potential": "sevennet", "grid_id": "asinh-0-500meV-640-d92f65f9", "seed": int(rng.integers(2**62)),
        "supercell_atoms": 448, "n_imaginary": 0, "min_frequency_mev": 0.0,
        "timings": {"diagonalise_s": 1.2, "tier_s": 0.1, "total_s": 1.4}, "worker": "host:123",
        "code_version": "0.1.0", "created": time.time(),
        "arrays": pack_arrays(doped=v[0], doped_gpdos=v[1], partial_elements=np.array(["B", "Ge", "Si"]),
                              partials=v[2:5], dopant_indices=np.arange(6, dtype=np.int32)),
    }


def writer_rate(directory: Path, n: int = 4000) -> dict:
    """Rows/s of Store.add_samples: one transaction per row, and per 4-row task."""
    rng = np.random.default_rng(0)
    rows = [_synthetic_row(i, rng) for i in range(n)]
    out = {"row_bytes": len(rows[0]["arrays"])}
    for per_tx in (1, 4):
        path = directory / f"writer-{per_tx}.sqlite"
        with Store(path, "w") as s:
            s.add_host({"name": "Si", "structure_hash": "x", "status": "ok", "pristine": b"x"})
            t0 = time.perf_counter()
            for k in range(0, n, per_tx):
                s.add_samples(rows[k:k + per_tx])
            dt = time.perf_counter() - t0
        out[f"rows_per_s_{per_tx}_per_transaction"] = n / dt
    return out


def _echo_task(i: int, row: dict) -> dict:
    return {**row, "sample_index": i}  # no work: what is measured is the central loop


def client_loop_rate(directory: Path, n: int = 2000, workers: int = 2) -> dict:
    """Tasks/s through submit → scheduler → worker → result to the client → one commit per task.

    The tasks return a pre-packed ~13 kB sample row and do nothing else, so the rate is that
    of the central pieces (client, scheduler, transfer, writer). The client's CPU time per
    task is the load-independent figure: 1 / (CPU per task) is what one client core can take.
    """
    from distributed import as_completed

    from defectnet.data.cluster import dask_client

    row = _synthetic_row(0, np.random.default_rng(0))
    with dask_client(workers) as (client, _), Store(directory / "loop.sqlite", "w") as s:
        s.add_host({"name": "Si", "structure_hash": "x", "status": "ok", "pristine": b"x"})
        shared = client.scatter(row, broadcast=True)
        client.submit(_echo_task, 10**6, shared).result()  # warm up
        t0, c0 = time.perf_counter(), time.process_time()
        futures = [client.submit(_echo_task, i, shared, pure=False) for i in range(n)]
        write_s = 0.0
        for fut, result in as_completed(futures, with_results=True):  # as the pipeline does
            w0 = time.perf_counter()
            s.add_samples([result])
            write_s += time.perf_counter() - w0
            fut.release()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"tasks": n, "tasks_per_s": n / dt, "client_cpu_ms_per_task": 1e3 * cpu / n,
            "client_capacity_tasks_per_s": n / cpu, "writer_share_of_loop": write_s / dt}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-throughput", action="store_true", help="only the writer and client-loop measurements")
    p.add_argument("--potential", default=WORKLOAD["potential"], help="sevennet (default) | chgnet | ...")
    args = p.parse_args(argv)
    WORKLOAD["potential"] = args.potential
    res = {"defectnet_version": defectnet.__version__, "machine": f"{platform.node()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M"), "workload": WORKLOAD}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["writer"] = writer_rate(tmp)
        res["client_loop"] = client_loop_rate(tmp)
        if not args.skip_throughput:
            res["runs"] = [throughput(1, tmp), throughput(2, tmp)]
        if res.get("runs"):
            res["scale"] = scale_argument(res)
    report(res)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=1, default=float))
    print(f"wrote {RESULTS}")


def scale_argument(res: dict, workers: int = 1000) -> dict:
    """What ``workers`` workers would ask of the central pieces, at the measured per-sample cost.

    Worst case: every worker on sample tasks (the shortest tasks, so the most results per
    second); host and patch tasks are minutes long and add little.
    """
    one = res["runs"][0]
    per_sample = one["mean_sample_s"]
    per_task = per_sample * WORKLOAD["samples_per_task"]
    need_rows, need_tasks = workers / per_sample, workers / per_task
    w, c = res["writer"], res["client_loop"]
    return {
        "workers": workers, "sample_s": per_sample, "task_s": per_task,
        "rows_per_s_needed": need_rows, "tasks_per_s_needed": need_tasks,
        "writer_rows_per_s": w["rows_per_s_4_per_transaction"],
        "client_tasks_per_s_per_core": c["client_capacity_tasks_per_s"],
        "writer_headroom": w["rows_per_s_4_per_transaction"] / need_rows,
        "client_headroom": c["client_capacity_tasks_per_s"] / need_tasks,
        "samples_per_task_for_10x_client_headroom": int(np.ceil(10 * workers / (per_sample * c["client_capacity_tasks_per_s"]))),
    }


def report(res: dict):
    w, c = res["writer"], res["client_loop"]
    print(f"writer: {w['rows_per_s_1_per_transaction']:.0f} rows/s (1 row per transaction), "
          f"{w['rows_per_s_4_per_transaction']:.0f} rows/s (4 per transaction); {w['row_bytes']} B of arrays per row")
    print(f"client loop (submit → worker → commit, 1 task = 1 row): {c['tasks_per_s']:.0f} tasks/s wall; "
          f"{c['client_cpu_ms_per_task']:.1f} ms client CPU per task (= {c['client_capacity_tasks_per_s']:.0f} "
          f"tasks/s per client core); writer {100 * c['writer_share_of_loop']:.0f} % of the loop")
    runs = res.get("runs")
    if not runs:
        return
    print()
    print(f"{'workers':>7} {'samples':>7} {'wall s':>7} {'spectra/h':>9} {'speed-up':>8} {'busy/cpu':>8} {'load':>9}")
    base = runs[0]["spectra_per_hour"]
    for r in runs:
        print(f"{r['workers']:>7} {r['samples_ok']:>7} {r['wall_s']:>7.0f} {r['spectra_per_hour']:>9.0f} "
              f"{r['spectra_per_hour'] / base:>8.2f} {r['contention']:>8.2f} "
              f"{r['load_average'][0]:>4.1f}-{r['load_average'][1]:<4.1f}")
    print()
    print("share of time (1-worker run)")
    for k, v in runs[0]["shares"].items():
        print(f"  {k:<36} {100 * v:5.1f} %  ({runs[0]['stages_s'][k]:.0f} s)")
    print(f"  {'inside the potential (any stage)':<36} {100 * runs[0]['inside_potential_share']:5.1f} %")
    r = runs[0]
    print(f"mean sample (doped spectrum) task time per sample: {r['mean_sample_s']:.2f} s "
          f"(= {3600 / r['mean_sample_s']:.0f} spectra/h per worker once a host's patches exist); "
          f"{r['patches_computed']} patches computed, {r['rows']['patches'] - r['patches_computed']} rotated")
    sc = res.get("scale")
    if sc:
        print(f"1,000 workers on sample tasks would return {sc['rows_per_s_needed']:.0f} rows/s in "
              f"{sc['tasks_per_s_needed']:.0f} tasks/s: writer headroom {sc['writer_headroom']:.1f}x, "
              f"client headroom {sc['client_headroom']:.1f}x per core "
              f"(samples_per_task >= {sc['samples_per_task_for_10x_client_headroom']} for 10x)")


if __name__ == "__main__":
    main()
