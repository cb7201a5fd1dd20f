"""Metrics and plots of concentration predictions.

Conventions (every metric below is computed by :func:`compute_metrics`):

* Concentrations are atomic fractions inside, reported in **at.%** (× 100) wherever a key
  ends in ``_at_pct``.
* "Candidate entries" are the (sample, element) pairs in the candidate list: the true
  dopants and the distractors. Off-candidate entries are 0 by construction and excluded.
* ``mae_at_pct``, ``rmse_at_pct``, ``r2``: over candidate entries. ``mae_true_at_pct``:
  over true dopants only. ``distractor_mean_at_pct``: mean prediction on distractors.
* Detection at ``threshold`` (0.1 at.% by default): a candidate is *detected* when its
  predicted concentration is ≥ threshold. Precision / recall / F1 count true dopants as
  positives and distractors as negatives. ``detection_ge1pct`` does the same with true
  dopants below 1 at.% left out (the "F1 for dopants ≥ 1 at.%" target). ``detection.auc``:
  the ROC AUC of the predicted concentration for the same labels, free of the threshold.
* ``reference``: what knowing nothing scores on the same candidates. ``mae_zero_at_pct`` is
  the MAE of predicting 0 everywhere, and ``f1_all_present`` the F1 of calling every candidate
  present (2s / (1 + s) when a share s of them are true dopants). A model that does not beat
  both has learnt nothing that transfers.
* ``calibration``: share of true dopants whose |error| ≤ kσ (k = 1, 2; ideal 0.683 and
  0.954 for Gaussian errors), the same over all candidate entries, and for presence
  probabilities the Brier score and expected calibration error (10 bins).
* ``by_host``, ``by_family`` (from :func:`evaluate_checkpoint`; any ``groups`` given to
  :func:`compute_metrics`): the headline errors, F1 and distractor mean per host and per
  host prototype, so the hosts and structure families a model does not know stand out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from defectnet.elements import mass_amu

DETECTION_THRESHOLD = 1e-3  # atomic fraction (0.1 at.%)
DECADES = ((0.0, 0.01, "<1 at.%"), (0.01, 0.1, "1–10 at.%"), (0.1, 1.0, "≥10 at.%"))
MASS_BINS = ((0, 20, "<20 amu"), (20, 50, "20–50 amu"), (50, 90, "50–90 amu"), (90, 300, "≥90 amu"))


def predict_arrays(model, pristine, doped, composition, candidates, *, batch_size: int = 2048, extra=None) -> dict:
    """Run ``model`` on numpy arrays; returns (n, V) arrays ``concentration``, ``sigma``, ``presence``.

    ``extra(slice)``, when given, returns the further inputs of the samples in that slice
    (tensors; the conditioned model's signature curves and knots).
    """
    import torch

    model.eval()
    outs = {"concentration": [], "sigma": [], "presence": []}
    with torch.no_grad():
        for s in range(0, len(pristine), batch_size):
            sl = slice(s, s + batch_size)
            more = tuple(extra(sl)) if extra is not None else ()
            o = model(*(torch.as_tensor(np.asarray(a[sl])) for a in (pristine, doped, composition, candidates)), *more)
            for k in outs:
                outs[k].append(o[k].numpy())
    return {k: np.concatenate(v) if v else np.zeros((0, candidates.shape[1]), np.float32) for k, v in outs.items()}


def _prf(detected, positive, negative) -> dict:
    tp = int(np.sum(detected & positive))
    fp = int(np.sum(detected & negative))
    fn = int(np.sum(~detected & positive))
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    # no positives at all: F1 is undefined (NaN), not 0 — a group without a dopant >= 1 at.% did not fail
    f1 = 2 * p * r / (p + r) if tp else (0.0 if tp + fn else float("nan"))
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def roc_auc(score, positive) -> float:
    """ROC AUC of ``score`` for the boolean labels ``positive`` (Mann-Whitney; ties count one half)."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _errors(pred, true) -> dict:
    if pred.size == 0:
        return {"n": 0, "mae_at_pct": float("nan"), "rmse_at_pct": float("nan")}
    e = pred - true
    return {"n": int(pred.size), "mae_at_pct": float(100 * np.mean(np.abs(e))),
            "rmse_at_pct": float(100 * np.sqrt(np.mean(e**2)))}


def compute_metrics(pred, true, candidates, *, sigma=None, presence=None, n_dopants=None, vocabulary=None,
                    groups=None, threshold: float = DETECTION_THRESHOLD) -> dict:
    """All metrics of predictions ``pred`` against ``true`` (both (n, V) atomic fractions).

    Parameters
    ----------
    pred, true : array (n, V)
        Predicted and true atomic fractions.
    candidates : bool array (n, V)
        Candidate mask (true dopants ∪ distractors).
    sigma : array (n, V), optional
        1σ uncertainty of ``pred`` (atomic fraction); calibration is skipped if absent or all 0.
    presence : array (n, V), optional
        Presence probabilities; their calibration is reported if they are not all 0/1.
    n_dopants : int array (n,), optional
        Dopant count per sample (for the breakdown; default: count of true > 0).
    vocabulary : sequence of str, optional
        Element names of the V columns (per-element and per-mass breakdowns).
    groups : dict of str to array (n,), optional
        Sample labels per breakdown, e.g. ``{"host": names}``: gives ``m["by_host"][name]``
        with the errors over candidate entries, ``n_samples``, ``f1``, ``f1_ge1pct`` and
        ``distractor_mean_at_pct`` of that group's samples; ``by_n_dopants`` is always one.
    threshold : float
        Detection threshold, atomic fraction.

    Returns
    -------
    dict
        See the module docstring; JSON-serialisable (NaN where a quantity is undefined).
    """
    pred, true, cand = np.asarray(pred, float), np.asarray(true, float), np.asarray(candidates, bool)
    is_true = (true > 0) & cand
    is_distractor = cand & ~is_true
    detected = pred >= threshold
    m = _headline_metrics(pred, true, cand, is_true, is_distractor, detected, threshold)
    nd = np.asarray(n_dopants) if n_dopants is not None else is_true.sum(1)
    m |= _group_breakdowns(pred, true, cand, is_true, is_distractor, detected,
                           {"n_dopants": nd.astype(int), **(groups or {})})
    if vocabulary is not None:
        m |= _element_breakdowns(pred, true, cand, is_true, is_distractor, detected, vocabulary)
    calibration = _calibration(pred, true, cand, is_true, sigma, presence)
    if calibration:
        m["calibration"] = calibration
    return m


def _headline_metrics(pred, true, cand, is_true, is_distractor, detected, threshold: float) -> dict:
    """Errors over all candidate entries, detection, the know-nothing references and the error by decade."""
    p, t = pred[cand], true[cand]
    ss_tot = np.sum((t - t.mean()) ** 2) if t.size else 0.0
    m = {"n_samples": len(pred), "n_candidates": int(cand.sum()), "n_true": int(is_true.sum()),
         "n_distractors": int(is_distractor.sum()), "threshold_at_pct": 100 * threshold,
         **{k: v for k, v in _errors(p, t).items() if k != "n"},
         "r2": float(1 - np.sum((p - t) ** 2) / ss_tot) if ss_tot > 0 else float("nan"),
         "mae_true_at_pct": _errors(pred[is_true], true[is_true])["mae_at_pct"],
         "median_relative_error_true": float(np.median(np.abs(pred[is_true] - true[is_true]) / true[is_true]))
         if is_true.any() else float("nan"),
         "distractor_mean_at_pct": float(100 * pred[is_distractor].mean()) if is_distractor.any() else float("nan"),
         "distractor_flagged_fraction": float(np.mean(pred[is_distractor] >= threshold))
         if is_distractor.any() else float("nan"),
         "min_prediction": float(p.min()) if p.size else float("nan")}
    m["detection"] = _prf(detected, is_true, is_distractor) | {"auc": roc_auc(p, is_true[cand])}
    # What knowing nothing scores on the same candidates: every prediction 0 (MAE), every candidate present (F1).
    share = float(is_true[cand].mean()) if cand.any() else float("nan")
    m["reference"] = {"mae_zero_at_pct": _errors(np.zeros_like(t), t)["mae_at_pct"],
                      "f1_all_present": 2 * share / (1 + share) if share > 0 else float("nan")}
    m["detection_ge1pct"] = _prf(detected, is_true & (true >= 0.01), is_distractor)
    m["by_decade"] = {}
    for lo, hi, name in DECADES:
        sel = is_true & (true >= lo) & (true < hi)
        m["by_decade"][name] = {**_errors(pred[sel], true[sel]),
                                "recall": float(np.mean(detected[sel])) if sel.any() else float("nan")}
    return m


def _group_breakdowns(pred, true, cand, is_true, is_distractor, detected, groups: dict) -> dict:
    """``by_<key>``: the errors, F1 and distractor mean of each group of samples, per labelling in ``groups``."""
    out = {}
    for key, labels in groups.items():
        labels = np.asarray(labels, dtype=str)
        out[f"by_{key}"] = {}
        for g in np.unique(labels):
            rows = (labels == g)[:, None]
            dg = is_distractor & rows
            out[f"by_{key}"][str(g)] = {
                **_errors(pred[cand & rows], true[cand & rows]), "n_samples": int(rows.sum()),
                "f1": _prf(detected & rows, is_true & rows, dg)["f1"],
                "f1_ge1pct": _prf(detected & rows, is_true & rows & (true >= 0.01), dg)["f1"],
                "distractor_mean_at_pct": float(100 * pred[dg].mean()) if dg.any() else float("nan")}
    return out


def _element_breakdowns(pred, true, cand, is_true, is_distractor, detected, vocabulary) -> dict:
    """``per_element`` (each candidate element's error, recall, distractor mean) and ``by_dopant_mass``."""
    masses = np.array([mass_amu(el) for el in vocabulary])
    per_element = {}
    for j, el in enumerate(vocabulary):
        if not cand[:, j].any():
            continue
        tj, dj = is_true[:, j], is_distractor[:, j]
        per_element[el] = {"n_true": int(tj.sum()), "n_distractor": int(dj.sum()),
                           "mae_true_at_pct": _errors(pred[tj, j], true[tj, j])["mae_at_pct"],
                           "recall": float(np.mean(detected[tj, j])) if tj.any() else float("nan"),
                           "distractor_mean_at_pct": float(100 * pred[dj, j].mean()) if dj.any() else float("nan")}
    by_mass = {}
    for lo, hi, name in MASS_BINS:
        sel = is_true & ((masses >= lo) & (masses < hi))[None, :]
        by_mass[name] = {**_errors(pred[sel], true[sel]),
                         "recall": float(np.mean(detected[sel])) if sel.any() else float("nan")}
    return {"per_element": per_element, "by_dopant_mass": by_mass}


def _calibration(pred, true, cand, is_true, sigma, presence) -> dict:
    """±1σ/2σ coverage (when ``sigma`` is given and not all 0) and presence Brier/ECE (when not all 0/1)."""
    out = {}
    if sigma is not None and np.any(np.asarray(sigma)[cand] > 0):
        s = np.asarray(sigma, float)
        err = np.abs(pred - true)
        out = {
            "coverage_1sigma_true": float(np.mean(err[is_true] <= s[is_true])) if is_true.any() else float("nan"),
            "coverage_2sigma_true": float(np.mean(err[is_true] <= 2 * s[is_true])) if is_true.any() else float("nan"),
            "coverage_1sigma_all": float(np.mean(err[cand] <= s[cand])),
            "coverage_2sigma_all": float(np.mean(err[cand] <= 2 * s[cand])),
            "mean_sigma_at_pct": float(100 * s[cand].mean()),
        }
    if presence is not None:
        pr = np.asarray(presence, float)[cand]
        if np.any((pr > 0) & (pr < 1)):
            y = is_true[cand].astype(float)
            bins = np.minimum((pr * 10).astype(int), 9)
            ece = sum(abs(pr[bins == b].mean() - y[bins == b].mean()) * np.mean(bins == b)
                      for b in range(10) if np.any(bins == b))
            out.update({"presence_brier": float(np.mean((pr - y) ** 2)), "presence_ece": float(ece)})
    return out


def per_sample_mse(pred, true, candidates) -> np.ndarray:
    """Mean squared error over each sample's candidate entries, shape (n,)."""
    e = np.where(candidates, (pred - true) ** 2, 0.0)
    return e.sum(1) / np.maximum(candidates.sum(1), 1)


# ------------------------------------------------------------------------ plots
def make_plots(out_dir, pred, true, candidates, *, sigma=None, presence=None, n_dopants=None, vocabulary=(),
               title: str = "", seed: int = 0) -> list[Path]:
    """Write the evaluation figures to ``out_dir``; returns their paths.

    ``parity.png``, ``fig4_quartiles.png`` (the paper's Fig. 4: predicted vs true per
    candidate, samples grouped by quartile of per-sample MSE), ``per_element.png``,
    ``breakdown.png`` (error vs concentration decade and number of dopants),
    ``distractors.png`` and, with uncertainties, ``calibration.png``.
    """
    import matplotlib

    matplotlib.use("Agg")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cand = np.asarray(candidates, bool)
    m = compute_metrics(pred, true, cand, sigma=sigma, presence=presence, n_dopants=n_dopants,
                        vocabulary=vocabulary or None)
    figures = {"parity.png": _parity_figure(pred, true, cand, sigma, m, title),
               "fig4_quartiles.png": _quartile_figure(pred, true, cand, sigma, vocabulary, seed),
               "per_element.png": _per_element_figure(m, title),
               "breakdown.png": _breakdown_figure(m),
               "distractors.png": _distractor_figure(pred, true, cand, m)}
    if "calibration" in m and sigma is not None and np.any(sigma[cand] > 0):
        figures["calibration.png"] = _calibration_figure(pred, true, cand, sigma, presence)
    return [_save(fig, out / name) for name, fig in figures.items()]


def _parity_figure(pred, true, cand, sigma, m: dict, title: str):
    """Predicted vs true on linear and log axes, distractors at 0."""
    import matplotlib.pyplot as plt

    is_true = (true > 0) & cand
    is_dis = cand & ~is_true
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, log in zip(axes, (False, True)):
        x, y = 100 * true[is_true], 100 * pred[is_true]
        if log:
            y = np.maximum(y, 1e-3)
        if sigma is not None and not log:
            lo = np.minimum(sigma[is_true], pred[is_true])
            ax.errorbar(x, y, yerr=100 * np.stack([lo, sigma[is_true]]), fmt="none", ecolor="0.8", lw=0.5, zorder=0)
        ax.scatter(x, y, s=6, alpha=0.6, label="true dopants")
        ax.scatter(np.full(is_dis.sum(), 0.1 if log else 0.0), np.maximum(100 * pred[is_dis], 1e-3 if log else -1e9),
                   s=6, alpha=0.4, color="C3", label="distractors (at 0)")
        lim = [0.1, 30] if log else [0, 26]
        ax.plot(lim, lim, "k--", lw=0.8)
        if log:
            ax.set_xscale("log"), ax.set_yscale("log"), ax.set_ylim(1e-3, 40)
        ax.set_xlabel("true (at.%)"), ax.set_ylabel("predicted (at.%)")
    axes[0].set_title(f"{title} MAE {m['mae_at_pct']:.3f} at.%, R² {m['r2']:.3f}")
    axes[1].legend(loc="lower right", fontsize=8)
    return fig


def _quartile_figure(pred, true, cand, sigma, vocabulary, seed: int):
    """The paper's Fig. 4: up to 8 samples per quartile of per-sample MSE, every candidate predicted vs true."""
    import matplotlib.pyplot as plt

    mse = per_sample_mse(pred, true, cand)
    rng = np.random.default_rng(seed)
    quart = np.quantile(mse, [0.25, 0.5, 0.75]) if len(mse) else [0, 0, 0]
    group = np.searchsorted(quart, mse, side="right")
    fig, axes = plt.subplots(4, 1, figsize=(12, 11))
    for q, ax in enumerate(axes):
        rows = np.flatnonzero(group == q)
        rows = np.sort(rng.choice(rows, size=min(8, len(rows)), replace=False)) if len(rows) else rows
        x0, ticks, labels = 0, [], []
        for r in rows:
            cols = np.flatnonzero(cand[r])
            xs = x0 + np.arange(len(cols))
            ax.scatter(xs, 100 * true[r, cols], color="k", s=22, zorder=3, label="true" if x0 == 0 else None)
            ax.scatter(xs, 100 * pred[r, cols], color=f"C{q}", s=22, marker="D", zorder=4,
                       label="predicted" if x0 == 0 else None)
            if sigma is not None:  # ±σ, clipped at 0 (a concentration is never negative)
                lo = np.minimum(sigma[r, cols], pred[r, cols])
                ax.errorbar(xs, 100 * pred[r, cols], yerr=100 * np.stack([lo, sigma[r, cols]]), fmt="none",
                            ecolor=f"C{q}", lw=0.8)
            ticks += list(xs)
            labels += [vocabulary[c] if len(vocabulary) else str(c) for c in cols]
            x0 += len(cols) + 1
            ax.axvline(x0 - 1, color="0.85", lw=0.8)
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("at.%")
        ax.set_title(f"MSE quartile {q + 1} (per-sample MSE ≤ {100 * 100 * (quart[q] if q < 3 else mse.max() if len(mse) else 0):.3g} at.%²)",
                     fontsize=9)
        if q == 0:
            ax.legend(fontsize=8, loc="upper right")
    return fig


def _per_element_figure(m: dict, title: str):
    import matplotlib.pyplot as plt

    els = [el for el in m.get("per_element", {}) if m["per_element"][el]["n_true"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(els)), 4))
    ax.bar(range(len(els)), [m["per_element"][el]["mae_true_at_pct"] for el in els])
    ax.set_xticks(range(len(els)), els, fontsize=8)
    ax.set_ylabel("MAE on true dopants (at.%)")
    ax.set_title(f"{title} per-element error")
    return fig


