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
  With ``--replay R`` the fine-tuning set also holds R × as many *source* spectra of other
  training structures (rehearsal: the model keeps what it learnt while it adapts);
* **small only**: the same small target set trained from scratch (what fine-tuning buys);
* **target oracle**: trained on all target training spectra (what closing the gap means).

With ``--calibrate`` the target spectra are also put on the source's energy scale first, one
factor per host fitted on the pristine pair (what ``predict --energy-scale auto`` does with a
measured pristine spectrum), and the source-only and fine-tuned models are scored on them.

Gap closed = (MAE_source-only − MAE_fine-tuned) / (MAE_source-only − MAE_oracle), on the
target test spectra. Writes ``benchmarks/results/transfer/transfer.json`` and ``transfer.md``.

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
RESULTS = Path(__file__).resolve().parent / "results" / "transfer"


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


def mixed(a, idx_a, b, idx_b):
    """Samples ``idx_a`` of ``a`` and ``idx_b`` of ``b`` (paired data: one host and sample numbering)."""
    from defectnet.model.dataset import TRAINING_ARRAYS, TrainingData

    kw = {k: np.concatenate([getattr(a, k)[idx_a], getattr(b, k)[idx_b]]) for k in TRAINING_ARRAYS}
    return TrainingData(**kw, host_names=a.host_names, grid=a.grid, vocabulary=a.vocabulary,
                        host_elements=a.host_elements, attrs=dict(a.attrs))


def measured_like(data, mode: str, seed: int, *, fwhm_mev: float, noise: float):
    """``data`` with its ``mode`` spectra broadened by ``fwhm_mev`` and the doped one noised (seeded)."""
    import torch

    from defectnet.model.augment import Augment

    aug = Augment(noise=noise, extra_fwhm_mev=(fwhm_mev, fwhm_mev), probability=1.0)
    p, d = data.spectra(mode)
    p2, d2 = aug(torch.as_tensor(p), torch.as_tensor(d), data.grid, np.random.default_rng(seed))
    out = data.subset(np.arange(len(data)))
    a, b = {"total": ("pristine", "doped"), "gpdos": ("pristine_gpdos", "doped_gpdos")}[mode]
    setattr(out, a, p2.numpy())
    setattr(out, b, d2.numpy())
    return out


