"""Never-seen-host error against the number of training hosts: plain network vs conditioned (issue 33).

The foundation-model claim is that a network reading each candidate through its signature in
the host keeps improving as hosts are added, where the plain network — which must learn every
host's signatures from other hosts — does not. Both are trained by one recipe
(:func:`defectnet.model.conditioned_train.train_conditioned`: same epochs, augmentation, epoch
selection and calibration; the plain one simply gets no basis) on nested, seeded subsets of the
training hosts of ``benchmarks/conditioned.py``'s split, and scored on the same never-seen hosts
with the same candidate lists. Unmixing (no training) is the flat reference line.

    python benchmarks/learning_curve.py                          # ~40 min on 2 idle cores
    python benchmarks/learning_curve.py --fractions 0.5 --epochs 1 --out /tmp/lc   # smoke run

Writes ``benchmarks/results/learning_curve/learning_curve.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from conditioned import TEST_HOSTS, scores, split_hosts, unmix_predictions

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("defectnet", "conditioned")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="datasets/reference,datasets/textbook")
    ap.add_argument("--bases", default="datasets/reference/bases")
    ap.add_argument("--test-hosts", default=",".join(TEST_HOSTS))
    ap.add_argument("--val-hosts", type=int, default=8)
    ap.add_argument("--fractions", default="0.25,0.5,1", help="shares of the training hosts, nested")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--max-minutes", type=float, default=8.0, help="per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine: 2 contend badly)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "learning_curve")
    args = ap.parse_args(argv)

    from defectnet.model.conditioned_train import (ConditionedTrainConfig, basis_training_data, predict_conditioned,
                                                   train_conditioned)
    from defectnet.model.network import ModelConfig
    from defectnet.provenance import provenance

    t0, prov = time.perf_counter(), provenance()
    data, table, bases, _ = basis_training_data(args.data, args.bases, seed=args.seed)
    names = np.asarray(data.host_names, str)[data.host_id]
    test, val, train = split_hosts(sorted(set(names)), args.test_hosts.split(","), 0, args.val_hosts, args.seed)
    te, va = np.flatnonzero(np.isin(names, test)), np.flatnonzero(np.isin(names, val))
    T, M = data.targets[te], data.candidates[te]
    order = np.random.default_rng(args.seed).permutation(train)
    u = unmix_predictions(data, te, bases, 0.0)
    result = {"test": test, "val": val, "n_test": int(len(te)), "unmix": scores(u["concentration"], T, M),
              "runs": [], "provenance": prov, "epochs": args.epochs, "max_minutes": args.max_minutes}
    print(f"test {len(te)} spectra of {len(test)} hosts; unmix MAE {result['unmix']['mae_at_pct']:.3f} at.%", flush=True)
    for fraction in (float(f) for f in args.fractions.split(",")):
        hosts = sorted(order[:max(1, int(round(fraction * len(order))))].tolist())
        tr = np.flatnonzero(np.isin(names, hosts))
        for arch in ARCHS:
            config = ConditionedTrainConfig(model=ModelConfig(arch=arch), epochs=args.epochs,
                                            max_minutes=args.max_minutes, seed=args.seed,
                                            threads=args.threads)
            model, history = train_conditioned(data, table, tr, va, config, progress=False)
            out = predict_conditioned(model, data, table, te)
            row = {"arch": arch, "n_hosts": len(hosts), "n_spectra": int(len(tr)), "epochs_run": history["epochs_run"],
                   "seconds": history["seconds"]} | scores(out["concentration"], T, M, out["sigma"])
            result["runs"].append(row)
            print(f"{arch:12s} {len(hosts):3d} hosts: MAE {row['mae_at_pct']:.3f} at.%, F1≥1% {row['f1_ge1pct']:.3f}, "
                  f"{row['seconds']:.0f} s", flush=True)
    result["seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_curve.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "learning_curve.md").write_text(table_md(result))
    plot(result, args.out / "learning_curve.png")
    print(table_md(result))


def table_md(r: dict) -> str:
    lines = [f"# Never-seen-host MAE against training hosts ({r['n_test']} spectra of {len(r['test'])} hosts)", "",
             "| model | training hosts | spectra | MAE (at.%) | F1 (≥1 at.%) | distractor mean (at.%) | epochs | s |",
             "|---|---|---|---|---|---|---|---|"]
    for x in r["runs"]:
        lines.append(f"| {x['arch']} | {x['n_hosts']} | {x['n_spectra']} | {x['mae_at_pct']:.3f} | {x['f1_ge1pct']:.3f} "
                     f"| {x['distractor_mean_at_pct']:.3f} | {x['epochs_run']} | {x['seconds']:.0f} |")
    u = r["unmix"]
    lines += [f"| *unmix (no training)* | | | *{u['mae_at_pct']:.3f}* | *{u['f1_ge1pct']:.3f}* | "
              f"*{u['distractor_mean_at_pct']:.3f}* | | |", f"| *all zero* | | | *{u['mae_zero_at_pct']:.3f}* | | | | |", "",
              f"Test hosts: {', '.join(r['test'])}. Same recipe for both ({r['epochs']} epochs at most, "
              f"{r['max_minutes']} min per model).", "",
              f"Commit {r['provenance']['commit']}, `{r['provenance']['command']}`, {r['provenance']['date']}."]
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arch, label in (("defectnet", "plain network"), ("conditioned", "conditioned network")):
        rows = [x for x in r["runs"] if x["arch"] == arch]
        ax.plot([x["n_hosts"] for x in rows], [x["mae_at_pct"] for x in rows], "o-", label=label)
    ax.axhline(r["unmix"]["mae_at_pct"], color="grey", ls="--", label="unmix (no training)")
    ax.axhline(r["unmix"]["mae_zero_at_pct"], color="grey", ls=":", label="all zero")
    ax.set_xscale("log")
    hosts = sorted({x["n_hosts"] for x in r["runs"]})
    ax.set_xticks(hosts, [str(n) for n in hosts])
    ax.minorticks_off()
    ax.set_xlabel("training hosts")
    ax.set_ylabel("MAE on never-seen hosts (at.%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
