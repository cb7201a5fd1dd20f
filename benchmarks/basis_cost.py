"""What a user's new host costs: `defectnet basis` of six candidates, one process against several.

Two starting points, each from its own empty engine cache (``$DEFECTNET_CACHE``), timed as a user
runs the command (wall time of ``defectnet basis ... --workers N``, the potential loaded inside):

* **cold**: nothing computed (the host's relaxation and force constants, every candidate's patch
  and every cell);
* **host cached**: the host computed before (as ``defectnet simulate`` of the same host leaves
  it in the cache), so the basis costs the candidates' patches and cells.

Each is run with ``--workers 1`` and ``--workers N``; the table gives the ratio. The issue's target
is a 6-candidate basis in ≤ 5 min on 2 cores. The machine's load average is recorded: other jobs on
the same cores slow every force call.

    python benchmarks/basis_cost.py                                 # GaAs, 6 candidates, ~25 min
    python benchmarks/basis_cost.py --host Si --candidates B,P,As,Ge,C,Sn --workers 2

Writes ``benchmarks/results/basis_cost/basis_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_basis(host: str, candidates: str, workers: int, cache: Path, out: Path) -> float:
    """Wall seconds of one ``defectnet basis`` run with ``cache`` as the engine cache."""
    env = {**os.environ, "DEFECTNET_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "defectnet.cli", "basis", host, "--candidates", candidates, "--workers",
           str(workers), "--quiet", "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def warm_host(host: str, cache: Path) -> float:
    """Compute the host into ``cache`` (what ``simulate`` leaves there); wall seconds."""
    code = "import sys; from defectnet.host import Host; Host.load(sys.argv[1]).pristine"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, host], env={**os.environ, "DEFECTNET_CACHE": str(cache)}, check=True)
    return time.perf_counter() - t0


def table_md(r: dict) -> str:
    n = r["workers"]
    lines = [f"# `defectnet basis {r['host']} --candidates {r['candidates']}`: wall time, 1 against {n} processes",
             "", f"Load average at the start {r['load_start']}, at the end {r['load_end']} ({r['cores']} cores).", "",
             f"| start | 1 process (min) | {n} processes (min) | ratio |", "|---|---|---|---|"]
    for case, t in r["seconds"].items():
        lines.append(f"| {case} | {t['1'] / 60:.1f} | {t[str(n)] / 60:.1f} | {t['1'] / t[str(n)]:.2f}× |")
    p = r["provenance"]
    lines += ["", f"The host alone (relaxation and force constants): {r['host_seconds'] / 60:.1f} min.", "",
              f"Commit {p['commit']}, `{p['command']}`, {p['date']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="GaAs")
    ap.add_argument("--candidates", default="Si@Ga,Zn@Ga,Be@Ga,C@As,Al@Ga,In@Ga")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "basis_cost")
    args = ap.parse_args(argv)

    from defectnet.provenance import provenance

    prov, load_start = provenance(), os.getloadavg()[0]
    seconds, host_seconds = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in ("cold", "host cached"):
            seconds[case] = {}
            for w in (1, args.workers):
                cache = tmp / f"{case.replace(' ', '-')}-{w}"
                if case == "host cached":
                    host_seconds = warm_host(args.host, cache)
                seconds[case][str(w)] = timed_basis(args.host, args.candidates, w, cache, tmp / f"basis-{w}.npz")
                print(f"{case}, {w} process(es): {seconds[case][str(w)] / 60:.1f} min", flush=True)
    result = {"host": args.host, "candidates": args.candidates, "workers": args.workers, "seconds": seconds,
              "host_seconds": host_seconds, "cores": os.cpu_count(), "load_start": round(load_start, 2),
              "load_end": round(os.getloadavg()[0], 2), "provenance": prov}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "basis_cost.json").write_text(json.dumps(result, indent=1))
    (args.out / "basis_cost.md").write_text(table_md(result))
    print(table_md(result))


if __name__ == "__main__":
    main()
