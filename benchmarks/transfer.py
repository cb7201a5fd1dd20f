"""Simulation → "experiment" transfer: train on one potential's spectra, test on another's.

No machine-readable INS data of doped samples exists, so the stand-in for experiment is the
same doped structures computed with a second potential, with instrument resolution and
counting noise added. Two stores made from the same generation config except the potential
(same seed → same hosts, dopant pools, scenarios and placements; see
``benchmarks/configs/transfer-chgnet.yaml``) are paired by (host, sample index); pairs that
failed in either are dropped. One seeded split by sample (every host in training):

* **source only**: DefectNet trained on the source potential's spectra (CHGNet), tested on
  its own test spectra and on the target potential's (SevenNet-0) test spectra with extra
  resolution and noise — the sim → exp gap;
* **fine-tuned**: that model fine-tuned (``defectnet finetune``'s function) on the target
  spectra of a small share (default 10 %) of the *training* structures;
* **small only**: the same small target set trained from scratch (what fine-tuning buys);
* **target oracle**: trained on all target training spectra (what closing the gap means).

Gap closed = (MAE_source-only − MAE_fine-tuned) / (MAE_source-only − MAE_oracle), on the
target test spectra. Writes ``benchmarks/results/transfer.json`` and ``transfer.md``.

    defectnet generate --config benchmarks/configs/transfer-chgnet.yaml --out data/chgnet.sqlite --workers 2
    python benchmarks/transfer.py --source data/chgnet.sqlite --target data/ref.sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _keys(store_path) -> dict[int, tuple[str, int]]:
    """Store row id → (host name, sample index) of every ok sample."""
    from defectnet.data.store import Store

    with Store(store_path, "r") as store:
        names = {h["id"]: h["name"] for h in store.hosts()}
        return {int(r["id"]): (names[r["host_id"]], int(r["sample_index"])) for r in store.samples("ok")}


def paired(source_store, target_store, work: Path):
    """(source, target) TrainingData of the same structures, aligned sample by sample."""
    from defectnet.data.export import export
    from defectnet.model.dataset import load_training_file

    data, keys = [], []
    for tag, path in (("source", source_store), ("target", target_store)):
        export(path, work / f"{tag}.h5")
        data.append(load_training_file(work / f"{tag}.h5"))
        keys.append(_keys(path))
    where = [{keys[k][int(s)]: i for i, s in enumerate(d.sample_id)} for k, d in enumerate(data)]
    common = sorted(set(where[0]) & set(where[1]))
    if not common:
        raise SystemExit("the two stores share no (host, sample index): were they made from the same config?")
    src, tgt = (d.subset([w[c] for c in common]) for d, w in zip(data, where))
    if not np.allclose(src.targets, tgt.targets) or src.grid != tgt.grid:
        raise SystemExit("paired samples differ in their dopants or grid: the stores come from different configs")
    # one host numbering and one sample numbering for both, so one split config splits both alike
    hosts = sorted({c[0] for c in common})
    for d in (src, tgt):
        d.host_id = np.array([hosts.index(c[0]) for c in common], dtype=np.int32)
        d.host_names = np.array(hosts, dtype=object)
        d.sample_id = np.arange(len(common), dtype=np.int64)
    src.candidates = tgt.candidates  # the same candidate lists (overwritten by with_candidates below)
    return src, tgt


def measured_like(data, mode: str, seed: int, *, fwhm_mev: float, noise: float):
    """``data`` with its ``mode`` spectra broadened by ``fwhm_mev`` and the doped one noised (seeded)."""
    import torch

    from defectnet.model.dataset import Augment

    aug = Augment(noise=noise, extra_fwhm_mev=(fwhm_mev, fwhm_mev), probability=1.0)
    p, d = data.spectra(mode)
    p2, d2 = aug(torch.as_tensor(p), torch.as_tensor(d), data.grid, np.random.default_rng(seed))
    out = data.subset(np.arange(len(data)))
    a, b = {"total": ("pristine", "doped"), "gpdos": ("pristine_gpdos", "doped_gpdos")}[mode]
    setattr(out, a, p2.numpy())
    setattr(out, b, d2.numpy())
    return out


def score(model, data, idx, mode: str) -> dict:
    from defectnet.model.evaluate import compute_metrics, predict_arrays

    p, d = data.spectra(mode)
    o = predict_arrays(model, p[idx], d[idx], data.composition[idx], data.candidates[idx])
    m = compute_metrics(o["concentration"], data.targets[idx], data.candidates[idx])
    return {"mae_at_pct": m["mae_at_pct"], "rmse_at_pct": m["rmse_at_pct"], "r2": m["r2"],
            "mae_true_at_pct": m["mae_true_at_pct"], "f1": m["detection"]["f1"],
            "distractor_mean_at_pct": m["distractor_mean_at_pct"], "n": int(len(idx))}


def run(args) -> dict:
    import torch

    from defectnet.model.dataset import SplitConfig, split_by_host, with_candidates, write_training_file
    from defectnet.model.train import TrainConfig, finetune, train

    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src, tgt = paired(args.source, args.target, Path(tmp))
    tgt = with_candidates(tgt, "pool", args.seed + 1)
    src.candidates = tgt.candidates
    base = TrainConfig.from_yaml(ROOT / "configs" / "pretrained.yaml")
    mode = base.spectrum_mode
    split_cfg = SplitConfig(seed=args.seed, ood_fraction=0.0, val_fraction=0.1, test_fraction=0.2)
    cfg = replace(base, split=split_cfg, epochs=args.epochs, patience=args.patience, max_minutes=args.max_minutes,
                  threads=args.threads, seed=args.seed)
    sp = split_by_host(tgt, split_cfg)
    test = sp.test_id
    tgt_test = measured_like(tgt, mode, args.seed + 2, fwhm_mev=args.fwhm_mev, noise=args.noise)
    rng = np.random.default_rng(args.seed + 3)
    n_small = max(8, int(round(args.fraction * (len(sp.train) + len(sp.val)))))
    small = np.sort(rng.choice(np.concatenate([sp.train, sp.val]), size=n_small, replace=False))

    results = {"source": str(args.source), "target": str(args.target), "n_pairs": len(tgt),
               "hosts": list(tgt.host_names), "n_test": int(len(test)), "n_small": int(n_small),
               "fraction": args.fraction, "test_perturbation": {"extra_fwhm_mev": args.fwhm_mev, "noise": args.noise},
               "potentials": {"source": src.attrs.get("potential"), "target": tgt.attrs.get("potential")},
               "budget": {"epochs": args.epochs, "patience": args.patience, "max_minutes": args.max_minutes,
                          "threads": args.threads, "finetune_epochs": args.finetune_epochs}, "models": {}}

    def record(name, model, seconds):
        results["models"][name] = {"target_test": score(model, tgt_test, test, mode),
                                    "source_test": score(model, src, test, mode), "train_s": round(seconds, 1)}
        r = results["models"][name]["target_test"]
        print(f"{name:14s} target-test MAE {r['mae_at_pct']:.3f} at.%  F1 {r['f1']:.3f}  ({seconds:.0f} s)", flush=True)

    src_run = train(src, cfg, runs / "source", progress=False, log=lambda *_: None)
    record("source_only", src_run.model, src_run.seconds)
    small_path = write_training_file(tgt.subset(small), runs / "small.npz")
    t = time.perf_counter()
    # the small set is split alike for fine-tuning and training from scratch (finetune needs a held-out part)
    small_split = SplitConfig(seed=args.seed, ood_fraction=0.0, val_fraction=0.2, test_fraction=0.1)
    ft = finetune(runs / "source" / "model.pt", small_path, runs / "finetuned", epochs=args.finetune_epochs,
                  split=small_split, progress=False, log=lambda *_: None)
    record("fine_tuned", ft.model, time.perf_counter() - t)
    small_run = train(tgt.subset(small), replace(cfg, split=small_split), runs / "small", progress=False,
                      log=lambda *_: None)
    record("small_only", small_run.model, small_run.seconds)
    oracle = train(tgt, cfg, runs / "oracle", progress=False, log=lambda *_: None)
    record("target_oracle", oracle.model, oracle.seconds)

    mae = {k: v["target_test"]["mae_at_pct"] for k, v in results["models"].items()}
    gap = mae["source_only"] - mae["target_oracle"]
    results["gap_at_pct"] = gap
    results["gap_closed"] = (mae["source_only"] - mae["fine_tuned"]) / gap if gap > 0 else None
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def markdown(r: dict) -> str:
    lines = [f"Transfer {r['potentials']['source']} → {r['potentials']['target']}: {r['n_pairs']} paired structures "
             f"from {len(r['hosts'])} hosts ({', '.join(r['hosts'])}); test {r['n_test']} structures, target spectra "
             f"with +{r['test_perturbation']['extra_fwhm_mev']} meV FWHM and {r['test_perturbation']['noise']:.0%} "
             f"noise; fine-tune set {r['n_small']} target spectra ({r['fraction']:.0%}).\n",
             "| model | target test MAE (at.%) | F1 | distractor mean (at.%) | source test MAE (at.%) |",
             "|---|---|---|---|---|"]
    for name, m in r["models"].items():
        t, s = m["target_test"], m["source_test"]
        lines.append(f"| {name} | {t['mae_at_pct']:.3f} | {t['f1']:.3f} | {t['distractor_mean_at_pct']:.3f} "
                     f"| {s['mae_at_pct']:.3f} |")
    closed = "n/a (no gap)" if r["gap_closed"] is None else f"{r['gap_closed']:.0%}"
    lines.append(f"\nGap (source only − oracle): {r['gap_at_pct']:.3f} at.%; closed by fine-tuning: {closed} "
                 "(goal ≥ 50 % with ≤ 10 % of the data).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="store of the training potential (e.g. CHGNet)")
    ap.add_argument("--target", required=True, help="store of the test potential (e.g. SevenNet-0)")
    ap.add_argument("--fraction", type=float, default=0.1, help="share of target spectra for fine-tuning")
    ap.add_argument("--fwhm-mev", type=float, default=2.0, help="extra resolution on the target test spectra")
    ap.add_argument("--noise", type=float, default=0.02, help="relative counting noise on the target test spectra")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--finetune-epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=15)
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/transfer")
    ap.add_argument("--tag", default="transfer")
    args = ap.parse_args(argv)
    r = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(r, indent=1))
    md = markdown(r)
    (RESULTS / f"{args.tag}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
