"""Training: one flat loop, a frozen config, early stopping, resume, a metrics log.

A run directory holds::

    config.yaml      the resolved TrainConfig
    split.json       host-grouped split (indices and host names)
    metrics.jsonl    one JSON line per epoch (losses, validation MAE / F1, lr, seconds)
    model.pt         best checkpoint so far (then the final one, with test metrics)
    last.pt          resume state (model, optimiser, epoch, RNG states)

``train(data, config, out)`` is what ``defectnet train`` calls.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from defectnet.errors import DefectnetError
from defectnet.model.config import TrainConfig
from defectnet.model.dataset import (
    SplitConfig,
    TrainingData,
    draw_candidates,
    fingerprint,
    host_pools,
    split_by_host,
    with_candidates,
)
from defectnet.model.evaluate import compute_metrics, predict_arrays
from defectnet.model.architectures import build_model
from defectnet.model.network import ModelConfig, host_calibration, n_parameters


@dataclass
class TrainResult:
    model: torch.nn.Module
    metrics: dict
    history: list
    out_dir: Path
    seconds: float


def _lr_at(config: TrainConfig, epoch: float) -> float:
    if config.schedule == "constant":
        return config.lr
    if epoch < 1:
        return config.lr * max(epoch, 0.05)
    t = min((epoch - 1) / max(config.epochs - 1, 1), 1.0)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _oversampled(data, split, oversample: dict) -> np.ndarray:
    """``split.train`` with the samples of each host in ``oversample`` repeated k times in all."""
    names = np.asarray(data.host_names, dtype=str)[data.host_id[split.train]]
    unknown = sorted(set(oversample) - set(names))
    if unknown:
        raise DefectnetError(f"oversample names hosts with no training samples: {', '.join(unknown)}")
    extra = [np.repeat(split.train[names == h], k - 1) for h, k in oversample.items()]
    return np.concatenate([split.train, *extra])


def training_tensors(data: TrainingData, mode: str):
    pristine, doped = data.spectra(mode)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in
                 (pristine, doped, data.composition, data.candidates, data.targets))


def _extra(extra, b) -> tuple:
    """Model inputs beyond (pristine, doped, composition, candidates) for samples ``b`` (the conditioned model's curves)."""
    return tuple(extra(b)) if extra is not None else ()


def validation_metrics(model, tensors, idx, batch_size: int = 1024, extra=None) -> dict:
    """Loss and headline metrics of ``model`` on samples ``idx`` (no augmentation)."""
    P, D, C, M, T = tensors
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(idx), batch_size):
            b = torch.as_tensor(idx[s:s + batch_size])
            loss, _ = model.loss(model(P[b], D[b], C[b], M[b], *_extra(extra, b)), T[b], M[b])
            total += float(loss) * len(b)
            n += len(b)
    out = predict_arrays(model, P[idx].numpy(), D[idx].numpy(), C[idx].numpy(), M[idx].numpy(),
                         extra=None if extra is None else (lambda sl: extra(torch.as_tensor(idx[sl]))))
    m = compute_metrics(out["concentration"], T[idx].numpy(), M[idx].numpy())
    return {"loss": total / max(n, 1), "mae_at_pct": m["mae_at_pct"], "f1": m["detection"]["f1"],
            "distractor_mean_at_pct": m["distractor_mean_at_pct"]}


def calibrate_presence(model, tensors, idx, extra=None) -> float:
    """Temperature-scale the presence logits: set ``model.logit_scale`` to minimise the validation BCE; returns it."""
    if not hasattr(model, "logit_scale"):
        return float("nan")
    import torch.nn.functional as F

    P, D, C, M, T = tensors
    model.eval()
    with torch.no_grad():
        b = torch.as_tensor(idx)
        o = model(P[b], D[b], C[b], M[b], *_extra(extra, b))
        valid = o["valid"]
        logit = o["logit"][valid]
        y = (T[b].gather(1, o["order"]) > 0)[valid].float()
        scales = np.geomspace(0.1, 3.0, 61)
        losses = [float(F.binary_cross_entropy_with_logits(logit * float(a), y)) for a in scales]
    best = float(scales[int(np.argmin(losses))])
    model.logit_scale.fill_(best)
    return best