def calibrated(data, reference, mode: str):
    """``data`` with each host's spectra on ``reference``'s energy scale, and the factors per host.

    The scale is fitted once per host on the pristine spectra (``predict``'s
    :func:`~defectnet.predict.fit_energy_scale`: measured pristine against the MLIP's), then
    applied to that host's pristine and doped spectra: the calibration a user runs on a
    measured pair before prediction. Hosts are aligned by index (paired data).
    """
    from defectnet.predict import fit_energy_scale
    from defectnet.spectrum import Spectrum

    edges = data.grid.edges
    out = data.subset(np.arange(len(data)))
    p, d = (a.copy() for a in data.spectra(mode))
    p_ref, _ = reference.spectra(mode)
    scales = {}
    for h in np.unique(data.host_id):
        rows = np.flatnonzero(data.host_id == h)
        first = rows[0]
        s, _, _ = fit_energy_scale(Spectrum(edges, p[first]), Spectrum(edges, p_ref[first]), bounds=(0.5, 2.0))
        scales[str(data.host_names[h])] = s
        for r in rows:
            for arr in (p, d):
                arr[r] = Spectrum(edges, arr[r]).scale_energy(s).resample(edges).values
    a, b = {"total": ("pristine", "doped"), "gpdos": ("pristine_gpdos", "doped_gpdos")}[mode]
    setattr(out, a, p)
    setattr(out, b, d)
    return out, scales


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

    from defectnet.model.checkpoint import model_from_checkpoint, read_checkpoint
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
                          "threads": args.threads, "finetune_epochs": args.finetune_epochs,
                          "finetune_lr": args.finetune_lr, "freeze": list(args.freeze), "replay": args.replay}, "models": {}}

    def record(name, model, seconds):
        results["models"][name] = {"target_test": score(model, tgt_test, test, mode),
                                    "source_test": score(model, src, test, mode), "train_s": round(seconds, 1)}
        r = results["models"][name]["target_test"]
        print(f"{name:14s} target-test MAE {r['mae_at_pct']:.3f} at.%  F1 {r['f1']:.3f}  ({seconds:.0f} s)", flush=True)

    def trained(name, data, config):
        """Train, or with --reuse load the model a previous run of this benchmark left in --runs."""
        path = runs / name / "model.pt"
        if args.reuse and path.exists():
            ckpt = read_checkpoint(path)
            return model_from_checkpoint(ckpt, source=str(path)), float(ckpt["metrics"].get("train_seconds") or 0)
        run = train(data, config, runs / name, progress=False, log=lambda *_: None)
        return run.model, run.seconds

    record("source_only", *trained("source", src, cfg))
    small_set = tgt.subset(small)
    if args.replay > 0:  # rehearsal: source spectra of other training structures
        others = np.setdiff1d(np.concatenate([sp.train, sp.val]), small)
        n_replay = min(len(others), int(round(args.replay * n_small)))
        small_set = mixed(tgt, small, src, np.sort(rng.choice(others, n_replay, replace=False)))
    results["n_replay"] = len(small_set) - int(n_small)
    small_path = write_training_file(small_set, runs / "small.npz")
    t = time.perf_counter()
    # the small set is split alike for fine-tuning and training from scratch (finetune needs a held-out part)
    small_split = SplitConfig(seed=args.seed, ood_fraction=0.0, val_fraction=0.2, test_fraction=0.1)
    ft = finetune(runs / "source" / "model.pt", small_path, runs / "finetuned", epochs=args.finetune_epochs,
                  split=small_split, freeze=tuple(args.freeze), lr=args.finetune_lr, progress=False,
                  log=lambda *_: None)
    record("fine_tuned", ft.model, time.perf_counter() - t)
    if args.calibrate:  # the energy scale fitted per host on pristine spectra (target → source), as predict does
        tgt_cal, results["energy_scales"] = calibrated(tgt_test, src, mode)
        print("energy scales", {k: round(v, 3) for k, v in results["energy_scales"].items()}, flush=True)
        source = read_checkpoint(runs / "source" / "model.pt")
        results["models"]["source_only_calibrated"] = {
            "target_test": score(model_from_checkpoint(source), tgt_cal, test, mode),
            "source_test": results["models"]["source_only"]["source_test"], "train_s": 0.0}
        cal_small, _ = calibrated(small_set.subset(np.arange(n_small)), src.subset(small), mode)
        cal_path = write_training_file(cal_small if len(small_set) == n_small else
                                       mixed(cal_small, np.arange(n_small), small_set, np.arange(n_small, len(small_set))),
                                       runs / "small_calibrated.npz")
        t = time.perf_counter()
        ft_cal = finetune(runs / "source" / "model.pt", cal_path, runs / "finetuned_calibrated",
                          epochs=args.finetune_epochs, split=small_split, freeze=tuple(args.freeze),
                          lr=args.finetune_lr, progress=False, log=lambda *_: None)
        results["models"]["fine_tuned_calibrated"] = {
            "target_test": score(ft_cal.model, tgt_cal, test, mode), "source_test": score(ft_cal.model, src, test, mode),
            "train_s": round(time.perf_counter() - t, 1)}
        for name in ("source_only_calibrated", "fine_tuned_calibrated"):
            print(f"{name:14s} target-test MAE {results['models'][name]['target_test']['mae_at_pct']:.3f} at.%",
                  flush=True)
    record("small_only", *trained("small", tgt.subset(small), replace(cfg, split=small_split)))
    record("target_oracle", *trained("oracle", tgt, cfg))

    mae = {k: v["target_test"]["mae_at_pct"] for k, v in results["models"].items()}
    gap = mae["source_only"] - mae["target_oracle"]
    results["gap_at_pct"] = gap
    results["gap_closed"] = (mae["source_only"] - mae["fine_tuned"]) / gap if gap > 0 else None
    if args.calibrate:
        best = min(mae["source_only_calibrated"], mae["fine_tuned_calibrated"])
        results["gap_closed_calibrated"] = (mae["source_only"] - best) / gap if gap > 0 else None
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def markdown(r: dict) -> str:
    lines = [f"Transfer {r['potentials']['source']} → {r['potentials']['target']}: {r['n_pairs']} paired structures "
             f"from {len(r['hosts'])} hosts ({', '.join(r['hosts'])}); test {r['n_test']} structures, target spectra "
             f"with +{r['test_perturbation']['extra_fwhm_mev']} meV FWHM and {r['test_perturbation']['noise']:.0%} "
             f"noise; fine-tune set {r['n_small']} target spectra ({r['fraction']:.0%})"
             f"{' + %d source spectra (replay)' % r['n_replay'] if r.get('n_replay') else ''}.\n",
             "| model | target test MAE (at.%) | F1 | distractor mean (at.%) | source test MAE (at.%) |",
             "|---|---|---|---|---|"]
    for name, m in r["models"].items():
        t, s = m["target_test"], m["source_test"]
        lines.append(f"| {name} | {t['mae_at_pct']:.3f} | {t['f1']:.3f} | {t['distractor_mean_at_pct']:.3f} "
                     f"| {s['mae_at_pct']:.3f} |")
    closed = "n/a (no gap)" if r["gap_closed"] is None else f"{r['gap_closed']:.0%}"
    lines.append(f"\nGap (source only − oracle): {r['gap_at_pct']:.3f} at.%; closed by fine-tuning: {closed} "
                 "(goal ≥ 50 % with ≤ 10 % of the data).")
    if r.get("gap_closed_calibrated") is not None:
        scales = ", ".join(f"{k} {v:.3f}" for k, v in r["energy_scales"].items())
        lines.append(f"With the energy scale fitted per host on the pristine spectra ({scales}): closed "
                     f"{r['gap_closed_calibrated']:.0%} (best calibrated row).")
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
    ap.add_argument("--replay", type=float, default=0.0,
                    help="fine-tune on the small target set plus this many times as many source spectra")
    ap.add_argument("--freeze", nargs="*", default=[], help="parameter-name prefixes fine-tuning keeps fixed")
    ap.add_argument("--finetune-lr", type=float, default=3e-4)
    ap.add_argument("--calibrate", action="store_true",
                    help="also score with the energy scale fitted per host on the pristine spectra")
    ap.add_argument("--reuse", action="store_true",
                    help="load the source, small-only and oracle models of an earlier run in --runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/transfer")
    ap.add_argument("--tag", default="transfer")
    args = ap.parse_args(argv)
    r = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(r, indent=1))
    md = markdown(r)
    (RESULTS / f"{args.tag}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
