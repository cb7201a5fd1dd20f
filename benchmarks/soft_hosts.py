"""Why do soft rocksalt hosts lose most of their high-concentration samples?

Two measurements on a generated store (patch tier), both without new force calls in the
large cell:

* ``--placements``: after ``defectnet generate ... --retry-failed imaginary_modes`` with
  ``placement_attempts > 1``, how many rejected samples a new placement of the same
  dopants recovered, per host and per attempt (read from ``timings.placement_attempts``).
* ``--unrelaxed HOST``: the lowest Γ mode of stored samples of HOST rebuilt twice, with
  the store's relaxed patches and with patches computed without relaxation. If the
  unrelaxed ones were stable, superposing the relaxation fields would be the artefact.

    python benchmarks/soft_hosts.py data/ref.sqlite --placements
    python benchmarks/soft_hosts.py data/ref.sqlite --unrelaxed BaO --only Sr --n 10

Writes (merges into) ``benchmarks/results/soft_hosts/soft_hosts.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from defectnet.data import tasks as T
from defectnet.data.config import GenerateConfig
from defectnet.data.plan import SampleJob, draw_seeds
from defectnet.data.store import Store

OUT = Path(__file__).parent / "results" / "soft_hosts" / "soft_hosts.json"


def placements(store_path) -> dict:
    """Per host: samples ok at each placement attempt and samples failed after all of them."""
    out: dict = defaultdict(lambda: {"ok_by_attempt": {}, "failed": 0, "attempts": 0})
    with Store(store_path) as s:
        for r in s.samples(None):
            h = out[r["host"]]
            k = int((r["timings"] or {}).get("placement_attempts", 1))
            h["attempts"] = max(h["attempts"], k)
            if r["status"] == "failed":
                h["failed"] += r["reason"] == "imaginary_modes"
            else:
                h["ok_by_attempt"][str(k)] = h["ok_by_attempt"].get(str(k), 0) + 1
    return {k: v for k, v in out.items() if v["attempts"] > 1}


def unrelaxed(store_path, host: str, only=None, n: int = 10) -> list[dict]:
    """Lowest Γ mode (meV) of ``n`` stored samples of ``host``, relaxed vs unrelaxed patches."""
    with Store(store_path) as s:
        config = GenerateConfig.from_dict(s.get_meta("config"))
        h = s.host(host, blobs=True)
        blobs = [p["data"] for p in s.patches(h["id"], blobs=True) if p["status"] == "ok"]
        rows = [r for r in s.samples(None) if r["host"] == host
                and (only is None or {d[0] for d in r["dopants"]} <= set(only))]
    calc, _ = T._calculator(config.potential)
    probe = T._NoProbe()
    rel = replace(config, max_doped_imaginary_mev=1e9, placement_attempts=1)  # measure, never reject
    unrel = replace(rel, tier_settings=replace(config.tier_settings, relax=False, soft_mode_tol_mev=0.0))
    ctx_rel = T._context(host, h["pristine"], config)
    T._add_patches(ctx_rel, blobs, config.tier_settings)
    ctx_unrel = T._context(host, h["pristine"], unrel)  # its own host object: patches computed anew
    out = []
    for r in sorted(rows, key=lambda r: r["sample_index"])[:n]:
        job = SampleJob(r["sample_index"], r["seed"], tuple((d[0], d[1], d[2]) for d in r["dopants"]), (), (),
                        draw_seeds(r["seed"])[2])
        res = {"sample_index": r["sample_index"], "status": r["status"],
               "total_concentration": float(sum(d[2] for d in r["dopants"]))}
        for name, cfg, ctx in (("relaxed", rel, ctx_rel), ("unrelaxed", unrel, ctx_unrel)):
            row: dict = {}
            T._one_sample(ctx, job, cfg, calc, probe, T._Timer(probe), row)
            res[f"min_mev_{name}"] = round(row["min_frequency_mev"], 2)
        out.append(res)
        print(res, flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--placements", action="store_true")
    ap.add_argument("--unrelaxed", metavar="HOST")
    ap.add_argument("--only", default=None, help="only samples whose dopants are among these (comma-separated)")
    ap.add_argument("--n", type=int, default=10)
    args = ap.parse_args(argv)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.placements:
        result["placements"] = placements(args.store)
        print(f"{'host':8} {'ok by attempt':30} failed in every attempt")
        for host, v in result["placements"].items():
            print(f"{host:8} {json.dumps(v['ok_by_attempt']):30} {v['failed']}")
    if args.unrelaxed:
        key = args.unrelaxed + (f":{args.only}" if args.only else "")
        result.setdefault("unrelaxed", {})[key] = unrelaxed(args.store, args.unrelaxed,
                                                             args.only.split(",") if args.only else None, args.n)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