def calibrate_sigma(model, tensors, idx, target: float = 0.6827, extra=None) -> float:
    """Set ``model.sigma_scale`` so a share ``target`` of validation true dopants lie within ±1σ; returns it.

    σ is the half-width of the central 68.3 % interval of the predicted mixture; its
    scale factor on the log-normal width is chosen on a log grid (0.2–20) so the observed
    coverage of |ĉ − c| ≤ σ over the true dopants of ``idx`` is closest to ``target``.
    """
    if not hasattr(model, "sigma_scale"):
        return float("nan")
    from defectnet.model.network import LOG_C_SCALE

    P, D, C, M, T = tensors
    model.eval()
    with torch.no_grad():
        b = torch.as_tensor(idx)
        o = model(P[b], D[b], C[b], M[b], *_extra(extra, b))
        t = T[b].gather(1, o["order"])
        present = (t > 0) & o["valid"]
        if int(present.sum()) < 5:
            return float(model.sigma_scale)
        prob, mu, t = torch.sigmoid(o["logit"][present] * model.logit_scale), o["mu"][present], t[present]
        s0 = torch.exp(o["log_sigma"][present]) * LOG_C_SCALE  # without the current scale
        best, best_gap = 1.0, float("inf")
        for scale in np.geomspace(0.2, 20.0, 81):
            s = s0 * float(scale)
            q = [model.mixture_quantile(prob, mu, s, lv) for lv in (0.1587, 0.5, 0.8413)]
            coverage = float(((q[1] - t).abs() <= 0.5 * (q[2] - q[0])).float().mean())
            if abs(coverage - target) < best_gap - 1e-9:
                best, best_gap = float(scale), abs(coverage - target)
    model.sigma_scale.fill_(best)
    return best


def _generation_config(data: TrainingData) -> dict:
    """The generation config stored with the data (a dict, or {} when absent or unreadable)."""
    c = data.attrs.get("config") or {}
    if isinstance(c, str):
        try:
            c = json.loads(c)
        except ValueError:
            return {}
    return c if isinstance(c, dict) else {}


def train_compositions(data: TrainingData, idx) -> list[dict]:
    """The distinct host compositions ({element: atomic fraction}) of samples ``idx``."""
    rows = np.unique(np.round(data.composition[np.asarray(idx, dtype=np.int64)], 4), axis=0)
    return [{data.host_elements[j]: float(r[j]) for j in np.flatnonzero(r)} for r in rows]


@dataclass
class _Run:
    """Where a run stands: what resuming restores and every epoch updates."""

    start: int = 0  # epochs done before this call
    best: float = float("inf")  # the monitored score of the best epoch
    best_epoch: int = -1
    bad: int = 0  # epochs since the best
    history: list = field(default_factory=list)
    stopped: str = ""