def _breakdown_figure(m: dict):
    """MAE by true-concentration decade and by number of dopants."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    d = m["by_decade"]
    axes[0].bar(list(d), [d[k]["mae_at_pct"] for k in d])
    axes[0].set_ylabel("MAE (at.%)"), axes[0].set_title("error vs true concentration")
    nd = m["by_n_dopants"]
    axes[1].bar(list(nd), [nd[k]["mae_at_pct"] for k in nd])
    axes[1].set_xlabel("number of dopants"), axes[1].set_ylabel("MAE over candidates (at.%)")
    return fig


def _distractor_figure(pred, true, cand, m: dict):
    import matplotlib.pyplot as plt

    is_dis = cand & ~((true > 0) & cand)
    fig, ax = plt.subplots(figsize=(6, 4))
    v = 100 * pred[is_dis]
    ax.hist(np.clip(v, -0.5, 5), bins=60, color="C3")
    ax.axvline(100 * DETECTION_THRESHOLD, color="k", ls="--", lw=0.8, label="detection threshold")
    ax.set_xlabel("predicted concentration on distractors (at.%)"), ax.set_ylabel("count")
    ax.set_title(f"distractors: mean {m['distractor_mean_at_pct']:.3f} at.%, "
                 f"{100 * m['distractor_flagged_fraction']:.1f} % flagged")
    ax.legend()
    return fig


def _calibration_figure(pred, true, cand, sigma, presence):
    """Coverage of ±kσ against the Gaussian ideal, and presence reliability."""
    import matplotlib.pyplot as plt

    is_true = (true > 0) & cand
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    z = np.abs(pred - true)[is_true] / np.maximum(sigma[is_true], 1e-12)
    ks = np.linspace(0, 3, 31)
    from scipy.special import erf

    axes[0].plot(ks, erf(ks / np.sqrt(2)), "k--", label="ideal (Gaussian)")
    axes[0].plot(ks, [np.mean(z <= k) for k in ks], label="observed (true dopants)")
    axes[0].set_xlabel("k (interval ±kσ)"), axes[0].set_ylabel("coverage"), axes[0].legend()
    if presence is not None:
        pr, y = presence[cand], is_true[cand]
        edges = np.linspace(0, 1, 11)
        idx = np.minimum(np.digitize(pr, edges) - 1, 9)
        xs = [pr[idx == b].mean() for b in range(10) if np.any(idx == b)]
        ys = [y[idx == b].mean() for b in range(10) if np.any(idx == b)]
        axes[1].plot([0, 1], [0, 1], "k--"), axes[1].plot(xs, ys, "o-")
        axes[1].set_xlabel("predicted presence probability"), axes[1].set_ylabel("observed frequency")
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ------------------------------------------------------------------------ the evaluate command
def evaluate_checkpoint(checkpoint, data_path, *, split: str = "ood", out_dir=None, plots: bool = True,
                        batch_size: int = 2048, sample_ids=None) -> dict:
    """Evaluate a checkpoint on one split of a training file; writes ``metrics.json`` and plots.

    Parameters
    ----------
    checkpoint : path
    data_path : path
        Training file (.h5/.npz/.sqlite).
    split : {'ood', 'id', 'val', 'train', 'all'}
        Parts as recorded at training time. 'ood' = every sample whose host was not a
        training host (works on any dataset); 'id'/'val'/'train' need the training data.
    out_dir : path, optional
        Where metrics.json and the figures go.
    sample_ids : iterable of int, optional
        Only these samples of the split (store row ids, ``defectnet.data.store.sample_id``).
    """
    import time

    from defectnet.errors import DefectnetError
    from defectnet.model.checkpoint import (
        check_compatible,
        model_from_checkpoint,
        read_checkpoint,
    )
    from defectnet.model.dataset import (
        load_training_file,
        select_split,
        with_candidates,
    )

    ckpt = read_checkpoint(checkpoint)
    data = load_training_file(data_path)
    tc = ckpt.get("train_config") or {}
    # the same candidate lists the run was validated and tested on
    data = with_candidates(data, tc.get("distractors", "stored"), int(tc.get("seed", 0)) + 1)
    check_compatible(ckpt, grid=data.grid, vocabulary=data.vocabulary, host_elements=data.host_elements,
                     source=str(checkpoint))
    model = model_from_checkpoint(ckpt, source=str(checkpoint))
    idx = select_split(data, ckpt.get("data", {}), split)
    if sample_ids is not None:
        idx = idx[np.isin(data.sample_id[idx], np.fromiter(sample_ids, np.int64))]
    if len(idx) == 0:
        raise DefectnetError(f"split {split!r} of {data_path} is empty for this checkpoint")
    sub = data.subset(idx)
    pristine, doped = sub.spectra(ckpt["spectrum_mode"])
    t0 = time.perf_counter()
    from defectnet.model.network import host_calibration

    # unseen hosts get their own σ scale: those of an OOD split, and any host the model was not trained on
    train_hosts = set((ckpt.get("data") or {}).get("train_hosts") or [])
    names = np.asarray(sub.host_names, dtype=str)[sub.host_id]
    seen = (np.isin(names, sorted(train_hosts)) if train_hosts else np.ones(len(sub), bool)) & (
        split not in ("ood", "val_ood"))
    res = {}
    for mask, is_seen in ((seen, True), (~seen, False)):
        if mask.any():
            part = predict_arrays(host_calibration(model, seen=is_seen), pristine[mask], doped[mask],
                                  sub.composition[mask], sub.candidates[mask], batch_size=batch_size)
            for k, v in part.items():
                res.setdefault(k, np.zeros((len(sub),) + v.shape[1:], v.dtype))[mask] = v
    seconds = time.perf_counter() - t0
    probabilistic = ckpt["arch"] != "paper"
    metrics = compute_metrics(res["concentration"], sub.targets, sub.candidates, sigma=res["sigma"],
                              presence=res["presence"] if probabilistic else None,
                              n_dopants=sub.n_dopants, vocabulary=sub.vocabulary,
                              groups={"host": names, "family": host_families(names)})
    metrics.update({"split": split, "arch": ckpt["arch"], "checkpoint": str(checkpoint), "data": str(data_path),
                    "hosts": sub.hosts_of(), "inference_spectra_per_s": len(sub) / max(seconds, 1e-9)})
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        if plots:
            make_plots(out, res["concentration"], sub.targets, sub.candidates,
                       sigma=res["sigma"] if probabilistic else None,
                       presence=res["presence"] if probabilistic else None,
                       n_dopants=sub.n_dopants, vocabulary=sub.vocabulary, title=f"{ckpt['arch']} ({split})")
    return metrics


def host_families(hosts) -> np.ndarray:
    """The library prototype of each host name (``"?"`` for one outside the library, e.g. a user's CIF)."""
    from defectnet.errors import DefectnetError
    from defectnet.hosts.library import get_library

    lib, fam = get_library(), {}
    for h in set(hosts):
        try:
            fam[h] = lib.get(h).prototype or "?"
        except DefectnetError:
            fam[h] = "?"
    return np.array([fam[h] for h in hosts], dtype=object)
