"""Unmixing corrected by the forward model (``defectnet.unmix.refine``) against unmixing alone.

A signature basis adds each candidate's own curve; a mix of several dopants at 10–30 % gives
less signal than that sum, so :func:`~defectnet.unmix.unmix` reads it low. ``refine``
synthesises the mix at the current concentrations (the host's patches: no force call) and
corrects them by the basis' least-squares step, a few times. This benchmark takes the hosts of
a generation store that have a basis (``defectnet dataset bases``), draws samples of each
(seeded), unmixes their GPDoS with every element of the host's dopant pool as a candidate (the
true dopants and the rest of the pool as distractors) and refines it, and scores both on the
same samples, overall and by total dopant fraction. ``best≤k`` rows score what ``refine`` with
k < ``--iterations`` iterations would have kept (from its history), so one run settles the count.

    python benchmarks/refine.py --store data/ref18.sqlite --basis-dir datasets/reference/bases \
        --samples 12 --iterations 3 --out benchmarks/results/refine/refine.json

The spectra are patch-tier like the forward model, so this measures how far the basis'
additivity is from the tier's own physics, not the MLIP's error against a measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"all": (0.0, 1.0), "total < 10 %": (0.0, 0.10), "total ≥ 10 %": (0.10, 1.0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="generation store with the hosts' patches")
    ap.add_argument("--basis-dir", default="datasets/reference/bases")
    ap.add_argument("--hosts", default="all", help="comma-separated, or 'all': every store host with a basis")
    ap.add_argument("--samples", type=int, default=12, help="samples drawn per host")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "refine" / "refine.json"))
    args = ap.parse_args(argv)

    import torch

    from defectnet.data.bases import pool_sites, store_synthesizer
    from defectnet.data.store import Store, unpack_arrays
    from defectnet.model.evaluate import compute_metrics
    from defectnet.synthesis import refine
    from defectnet.unmix import SignatureBasis, unmix

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    with Store(args.store, "r") as s:
        pools = pool_sites(s)
        rows_by_host = {}
        for r in s.samples():
            rows_by_host.setdefault(r["host"], []).append(r["id"])
    have = sorted(h for h in pools if (Path(args.basis_dir) / f"{h}.npz").exists())
    hosts = have if args.hosts == "all" else [h.strip() for h in args.hosts.split(",")]
    vocab = sorted({el for h in hosts for el in pools[h]})
    preds = {"unmix": [], "refine": []} | {f"best≤{k}": [] for k in range(1, args.iterations)}
    true, cand, seconds = [], [], {"unmix": 0.0, "refine": 0.0}
    for host in hosts:
        basis = SignatureBasis.load(Path(args.basis_dir) / f"{host}.npz")
        syn = store_synthesizer(args.store, host)
        ids = rng.choice(rows_by_host[host], size=min(args.samples, len(rows_by_host[host])), replace=False)
        with Store(args.store, "r") as s:
            rows = [s.conn.execute("SELECT concentrations, arrays FROM samples WHERE id = ?", (int(i),)).fetchone()
                    for i in ids]
        p = syn.pristine["gpdos"]
        cands = [el for el in pools[host] if el in basis.elements]
        for conc_json, blob in rows:
            conc = json.loads(conc_json)
            doped = unpack_arrays(blob)["doped_gpdos"].astype(float)
            t0 = time.perf_counter()
            u = unmix(p, doped, basis, kind="gpdos", candidates=cands)
            t1 = time.perf_counter()
            r = refine(p, doped, basis, syn, kind="gpdos", candidates=cands, iterations=args.iterations,
                       seed=args.seed + 1)
            seconds["unmix"] += t1 - t0
            seconds["refine"] += time.perf_counter() - t1
            row_t, row_c = np.zeros(len(vocab)), np.zeros(len(vocab), bool)
            for el in cands:
                row_c[vocab.index(el)] = True
            for el, c in conc.items():
                row_t[vocab.index(el)] = c
            for name, fit in (("unmix", u), ("refine", r)):
                preds[name].append([(fit[el]["concentration"], fit[el]["uncertainty"]) if el in cands else (0.0, 0.0)
                                    for el in vocab])
            hist = r.fit["history"]
            for k in range(1, args.iterations):  # what refine with k iterations would have kept (no 1σ)
                kept = min(hist[:k + 1], key=lambda h: h["residual_fraction"])["concentrations"]
                preds[f"best≤{k}"].append([(kept[el], np.nan) if el in cands else (0.0, 0.0) for el in vocab])
            true.append(row_t), cand.append(row_c)
        print(f"{host}: {len(rows)} samples, refine {seconds['refine']:.0f} s so far", flush=True)
    T, C = np.array(true), np.array(cand)
    total = T.sum(1)
    results = {}
    for split, (lo, hi) in SPLITS.items():
        sel = (total >= lo) & (total < hi)
        for name, rows in preds.items():
            a = np.array(rows)[sel]
            sigma = None if np.isnan(a[..., 1]).any() else a[..., 1]
            m = compute_metrics(a[..., 0], T[sel], C[sel], sigma=sigma)
            tr = (T[sel] > 0) & C[sel] & (T[sel] >= 0.03)
            results.setdefault(split, {})[name] = {
                "n_samples": int(sel.sum()), "mae_at_pct": m["mae_at_pct"], "f1": m["detection"]["f1"],
                "f1_ge1pct": m["detection_ge1pct"]["f1"], "distractor_mean_at_pct": m["distractor_mean_at_pct"],
                "median_ratio_ge3pct": float(np.median(a[..., 0][tr] / T[sel][tr])) if tr.any() else None,
                "coverage_1sigma": m.get("calibration", {}).get("coverage_1sigma_true")}
    print(f"\n{len(T)} samples of {len(hosts)} hosts; {args.iterations} iterations; "
          f"{seconds['refine'] / len(T):.1f} s per sample refined, {seconds['unmix'] / len(T):.2f} s unmixed")
    print(f"{'samples':14s} {'method':8s} {'n':>4s} {'MAE at.%':>9s} {'F1':>6s} {'F1≥1%':>6s} {'distr.':>7s} "
          f"{'pred/true≥3%':>13s} {'±1σ cov.':>8s}")
    for split, by in results.items():
        for name, m in by.items():
            ratio = "–" if m["median_ratio_ge3pct"] is None else f"{m['median_ratio_ge3pct']:.2f}"
            cov = "–" if m["coverage_1sigma"] is None else f"{m['coverage_1sigma']:.2f}"
            print(f"{split:14s} {name:8s} {m['n_samples']:4d} {m['mae_at_pct']:9.3f} {m['f1']:6.3f} "
                  f"{m['f1_ge1pct']:6.3f} {m['distractor_mean_at_pct']:7.3f} {ratio:>13s} {cov:>8s}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"store": args.store, "hosts": hosts, "samples_per_host": args.samples,
                                          "iterations": args.iterations, "seed": args.seed, "results": results,
                                          "seconds_per_sample": {k: v / len(T) for k, v in seconds.items()}},
                                         indent=1, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
