"""Adapting the shipped model to a host it has never seen, with a few simulated spectra of it.

On hosts outside its training set the shipped model's error is about twice its error on
training hosts (README, "Accuracy today"). A user with such a host can simulate a few doped
spectra of it (``defectnet generate`` with ``hosts: {names: [MyHost]}``: ~10 min of
force-constant patches, then ~1.3 s per spectrum) and fine-tune on them. This measures what
that buys: for every committed host the shipped model was not trained on, ``--test`` of its
doped structures are held out, the model is fine-tuned on ``n`` of the others (each ``n`` of
``--n-train``; a quarter of them validate for early stopping) and both models are scored on
the same held-out structures. Candidate lists: true dopants plus 1–4 distractors from the
host's dopant pool, seeded, as in ``defectnet evaluate``.

Prints a table (metrics over all held-out spectra, before/after and their ratio) and writes
``benchmarks/results/host_adaptation/host_adaptation.json``.

Run: ``python benchmarks/host_adaptation.py [--n-train 8,24] [--test 12] [--epochs 80] [--lr 1e-3]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

import defectnet
from defectnet.model.checkpoint import model_from_checkpoint, pretrained_path, read_checkpoint
from defectnet.model.dataset import SplitConfig, load_training_file, with_candidates
from defectnet.model.evaluate import compute_metrics, predict_arrays
from defectnet.model.train import checkpoint_metrics, finetune_config, train

RESULTS = Path(__file__).resolve().parent / "results" / "host_adaptation" / "host_adaptation.json"
DATA = "datasets/reference,datasets/textbook"
KEYS = ("mae_at_pct", "rmse_at_pct", "r2", "f1", "f1_ge1pct", "distractor_mean_at_pct", "coverage_1sigma_true")


def finetune_on(data, idx, config, out_dir):
    """Fine-tune by ``config`` (:func:`finetune_config`) on samples ``idx`` of ``data``; returns the model."""
    return train(data.subset(idx), config, out_dir, progress=False, log=lambda s: None).model


def score(model, data, idx, mode):
    P, D = data.spectra(mode)
    return predict_arrays(model, P[idx], D[idx], data.composition[idx], data.candidates[idx])


def metrics(outs, data, idx):
    conc = np.concatenate([o["concentration"] for o in outs])
    sig = np.concatenate([o["sigma"] for o in outs])
    pres = np.concatenate([o["presence"] for o in outs])
    m = compute_metrics(conc, data.targets[idx], data.candidates[idx], sigma=sig, presence=pres)
    h = checkpoint_metrics(m)
    return {k: h.get(k) for k in KEYS if k in h} | {"n": int(len(idx))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--model", default=str(pretrained_path()))
    ap.add_argument("--n-train", default="8,24", help="fine-tuning set sizes, comma-separated")
    ap.add_argument("--test", type=int, default=12, help="held-out doped structures per host")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.n_train.split(",")]

    ckpt = read_checkpoint(args.model)
    seen = set(ckpt["data"]["train_hosts"])
    base_model = model_from_checkpoint(ckpt, source=args.model)
    mode = ckpt["spectrum_mode"]
    # a quarter of each fine-tuning set validates (early stopping); none is tested here
    split = SplitConfig(seed=args.seed, ood_fraction=0.0, val_fraction=0.25, test_fraction=0.0)
    config = finetune_config(ckpt, args.model, epochs=args.epochs, lr=args.lr, split=split,
                             overrides={"seed": args.seed, "threads": 1, "max_minutes": 10})
    data = with_candidates(load_training_file(args.data), "pool", args.seed + 1)
    host_of = np.array([str(data.host_names[i]) for i in data.host_id], dtype=object)
    need = args.test + max(sizes) + max(4, max(sizes) // 4)
    hosts = [h for h in data.hosts_of() if h not in seen and (host_of == h).sum() >= need]
    print(f"{len(hosts)} hosts the model was not trained on with >= {need} spectra: {', '.join(hosts)}")

    rows, outs, test_all = [], {"before": []} | {n: [] for n in sizes}, []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for h in hosts:
            rng = np.random.default_rng([args.seed, zlib.crc32(h.encode())])
            idx = rng.permutation(np.flatnonzero(host_of == h))
            test, pool = np.sort(idx[:args.test]), idx[args.test:]
            test_all.append(test)
            row = {"host": h, "n_test": len(test)}
            o = score(base_model, data, test, mode)
            outs["before"].append(o)
            row["before"] = metrics([o], data, test)
            for n in sizes:
                t = time.perf_counter()
                model = finetune_on(data, pool[:n], config, Path(tmp) / f"{h}-{n}")
                o = score(model, data, test, mode)
                outs[n].append(o)
                row[f"n{n}"] = metrics([o], data, test) | {"seconds": round(time.perf_counter() - t, 1)}
            rows.append(row)
            print(f"  {h:10s} MAE before {row['before']['mae_at_pct']:.2f}  "
                  + "  ".join(f"n={n}: {row[f'n{n}']['mae_at_pct']:.2f}" for n in sizes), flush=True)
    test_all = np.concatenate(test_all)
    total = {"before": metrics(outs["before"], data, test_all)}
    for n in sizes:
        total[f"n{n}"] = metrics(outs[n], data, test_all)

    print(f"\n{len(test_all)} held-out spectra of {len(hosts)} never-seen hosts (concentrations in at.%)\n")
    print("| model | MAE | MAE / before | R² | F1 | F1 ≥ 1 at.% | distractor mean |")
    print("|---|---|---|---|---|---|---|")
    for key, label in [("before", "shipped, as is")] + [(f"n{n}", f"fine-tuned on {n} spectra of the host")
                                                          for n in sizes]:
        m = total[key]
        print(f"| {label} | {m['mae_at_pct']:.2f} | {m['mae_at_pct'] / total['before']['mae_at_pct']:.2f} | {m['r2']:.2f} "
              f"| {m['f1']:.2f} | {m['f1_ge1pct']:.2f} | {m['distractor_mean_at_pct']:.2f} |")
    settings = {k: v for k, v in vars(args).items() if k != "out"}  # no machine path in the result
    settings["model"] = "shipped" if args.model == str(pretrained_path()) else args.model
    result = {"benchmark": "host_adaptation", "defectnet_version": defectnet.__version__,
              "machine": platform.processor() or platform.machine(), "model": Path(args.model).name,
              "data": args.data, "settings": settings, "hosts": hosts, "total": total, "per_host": rows,
              "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