def train(data: TrainingData, config: TrainConfig, out_dir, *, resume: bool = False, progress: bool = True,
          log=None) -> TrainResult:
    """Train ``config.arch`` on ``data``; writes the run directory ``out_dir`` (see module docstring).

    Parameters
    ----------
    data : TrainingData
    config : TrainConfig
    out_dir : path
    resume : bool
        Continue from ``out_dir/last.pt`` (same config and data required).
    progress : bool
        Progress bars on stderr.
    log : callable, optional
        Receives one line per epoch (default: print to stderr).

    Returns
    -------
    TrainResult
        The best model (calibrated), its val / in-distribution / OOD metrics, the epoch history.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    data = with_candidates(data, config.distractors, config.seed + 1)
    split = split_by_host(data, config.split)
    if len(split.train) == 0 or len(split.val) == 0:
        raise DefectnetError(f"the split leaves {len(split.train)} training and {len(split.val)} validation samples; "
                             "give more data or smaller val/test fractions")
    if config.monitor_split == "val_ood" and len(split.val_ood) == 0:
        raise DefectnetError("monitor_split: val_ood needs calibration hosts (split.calib_hosts or calib_host_fraction)")
    epoch_index = _oversampled(data, split, config.oversample)  # the training samples of one epoch (checked first)
    tensors = training_tensors(data, config.spectrum_mode)
    model = _new_model(data, config, split)
    trainable = _apply_freeze(model, config.freeze)
    opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(trainable, lr=config.lr, weight_decay=config.weight_decay)
    run = _resumed(out, model, opt, config, rng, log) if resume else _started(out, model, config, split, log)

    t0 = time.perf_counter()
    elapsed0 = run.history[-1]["elapsed_s"] if run.history else 0.0
    pools = host_pools(data)
    for epoch in range(run.start, config.epochs if not run.stopped else run.start):
        train_loss = _train_epoch(model, opt, data, tensors, epoch_index, pools, config, rng, epoch, progress)
        val = validation_metrics(model, tensors, split.val)
        held = validation_metrics(model, tensors, split.val_ood) if len(split.val_ood) else {}
        elapsed = elapsed0 + time.perf_counter() - t0
        record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": train_loss,
                  **{f"val_{k}": v for k, v in val.items()}, **{f"val_ood_{k}": v for k, v in held.items()},
                  "elapsed_s": elapsed}
        improved = _end_epoch(run, record, val, held, model, opt, config, rng, out, epoch)
        log(f"epoch {epoch + 1:3d}  train {record['train_loss']:.4f}  val loss {val['loss']:.4f}  "
            f"MAE {val['mae_at_pct']:.4f} at.%  F1 {val['f1']:.3f}"
            + (f"  held-out hosts loss {held['loss']:.4f} MAE {held['mae_at_pct']:.4f}" if held else "")
            + f"  {elapsed:6.0f} s" + ("  *" if improved else ""))
        if run.stopped:
            log(run.stopped)
            break
    return _finished(out, config, split, tensors, run)


def _new_model(data: TrainingData, config: TrainConfig, split):
    """The untrained (or ``init_from``) model of ``config`` for ``data``, its ``meta`` set (grid, config, data record)."""
    mcfg = ModelConfig.from_dict({**config.model, "arch": config.arch, "n_bins": data.grid.n_bins,
                                  "n_elements": len(data.vocabulary), "n_host_elements": len(data.host_elements)})
    model = build_model(mcfg, data.grid, data.vocabulary, data.host_elements)
    data_info = {"source": str(data.attrs.get("source", "")), "fingerprint": fingerprint(data), "n_samples": len(data),
                 "potential": data.attrs.get("potential", ""), "tier": data.attrs.get("tier", ""),
                 "broadening": data.attrs.get("broadening", ""), "split_config": asdict(config.split),
                 "tier_settings": _generation_config(data).get("tier_settings"),
                 "train_hosts": list(split.train_hosts), "ood_hosts": list(split.ood_hosts),
                 "n_train": len(split.train), "n_val": len(split.val), "n_test_id": len(split.test_id),
                 "n_test_ood": len(split.test_ood), "calib_hosts": list(split.calib_hosts),
                 "n_val_ood": len(split.val_ood), "train_compositions": train_compositions(data, split.train)}
    model.meta = {"grid": data.grid.to_dict(), "spectrum_mode": config.spectrum_mode,
                  "train_config": config.to_dict(), "data": data_info}
    if config.init_from:
        _init_from(model, config, data)
    return model


def _started(out: Path, model, config: TrainConfig, split, log) -> _Run:
    """A fresh run: writes its config, split and an empty metrics log."""
    import yaml

    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    (out / "split.json").write_text(json.dumps(split.to_dict()))
    (out / "metrics.jsonl").write_text("")
    log(f"{config.arch}: {n_parameters(model):,} parameters; {len(split.train)} train / {len(split.val)} val / "
        f"{len(split.test_id)} test-id / {len(split.test_ood)} test-ood samples; OOD hosts {list(split.ood_hosts)}")
    return _Run()


def _resumed(out: Path, model, opt, config: TrainConfig, rng, log) -> _Run:
    """An interrupted run from ``out/last.pt``: weights, optimiser, RNG states and progress restored."""
    last = out / "last.pt"
    if not last.is_file():
        raise DefectnetError(f"cannot resume: {last} does not exist")
    state = torch.load(last, map_location="cpu", weights_only=True)
    if (state["config"] != json.loads(json.dumps(config.to_dict()))
            or state["fingerprint"] != model.meta["data"]["fingerprint"]):
        raise DefectnetError(f"cannot resume {out}: the config or the data differ from the interrupted run")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    run = _Run(state["epoch"], state["best"], state["best_epoch"], state["bad"], state["history"], state["stopped"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in run.history))
    log(f"resuming at epoch {run.start + 1} (best val {config.monitor} {run.best:.4f} at epoch {run.best_epoch + 1})")
    return run


def _train_epoch(model, opt, data, tensors, epoch_index, pools, config: TrainConfig, rng, epoch: int,
                 progress: bool) -> float:
    """One pass over ``epoch_index`` in a fresh permutation; returns the mean training loss."""
    from tqdm.auto import tqdm

    P, D, C, M, T = tensors
    model.train()
    perm = rng.permutation(epoch_index)
    n_batches = math.ceil(len(epoch_index) / config.batch_size)
    running, seen = 0.0, 0
    bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress,
               file=sys.stderr)
    for i in bar:
        for g in opt.param_groups:
            g["lr"] = _lr_at(config, epoch + i / n_batches)
        bi = perm[i * config.batch_size:(i + 1) * config.batch_size]
        b = torch.as_tensor(bi)
        p, d = P[b], D[b]
        mask = M[b] if config.distractors == "stored" else torch.from_numpy(
            draw_candidates(data, rng, idx=bi, pools=pools))
        if config.augment.active:
            p, d = config.augment(p, d, data.grid, rng)
        loss, _ = model.loss(model(p, d, C[b], mask), T[b], mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        running += loss.item() * len(b)
        seen += len(b)
        bar.set_postfix(loss=f"{running / seen:.4f}")
    bar.close()
    return running / max(seen, 1)


def _end_epoch(run: _Run, record: dict, val: dict, held: dict, model, opt, config: TrainConfig, rng, out: Path,
               epoch: int) -> bool:
    """Book an epoch: best checkpoint, early stopping, the resume state and the metrics line; whether it improved."""
    from defectnet.model.checkpoint import save_checkpoint

    run.history.append(record)
    watched = held if config.monitor_split == "val_ood" else val
    score = watched["loss"] if config.monitor == "loss" else watched["mae_at_pct"]
    improved = score < run.best - 1e-6
    if improved:
        run.best, run.best_epoch, run.bad = score, epoch, 0
        save_checkpoint(model, out / "model.pt", metrics={"val": val, "epoch": epoch + 1})
    else:
        run.bad += 1
    if run.bad >= config.patience:
        run.stopped = f"early stop: no improvement for {config.patience} epochs"
    elif record["elapsed_s"] > 60 * config.max_minutes:
        run.stopped = f"time budget of {config.max_minutes} min reached"
    last = out / "last.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "best": run.best,
                "best_epoch": run.best_epoch, "bad": run.bad, "history": run.history, "stopped": run.stopped,
                "torch_rng": torch.get_rng_state(), "numpy_rng": rng.bit_generator.state,
                "config": json.loads(json.dumps(config.to_dict())), "fingerprint": model.meta["data"]["fingerprint"]},
               last.with_suffix(".tmp"))
    last.with_suffix(".tmp").replace(last)
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return improved


def _finished(out: Path, config: TrainConfig, split, tensors, run: _Run) -> TrainResult:
    """Best weights, calibrated presence and uncertainty, metrics on every part of the split, final checkpoint."""
    from defectnet.model.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint

    P, D, C, M, T = tensors
    history = run.history
    model = model_from_checkpoint(read_checkpoint(out / "model.pt"))
    logit_scale = calibrate_presence(model, tensors, split.val) if config.calibrate else float("nan")
    unseen = float("nan")
    if config.calibrate and len(split.val_ood):  # σ for hosts never seen, from held-out hosts
        unseen = calibrate_sigma(model, tensors, split.val_ood)
        model.sigma_scale_unseen = unseen
    sigma_scale = calibrate_sigma(model, tensors, split.val) if config.calibrate else float("nan")
    inherited = (_inherited_unseen_scale(config.init_from, sigma_scale)
                 if config.calibrate and config.init_from and not np.isfinite(unseen) else None)
    if inherited is not None:  # no held-out hosts here: keep the base model's widening for unseen hosts
        unseen = model.sigma_scale_unseen = inherited
    metrics = {"best_epoch": run.best_epoch + 1, "epochs_run": len(history), "stopped": run.stopped or "epochs done",
               "train_seconds": history[-1]["elapsed_s"] if history else 0.0, "sigma_scale": sigma_scale,
               "sigma_scale_unseen": unseen, "logit_scale": logit_scale,
               "n_parameters": n_parameters(model)}
    parts = (("val", split.val), ("val_ood", split.val_ood), ("test_id", split.test_id), ("test_ood", split.test_ood))
    for name, idx in parts:
        if len(idx):
            o = predict_arrays(host_calibration(model, seen=name in ("val", "test_id")), P[idx].numpy(),
                               D[idx].numpy(), C[idx].numpy(), M[idx].numpy())
            metrics[name] = checkpoint_metrics(compute_metrics(o["concentration"], T[idx].numpy(), M[idx].numpy(),
                                                      sigma=o["sigma"], presence=o["presence"]
                                                      if config.arch != "paper" else None))
    save_checkpoint(model, out / "model.pt", metrics=metrics)
    (out / "final_metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(model=model, metrics=metrics, history=history, out_dir=out,
                       seconds=history[-1]["elapsed_s"] if history else 0.0)


def _inherited_unseen_scale(init_from, sigma_scale: float) -> float | None:
    """σ scale for unseen hosts of a model fine-tuned without held-out hosts, or None.

    The base model's ratio of its unseen-host to its seen-host scale, times this run's
    seen-host scale: how much wider errors are on a new host is kept from the base.
    """
    from defectnet.model.checkpoint import read_checkpoint

    base = read_checkpoint(init_from).get("metrics") or {}
    seen, unseen = base.get("sigma_scale"), base.get("sigma_scale_unseen")
    if not all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in (seen, unseen, sigma_scale)):
        return None
    return float(sigma_scale * unseen / seen)


def _init_from(model, config: TrainConfig, data: TrainingData) -> None:
    """Load a checkpoint's weights into ``model`` (fine-tuning), refusing anything that does not fit."""
    from defectnet.model.checkpoint import check_compatible, read_checkpoint

    ckpt = read_checkpoint(config.init_from)
    src = str(config.init_from)
    check_compatible(ckpt, grid=data.grid, vocabulary=data.vocabulary, host_elements=data.host_elements, source=src)
    if ckpt.get("arch") != config.arch or ckpt.get("spectrum_mode") != config.spectrum_mode:
        raise DefectnetError(f"{src}: a {ckpt.get('arch')} model on {ckpt.get('spectrum_mode')} spectra cannot start "
                             f"a {config.arch} run on {config.spectrum_mode} spectra")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise DefectnetError(f"{src}: weights do not fit this model config ({str(exc).splitlines()[0]}); "
                             "fine-tune with the checkpoint's own model settings") from None
    model.meta["init_from"] = {"path": src, "metrics": ckpt.get("metrics", {}), "data": ckpt.get("data", {})}


