"""Accuracy benchmark: DefectNet (ours) vs the paper's architecture vs simple baselines, one run.

Same training file, same host-grouped split, same training budget (epochs, batch size,
early stopping, wall-clock limit) for both networks; the baselines (per-element mean,
ridge, k-NN, gradient boosting on difference spectra) are fitted on the same training
samples. Every model is scored on the in-distribution test (unseen configurations of
training hosts) and the out-of-distribution test (hosts never seen). Speed: training
seconds per 1,000 spectra per epoch, and batched inference throughput.

Writes ``benchmarks/results/accuracy/accuracy.json`` and ``accuracy.md`` (the README table).

Run::

    python benchmarks/accuracy.py --data data/dev_mass.h5 --threads 1
    python benchmarks/accuracy.py --data data/ref.h5 --epochs 60          # the real dataset
    python benchmarks/accuracy.py --speed-only                            # 16k synthetic spectra
    python benchmarks/accuracy.py --data datasets/reference,datasets/textbook --threads 1 \
        --ood-include InAs,HgTe,CuI,NaCl --basis-dir runs/unmix-basis --tag accuracy-116
        # + analysis by synthesis (defectnet.unmix) on the OOD hosts with a signature basis
        #   (made by benchmarks/unmix.py), every model scored on those same samples
    python benchmarks/accuracy.py --data datasets/reference,datasets/textbook --threads 1 --spectrum-mode gpdos \
        --ood-include InAs,HgTe,CuI,NaCl,ZnSe,GaSb,KBr --basis-dir runs/unmix-basis-all --no-speed \
        --tag accuracy-gpdos-130   # every model on GPDoS (what INS measures); the README table
    python benchmarks/accuracy.py ... --reuse-runs --basis-dir datasets/reference/bases --tag accuracy-gpdos-221-bases
        # the networks of a finished run (same arguments, same --runs) scored again with a basis row added

With ``--basis-dir``, the results also hold ``basis_subset``: the OOD samples of hosts that
have a basis ``DIR/HOST.npz`` (and whose candidates it all covers), scored for every model
and for :func:`defectnet.unmix.unmix` (method ``auto`` on GPDoS, what ``predict --basis`` does).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "accuracy"
HEADLINE = ("mae_at_pct", "rmse_at_pct", "r2", "mae_true_at_pct", "f1", "f1_ge1pct", "distractor_mean_at_pct")


def _headline(m: dict) -> dict:
    out = {k: m[k] for k in ("mae_at_pct", "rmse_at_pct", "r2", "mae_true_at_pct", "distractor_mean_at_pct",
                             "median_relative_error_true", "n_samples")}
    out["f1"], out["precision"], out["recall"] = (m["detection"][k] for k in ("f1", "precision", "recall"))
    out["f1_ge1pct"] = m["detection_ge1pct"]["f1"]
    out.update(m.get("calibration", {}))
    return out


def throughput(model, data, n: int = 4096, batch_size: int = 2048, repeats: int = 3) -> dict:
    """Batched inference speed (best of ``repeats``): spectra per wall-clock second and per CPU second.

    On a shared machine the wall-clock number depends on the other load; spectra per CPU
    second × threads is what the same code reaches with the cores to itself.
    """
    from defectnet.model.evaluate import predict_arrays

    idx = np.resize(np.arange(len(data)), n)
    arrays = [np.ascontiguousarray(a[idx]) for a in (data.pristine, data.doped, data.composition, data.candidates)]
    predict_arrays(model, *(a[:64] for a in arrays))
    wall, cpu = 0.0, 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        predict_arrays(model, *arrays, batch_size=batch_size)
        wall = max(wall, n / (time.perf_counter() - t0))
        cpu = max(cpu, n / (time.process_time() - c0))
    return {"spectra_per_s": wall, "spectra_per_cpu_s": cpu}


def draw_ood_hosts(hosts, include, fraction: float, seed: int) -> list:
    """``include`` plus a seeded draw from the other ``hosts``, ``fraction`` of all hosts in total."""
    include = sorted(set(include))
    rest = [h for h in hosts if h not in include]
    n = min(max(int(round(fraction * len(hosts))) - len(include), 0), len(rest))
    return sorted(include + np.random.default_rng(seed).choice(rest, size=n, replace=False).tolist())


def unmix_predictions(data, idx, basis_dir) -> tuple[np.ndarray, dict]:
    """Analysis by synthesis of samples ``idx`` whose host has a basis in ``basis_dir``.

    Returns the samples it covers (a subset of ``idx``: hosts with a basis that holds, or
    records as unstable, all their candidates) and their ``concentration``, ``sigma`` and ``presence`` arrays, each (n, V).
    """
    from defectnet.unmix import SignatureBasis, unmix_arrays

    vocab, keep, parts = np.asarray(data.vocabulary), [], []
    hosts = data.host_names[data.host_id[idx]]
    for host in sorted(set(hosts)):
        path = Path(basis_dir) / f"{host}.npz"
        if not path.exists():
            continue
        basis = SignatureBasis.load(path)
        rows = idx[hosts == host]
        known = set(basis.elements) | set(basis.failed)  # a failed candidate is reported absent (0), as unmix does
        rows = rows[[set(vocab[data.candidates[i]]) <= known for i in rows]]
        keep.append(rows)
        parts.append(unmix_arrays(data.pristine_gpdos[rows], data.doped_gpdos[rows], data.candidates[rows], vocab,
                                  basis, kind="gpdos"))
    keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    order = np.argsort(keep)  # back to the order of idx (sorted)
    out = {k: np.concatenate([p[k] for p in parts])[order] if parts else np.zeros((0, len(vocab)))
           for k in ("concentration", "sigma", "presence")}
    return keep[order], out


def reused_run(run_dir: Path, split):
    """The finished run in ``run_dir`` as :func:`~defectnet.model.train.train` returns it, if it was
    trained on this very split (same training and OOD samples); else None (train again)."""
    from types import SimpleNamespace

    from defectnet.model.checkpoint import load_model

    files = [run_dir / f for f in ("model.pt", "split.json", "final_metrics.json")]
    if not all(f.exists() for f in files):
        return None
    saved = json.loads(files[1].read_text())
    if any(list(saved[k]) != [int(i) for i in getattr(split, k)] for k in ("train", "test_ood")):
        print(f"{run_dir}: trained on another split; training again", file=sys.stderr, flush=True)
        return None
    metrics = json.loads(files[2].read_text())
    print(f"{run_dir}: reusing the model trained on this split", file=sys.stderr, flush=True)
    return SimpleNamespace(model=load_model(files[0]), seconds=metrics["train_seconds"], metrics=metrics)


def run_accuracy(args) -> dict:
    import torch

    from defectnet.model.baselines import BASELINES
    from defectnet.model.dataset import (
        load_training_file,
        split_by_host,
        with_candidates,
    )
    from defectnet.model.evaluate import compute_metrics, predict_arrays
    from defectnet.model.train import TrainConfig, train

    data = load_training_file(args.data)
    configs = {"defectnet": TrainConfig.from_yaml(ROOT / "configs" / "defectnet.yaml"),
               "paper": TrainConfig.from_yaml(ROOT / "configs" / "paper.yaml")}
    budget = dict(epochs=args.epochs, patience=args.patience, max_minutes=args.max_minutes, threads=args.threads,
                  seed=args.seed)
    spectra = {"spectrum_mode": args.spectrum_mode} if args.spectrum_mode else {}
    configs = {k: replace(c, **budget, **spectra, split=replace(c.split, seed=args.seed)) for k, c in configs.items()}
    # the candidate lists every model is trained on (per epoch) and tested on, as train() makes them
    data = with_candidates(data, configs["defectnet"].distractors, args.seed + 1)
    if args.ood_include:
        ood = draw_ood_hosts(data.hosts_of(), args.ood_include.split(","), configs["defectnet"].split.ood_fraction,
                             args.seed)
        configs = {k: replace(c, split=replace(c.split, ood_hosts=tuple(ood))) for k, c in configs.items()}
    split = split_by_host(data, configs["defectnet"].split)
    mode = configs["defectnet"].spectrum_mode  # the spectra every model is given (--spectrum-mode or its config)
    ood_preds = {}  # model -> (concentration, sigma, presence) on split.test_ood
    parts = {"id": split.test_id, "ood": split.test_ood}
    results = {"data": {"path": str(args.data), "n_samples": len(data), "tier": data.attrs.get("tier"),
                        "potential": data.attrs.get("potential"), "n_hosts": len(data.hosts_of()),
                        "train_hosts": list(split.train_hosts), "ood_hosts": list(split.ood_hosts),
                        "n_train": len(split.train), "n_val": len(split.val), "n_test_id": len(split.test_id),
                        "n_test_ood": len(split.test_ood)},
               "budget": budget, "spectrum_mode": mode, "models": {}}
    P, D = data.spectra(mode)

    def arrays(idx):
        return P[idx], D[idx], data.composition[idx], data.candidates[idx]

    for name, cfg in configs.items():
        print(f"--- training {name}", file=sys.stderr, flush=True)
        c0 = time.process_time()
        res = reused_run(Path(args.runs) / name, split) if args.reuse_runs else None
        reused = res is not None
        if not reused:
            res = train(data, cfg, Path(args.runs) / name, progress=False)
        entry = {"train_seconds": res.seconds, "reused": reused,
                 "train_cpu_seconds": None if reused else time.process_time() - c0, "epochs_run": res.metrics["epochs_run"],
                 "best_epoch": res.metrics["best_epoch"], "n_parameters": res.metrics["n_parameters"],
                 "seconds_per_1k_spectra_epoch": 1000 * res.seconds / (res.metrics["epochs_run"] * len(split.train)),
                 "inference": throughput(res.model, data)}
        for part, idx in parts.items():
            o = predict_arrays(res.model, *arrays(idx))
            m = compute_metrics(o["concentration"], data.targets[idx], data.candidates[idx], sigma=o["sigma"],
                                presence=o["presence"] if name != "paper" else None, n_dopants=data.n_dopants[idx],
                                vocabulary=data.vocabulary)
            entry[part] = _headline(m)
            entry[part + "_full"] = m
            if part == "ood":
                ood_preds[name] = (o["concentration"], o["sigma"], o["presence"] if name != "paper" else None)
        results["models"][name] = entry
    torch.set_num_threads(args.threads)
    for name, cls in BASELINES.items():
        print(f"--- fitting baseline {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        est = cls(data.grid.widths).fit(*arrays(split.train), data.targets[split.train])
        entry = {"train_seconds": time.perf_counter() - t0}
        for part, idx in parts.items():
            pred = est.predict(*arrays(idx))
            m = compute_metrics(pred, data.targets[idx], data.candidates[idx],
                                n_dopants=data.n_dopants[idx], vocabulary=data.vocabulary)
            entry[part] = _headline(m)
            if part == "ood":
                ood_preds[name] = (pred, None, None)
        results["models"][name] = entry
    if args.basis_dir:
        print("--- analysis by synthesis on the OOD hosts with a basis", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        keep, out = unmix_predictions(data, split.test_ood, args.basis_dir)
        seconds = time.perf_counter() - t0
        rows = np.searchsorted(split.test_ood, keep)  # split.test_ood is sorted
        sub = {"hosts": data.hosts_of(keep), "n_samples": len(keep), "unmix_seconds": seconds, "models": {}}
        on_keep = {name: tuple(None if a is None else a[rows] for a in p) for name, p in ood_preds.items()}
        on_keep["unmix (basis)"] = (out["concentration"], out["sigma"], out["presence"])
        for name, (conc, sigma, presence) in on_keep.items():
            m = compute_metrics(conc, data.targets[keep], data.candidates[keep], sigma=sigma, presence=presence,
                                n_dopants=data.n_dopants[keep], vocabulary=data.vocabulary)
            sub["models"][name] = _headline(m)
        sub["reference"] = m["reference"]  # what knowing nothing scores on these samples (the same for all)
        results["basis_subset"] = sub
    ours, paper = results["models"]["defectnet"], results["models"]["paper"]
    results["targets"] = {
        "ood_mae_ratio_vs_paper": ours["ood"]["mae_at_pct"] / paper["ood"]["mae_at_pct"],
        **({"basis_subset_unmix_mae_ratio_vs_paper":
            results["basis_subset"]["models"]["unmix (basis)"]["mae_at_pct"]
            / results["basis_subset"]["models"]["paper"]["mae_at_pct"]} if "basis_subset" in results else {}),
        "ood_f1_ge1pct": ours["ood"]["f1_ge1pct"],
        "ood_distractor_mean_at_pct": ours["ood"]["distractor_mean_at_pct"],
        "inference_spectra_per_s": ours["inference"]["spectra_per_s"],
        "inference_spectra_per_cpu_s": ours["inference"]["spectra_per_cpu_s"],
    }
    return results


def run_speed(args) -> dict:
    """Training time per epoch on 16,000 synthetic spectra (same shapes as real data) and inference throughput."""
    from defectnet.model.synthetic import make_synthetic
    from defectnet.model.train import TrainConfig, train

    data = make_synthetic(200, 80, seed=0)  # 16,000 spectra
    out = {"n_spectra": len(data), "threads": args.threads}
    for name in ("defectnet", "paper"):
        cfg = TrainConfig.from_yaml(ROOT / "configs" / f"{name}.yaml")
        cfg = replace(cfg, epochs=1, threads=args.threads, split=replace(cfg.split, ood_fraction=0.0,
                                                                         val_fraction=0.02, test_fraction=0.0))
        c0 = time.process_time()
        res = train(data, cfg, Path(args.runs) / f"speed-{name}", progress=False)
        cpu = time.process_time() - c0
        n_train = res.model.meta["data"]["n_train"]
        out[name] = {"epoch_seconds": res.seconds, "epoch_cpu_seconds_incl_final_eval": cpu, "n_train": n_train,
                     "seconds_per_epoch_16k": res.seconds * 16000 / n_train,
                     "n_parameters": res.metrics["n_parameters"],
                     "inference": throughput(res.model, data, n=8192)}
    return out


def run_inference(args) -> dict:
    """Batched inference of the shipped model on 16,000 synthetic spectra, with 1 and ``--threads`` threads."""
    import torch

    from defectnet.model.checkpoint import load_model
    from defectnet.model.synthetic import make_synthetic

    data = make_synthetic(200, 80, seed=0)
    model = load_model()
    out = {"n_spectra": len(data), "n_parameters": sum(p.numel() for p in model.parameters())}
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        out[f"threads_{threads}"] = throughput(model, data, n=8192)
    return out


def markdown(results: dict) -> str:
    rows = ["| model | split | MAE (at.%) | RMSE (at.%) | R² | MAE true dopants | F1 @0.1 at.% | F1 (≥1 at.%) "
            "| distractor mean (at.%) | 1σ / 2σ coverage |", "|" + "---|" * 10]
    for name, e in results["models"].items():
        for part in ("id", "ood"):
            m = e[part]
            cov = (f"{m['coverage_1sigma_true']:.2f} / {m['coverage_2sigma_true']:.2f}"
                   if "coverage_1sigma_true" in m else "–")
            rows.append(f"| {name} | {part.upper()} | {m['mae_at_pct']:.3f} | {m['rmse_at_pct']:.3f} | {m['r2']:.3f} "
                        f"| {m['mae_true_at_pct']:.3f} | {m['f1']:.3f} | {m['f1_ge1pct']:.3f} "
                        f"| {m['distractor_mean_at_pct']:.3f} | {cov} |")
    d = results["data"]
    head = (f"Data: `{d['path']}` ({d['n_samples']} spectra, {d['n_hosts']} hosts, tier `{d['tier']}`); "
            f"train {d['n_train']} / val {d['n_val']} / ID test {d['n_test_id']} / OOD test {d['n_test_ood']} "
            f"(OOD hosts: {', '.join(d['ood_hosts'])}). Spectra: {results.get('spectrum_mode', 'total')}. "
            f"Budget: {results['budget']}.\n\n")
    out = head + "\n".join(rows) + "\n"
    if "basis_subset" in results:
        b = results["basis_subset"]
        out += (f"\nOOD samples of hosts with a signature basis ({', '.join(b['hosts'])}: {b['n_samples']} spectra), "
                "every model on the same samples:\n\n| model | MAE (at.%) | R² | F1 @0.1 at.% | F1 (≥1 at.%) "
                "| distractor mean (at.%) | 1σ coverage |\n|---|---|---|---|---|---|---|\n")
        for name, m in b["models"].items():
            cov = f"{m['coverage_1sigma_true']:.2f}" if "coverage_1sigma_true" in m else "–"
            out += (f"| {name} | {m['mae_at_pct']:.3f} | {m['r2']:.3f} | {m['f1']:.3f} | {m['f1_ge1pct']:.3f} "
                    f"| {m['distractor_mean_at_pct']:.3f} | {cov} |\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="training file (.h5/.npz)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=12)
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/benchmark", help="where the training runs go")
    ap.add_argument("--ood-include", default="", help="comma-separated hosts always held out (the rest of the "
                                                      "OOD share is drawn with --seed)")
    ap.add_argument("--basis-dir", default=None, help="signature bases HOST.npz (benchmarks/unmix.py): adds "
                                                      "analysis by synthesis on those OOD hosts")
    ap.add_argument("--spectrum-mode", choices=("total", "gpdos"), default=None,
                    help="the spectra every model sees (default: the configs' own, total PDoS); gpdos is what INS measures")
    ap.add_argument("--reuse-runs", action="store_true",
                    help="score the networks already in --runs when they were trained on this split (e.g. to add "
                         "--basis-dir to a finished run) instead of training them again")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--inference-only", action="store_true",
                    help="only the batched inference speed of the shipped model (1 and --threads threads)")
    ap.add_argument("--tag", default="accuracy", help="results file stem")
    args = ap.parse_args(argv)

    import defectnet

    results = {"defectnet_version": defectnet.__version__, "machine": platform.processor() or platform.machine(),
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    if args.inference_only:
        results["inference"] = run_inference(args)
        (RESULTS / f"{args.tag}.json").write_text(json.dumps(results, indent=2, default=float))
        print(json.dumps(results["inference"], indent=2))
        return 0
    if not args.speed_only:
        if not args.data:
            ap.error("--data is required unless --speed-only")
        results.update(run_accuracy(args))
    if not args.no_speed:
        results["speed"] = run_speed(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(results, indent=2, default=float))
    if "models" in results:
        md = markdown(results)
        (RESULTS / f"{args.tag}.md").write_text(md)
        print(md)
    if "speed" in results:
        print(json.dumps(results["speed"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
