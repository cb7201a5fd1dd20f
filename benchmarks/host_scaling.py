"""How the error on hosts never seen falls with the number of training hosts (issues 4 and 5).

The shipped model's error on a new host is about twice its error on a training host, and no
change of seed, capacity or regularisation closed that gap (README, "Neither seeds nor capacity
help"). If the gap is a lack of hosts, it should shrink as hosts are added. This trains one
recipe (``--config``, default ``configs/candidate.yaml``) on nested, seeded subsets of the
training hosts — a fraction of them, always the same ``ood_hosts`` and ``calib_hosts`` held
out — and scores every run on the same never-seen hosts (the config's ``ood_hosts``), with the
same candidate lists. A power law MAE ∝ N_hosts^(−α) fitted to the mean over seeds gives the
number of hosts a target MAE would need (an extrapolation: reported as such).

Prints a table and writes ``benchmarks/results/host_scaling/host_scaling.json`` and ``.png``.

Run: ``python benchmarks/host_scaling.py [--fractions 0.25,0.5,1] [--seeds 0,1] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import defectnet
from defectnet.model.config import TrainConfig
from defectnet.model.dataset import load_training_file
from defectnet.model.evaluate import evaluate_checkpoint
from defectnet.model.train import train

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "host_scaling" / "host_scaling.json"
DATA = "datasets/reference,datasets/textbook"
KEYS = ("mae_at_pct", "f1", "f1_ge1pct", "distractor_mean_at_pct")


def host_subset(data, held_out, fraction: float, seed: int) -> list[str]:
    """The first ``fraction`` of a seeded permutation of the hosts not ``held_out`` (nested in ``fraction``)."""
    pool = sorted(h for h in data.hosts_of() if h not in held_out)
    order = np.random.default_rng(seed).permutation(pool)
    return sorted(order[:max(1, int(round(fraction * len(pool))))].tolist())


def headline(m: dict) -> dict:
    return {"mae_at_pct": m["mae_at_pct"], "f1": m["detection"]["f1"], "f1_ge1pct": m["detection_ge1pct"]["f1"],
            "distractor_mean_at_pct": m["distractor_mean_at_pct"]}


def power_law(n_hosts, mae) -> tuple[float, float]:
    """Least-squares fit of ln MAE = ln a − α ln N; returns (a, α)."""
    slope, intercept = np.polyfit(np.log(n_hosts), np.log(mae), 1)
    return float(np.exp(intercept)), float(-slope)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--config", default=str(ROOT.parent / "configs" / "candidate.yaml"))
    ap.add_argument("--fractions", default="0.25,0.5,1", help="shares of the training hosts, comma-separated")
    ap.add_argument("--seeds", default="0,1", help="training seeds (also draw the host subsets)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target-mae", type=float, default=1.0, help="at.%%: hosts needed for it, by the fitted law")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]

    base = TrainConfig.from_yaml(args.config)
    if not base.split.ood_hosts:
        raise SystemExit(f"{args.config}: split.ood_hosts must name the never-seen hosts to score on")
    data = load_training_file(args.data)
    host_of = np.asarray(data.host_names, dtype=str)[data.host_id]
    held_out = set(base.split.ood_hosts) | set(base.split.calib_hosts)
    test_ids = data.sample_id[np.isin(host_of, base.split.ood_hosts)]
    print(f"{len(data)} spectra of {len(data.hosts_of())} hosts; scored on {len(test_ids)} spectra of "
          f"{', '.join(base.split.ood_hosts)}", flush=True)

    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for frac in fractions:
                hosts = host_subset(data, held_out, frac, seed)
                keep = np.flatnonzero(np.isin(host_of, hosts + sorted(held_out)))
                config = TrainConfig.from_dict({**base.to_dict(), "seed": seed, "threads": args.threads})
                run = Path(tmp) / f"s{seed}-f{frac}"
                t = time.perf_counter()
                result = train(data.subset(keep), config, run, progress=False, log=lambda s: None)
                m = evaluate_checkpoint(run / "model.pt", args.data, split="all", sample_ids=test_ids, plots=False)
                row = {"seed": seed, "fraction": frac, "n_train_hosts": len(hosts), "n_train_spectra": len(keep),
                       "epochs": len(result.history), "seconds": round(time.perf_counter() - t, 1)} | headline(m)
                rows.append(row)
                print(f"  seed {seed} hosts {len(hosts):3d}: MAE {row['mae_at_pct']:.2f}  F1 {row['f1']:.2f}  "
                      f"distractor {row['distractor_mean_at_pct']:.2f}  ({row['seconds']:.0f} s)", flush=True)

    means = []
    for frac in fractions:
        sel = [r for r in rows if r["fraction"] == frac]
        means.append({"fraction": frac, "n_train_hosts": float(np.mean([r["n_train_hosts"] for r in sel]))}
                     | {k: float(np.mean([r[k] for r in sel])) for k in KEYS})
    a, alpha = power_law([m["n_train_hosts"] for m in means], [m["mae_at_pct"] for m in means])
    need = (a / args.target_mae) ** (1 / alpha) if alpha > 0 else float("inf")

    print(f"\nOn {len(test_ids)} spectra of {len(base.split.ood_hosts)} never-seen hosts, mean of seeds "
          f"{args.seeds} (at.%)\n")
    print("| training hosts | MAE | MAE / all hosts | F1 | F1 ≥ 1 at.% | distractor mean |")
    print("|---|---|---|---|---|---|")
    for m in means:
        print(f"| {m['n_train_hosts']:.0f} | {m['mae_at_pct']:.2f} | {m['mae_at_pct'] / means[-1]['mae_at_pct']:.2f} "
              f"| {m['f1']:.2f} | {m['f1_ge1pct']:.2f} | {m['distractor_mean_at_pct']:.2f} |")
    print(f"\nfit MAE = {a:.2f} · N^-{alpha:.3f}; MAE {args.target_mae} at.% would need ~{need:,.0f} training hosts "
          "(extrapolated)")

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "config")}  # no machine path
    settings["config"] = Path(args.config).name
    result = {"benchmark": "host_scaling", "defectnet_version": defectnet.__version__,
              "machine": platform.processor() or platform.machine(), "settings": settings,
              "ood_hosts": list(base.split.ood_hosts), "n_test_spectra": int(len(test_ids)), "runs": rows,
              "mean": means, "fit": {"a": a, "alpha": alpha, "target_mae_at_pct": args.target_mae,
                                     "hosts_needed": need},
              "seconds": round(time.perf_counter() - t0, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot(rows, means, (a, alpha), out.with_suffix(".png"))
    print(f"\nwrote {out} and {out.with_suffix('.png').name} ({result['seconds']:.0f} s)")
    return 0


def plot(rows, means, fit, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.loglog([r["n_train_hosts"] for r in rows], [r["mae_at_pct"] for r in rows], "o", alpha=0.5, label="runs")
    n = np.array([m["n_train_hosts"] for m in means])
    ax.loglog(n, [m["mae_at_pct"] for m in means], "s-", label="mean over seeds")
    grid = np.geomspace(n.min(), 1000, 50)
    ax.loglog(grid, fit[0] * grid ** -fit[1], "--", lw=1, label=f"fit, α = {fit[1]:.2f}")
    ax.set_xlabel("training hosts")
    ax.set_ylabel("MAE on never-seen hosts (at.%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