def _apply_freeze(model, prefixes) -> list:
    """Freeze parameters whose names start with any of ``prefixes``; returns the trainable ones."""
    names = [n for n, _ in model.named_parameters()]
    for pre in prefixes:
        if not any(n == pre or n.startswith(pre + ".") for n in names):
            top = sorted({n.split(".")[0] for n in names})
            raise DefectnetError(f"freeze: no parameter is named {pre!r}; the model has {', '.join(top)}")
    out = []
    for n, p in model.named_parameters():
        frozen = any(n == pre or n.startswith(pre + ".") for pre in prefixes)
        p.requires_grad_(not frozen)
        if not frozen:
            out.append(p)
    return out


def checkpoint_metrics(m: dict) -> dict:
    """The scalar metrics worth keeping in a checkpoint."""
    keep = {k: v for k, v in m.items() if not isinstance(v, dict)}
    keep["precision"], keep["recall"], keep["f1"] = (m["detection"][k] for k in ("precision", "recall", "f1"))
    keep["f1_ge1pct"], keep["auc"] = m["detection_ge1pct"]["f1"], m["detection"].get("auc")
    keep.update(m.get("reference", {}))  # metrics.json files written before it have none
    keep.update({k: v for k, v in m.get("calibration", {}).items()})
    return keep


def train_from_files(data_path, config_path=None, out_dir="runs/defectnet", *, overrides: dict | None = None,
                     resume: bool = False, progress: bool = True) -> TrainResult:
    """Load a training file and a YAML config (plus overrides of top-level keys), then :func:`train`."""
    from defectnet.model.dataset import load_training_file

    config = TrainConfig.from_yaml(config_path) if config_path else TrainConfig()
    if overrides:
        config = TrainConfig.from_dict({**config.to_dict(), **overrides})
    data = load_training_file(data_path)
    return train(data, config, out_dir, resume=resume, progress=progress)


#: Fine-tuning split of a small labelled set: by sample (often a single host), no OOD part.
FINETUNE_SPLIT = SplitConfig(seed=0, ood_fraction=0.0, val_fraction=0.2, test_fraction=0.2)


def finetune_config(ckpt: dict, checkpoint, *, epochs: int = 40, lr: float = 3e-4, freeze=(), split=FINETUNE_SPLIT,
                    overrides: dict | None = None) -> TrainConfig:
    """The :class:`TrainConfig` that fine-tunes checkpoint ``ckpt`` (read from path ``checkpoint``).

    Its training settings, architecture and spectrum mode, started from its weights, with a
    new budget (``epochs``, ``lr``), frozen prefixes, ``split`` and ``overrides`` of any key.
    """
    base = {k: v for k, v in (ckpt.get("train_config") or {}).items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig.from_dict({
        **base, "arch": ckpt["arch"], "spectrum_mode": ckpt["spectrum_mode"], "epochs": epochs, "lr": lr,
        "init_from": str(checkpoint), "freeze": list(freeze), "split": asdict(split),
        "patience": min(int(base.get("patience", 12)), 10), **(overrides or {})})


def finetune(checkpoint, data_path, out_dir, *, epochs: int = 40, lr: float = 3e-4, freeze=(), split=FINETUNE_SPLIT,
             overrides: dict | None = None, progress: bool = True, log=None) -> TrainResult:
    """Fine-tune a trained model on a small labelled set, with a held-out report.

    The run keeps the checkpoint's architecture, model settings and spectrum mode, starts
    from its weights (``init_from``), freezes the parameters named in ``freeze``, and splits
    the new data by sample (``split``). ``out_dir/finetune_report.json`` compares the
    original and the fine-tuned model on the same held-out samples.

    Parameters
    ----------
    checkpoint : path
        A ``model.pt`` from ``defectnet train`` (or the shipped model's path).
    data_path : path
        Store (.sqlite) or training file (.h5/.npz) of labelled spectra.
    epochs, lr : int, float
        Budget and peak learning rate (lower than training from scratch).
    freeze : tuple of str
        Parameter-name prefixes to keep fixed (e.g. ``("conv", "to_tokens")``: the spectral encoder).
    """
    from defectnet.model.checkpoint import model_from_checkpoint, read_checkpoint
    from defectnet.model.dataset import load_training_file

    ckpt = read_checkpoint(checkpoint)
    config = finetune_config(ckpt, checkpoint, epochs=epochs, lr=lr, freeze=freeze, split=split, overrides=overrides)
    data = load_training_file(data_path)
    result = train(data, config, out_dir, progress=progress, log=log)
    data = with_candidates(data, config.distractors, config.seed + 1)  # the lists the run was tested on
    original = model_from_checkpoint(ckpt, source=str(checkpoint))
    sp = split_by_host(data, config.split)
    report = {"checkpoint": str(checkpoint), "data": str(data_path), "n_train": len(sp.train), "n_val": len(sp.val),
              "freeze": list(freeze), "epochs_run": result.metrics["epochs_run"], "parts": {}}
    P, D = data.spectra(config.spectrum_mode)
    for part, idx in (("test_id", sp.test_id), ("test_ood", sp.test_ood)):
        if not len(idx):
            continue
        entry = {"n": len(idx), "hosts": data.hosts_of(idx)}
        for name, model in (("before", original), ("after", result.model)):
            o = predict_arrays(model, P[idx], D[idx], data.composition[idx], data.candidates[idx])
            entry[name] = checkpoint_metrics(compute_metrics(o["concentration"], data.targets[idx], data.candidates[idx],
                                                    sigma=o["sigma"],
                                                    presence=o["presence"] if config.arch != "paper" else None))
        report["parts"][part] = entry
    if not report["parts"]:
        raise DefectnetError("the fine-tuning split leaves no held-out samples; give more data or a test fraction")
    main = report["parts"].get("test_id") or report["parts"]["test_ood"]
    report.update(n_test=main["n"], before=main["before"], after=main["after"])
    (Path(out_dir) / "finetune_report.json").write_text(json.dumps(report, indent=2))
    return result


__all__ = ["FINETUNE_SPLIT", "TrainConfig", "TrainResult", "calibrate_sigma", "finetune", "finetune_config", "train",
           "train_from_files"]
