"""Training the conditioned model (:mod:`defectnet.model.conditioned`) on hosts that have a signature basis.

Every sample's candidates read their curves from their host's basis
(:class:`~defectnet.model.conditioned.BasisTable`), simulated in other cells and placements
than the sample. Beside the spectrum augmentations of the plain model, the curves themselves
are perturbed: each candidate's local modes (its curves above the host's band edge) are moved
by a random energy factor (``mode_shift``), because a measured local mode is 5–25 % from where
the basis' potential puts it (``benchmarks/lvm.py``) and the model must match a shifted mode,
not a perfect copy.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from defectnet.errors import DefectnetError
from defectnet.model.augment import Augment
from defectnet.model.network import ModelConfig
from defectnet.spectrum import BAND_EDGE_QUANTILE, area_quantile_mev


@dataclass(frozen=True)
class ConditionedTrainConfig:
    """How the conditioned model is trained (sizes in samples, times in minutes, shifts as fractions)."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(arch="conditioned"))
    spectrum_mode: str = "gpdos"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_minutes: float = 20.0
    seed: int = 0
    threads: int = 2
    augment: Augment = field(default_factory=lambda: Augment(noise=0.02, extra_fwhm_mev=(0.0, 2.0), stretch=0.03,
                                                              background=0.05))
    mode_shift: float = 0.15  # candidates' local modes moved by a factor in [1 − shift, 1 + shift] ...
    mode_shift_probability: float = 0.5  # ... each candidate of a sample with this chance
    second_basis_probability: float = 0.5  # a sample whose host has a second potential's basis
    # (``BasisTable.with_alternative``) is read through it with this chance: never train on a perfect match
    # A second potential moves the host's bands too, and a mode's strength with them: each candidate's whole
    # curve stretched in energy by a factor in [1 − basis_stretch, 1 + basis_stretch] (area kept) and scaled by
    # one in [1 − basis_gain, 1 + basis_gain], each with chance basis_warp_probability (0: off)
    basis_stretch: float = 0.0
    basis_gain: float = 0.0
    basis_warp_probability: float = 0.5
    # A spectrum may hold a signature no candidate's curve explains (a dopant left off the list, a second
    # potential's mode): a training sample's list loses one of its true dopants with this chance, and the
    # others keep their true targets, so that they learn not to take its signal (0: off)
    drop_true_probability: float = 0.0
    # The shipped model, the most robust to a second potential's spectra, trained on some bases with a candidate
    # on the wrong site: a candidate's curve is replaced with this chance by the same element's curve in another
    # training host, so the network never trusts a curve blindly (0: off)
    foreign_curve_probability: float = 0.0


def basis_training_data(data_path, bases_dir, *, seed: int = 0, spectrum_mode: str = "gpdos"):
    """The samples the conditioned model can learn from: every spectrum of a host with a basis.

    Parameters
    ----------
    data_path : str or Path
        Training files (comma-separated folders or files, as :func:`~defectnet.model.dataset.load_training_file`).
    bases_dir : str or Path
        Folder of ``*.npz`` signature bases, one per host.
    seed : int
        Draws each sample's distractors from its host's pool.

    Returns
    -------
    (TrainingData, BasisTable, dict host -> SignatureBasis, int)
        Candidates are restricted to elements with a curve in their host's basis (a pool element
        whose patch had no stable site is no distractor); a sample whose true dopant has no curve
        is left out, and the last item counts them.
    """
    from defectnet.model.dataset import load_training_file, with_candidates
    from defectnet.signatures import SignatureBasis, basis_files

    bases = {b.host: b for b in map(SignatureBasis.load, basis_files(bases_dir))}
    data = with_candidates(load_training_file(data_path), "pool", seed=seed)
    names = np.asarray(data.host_names, str)[data.host_id]
    data = data.subset(np.flatnonzero(np.isin(names, list(bases))))
    used = {h: bases[h] for h in sorted(set(np.asarray(data.host_names, str)[data.host_id]))}
    data, table, dropped = read_through_bases(data, used, kind=spectrum_mode)
    return data, table, used, dropped


def read_through_bases(data, bases: dict, kind: str = "gpdos"):
    """``(data, BasisTable, n_dropped)``: the samples of ``data`` (all of hosts in ``bases``) read through
    their hosts' bases — candidates restricted to elements with a curve, samples whose true dopant has
    no curve left out (``n_dropped`` of them)."""
    from defectnet.model.conditioned import BasisTable

    table = BasisTable(bases, data.vocabulary, data.grid, kind=kind)
    has = table.has[table.rows_of(data)]
    data.candidates &= has
    whole = np.flatnonzero(~np.any((data.targets > 0) & ~has, axis=1))
    return data.subset(whole), table, len(data) - len(whole)


def shift_modes(curves: np.ndarray, edges_mev: np.ndarray, scales: np.ndarray, grid) -> np.ndarray:
    """Curves (B, K, n, G) per meV with the part above each sample's band edge (B,) moved to energies
    × ``scales`` (B, K), area kept: :func:`defectnet.unmix.stretched`, batched."""
    e = grid.centers
    src = e[None, None, :] / scales[..., None]  # (B, K, G) energies each output bin reads from
    j = np.clip(np.searchsorted(e, src) - 1, 0, len(e) - 2)
    w = np.clip((src - e[j]) / (e[j + 1] - e[j]), 0.0, 1.0)
    inside = (src >= e[0]) & (src <= e[-1])
    above = np.where(e > edges_mev[:, None, None, None], curves, 0.0)  # (B, K, n, G)
    jj = np.broadcast_to(j[:, :, None, :], above.shape)
    moved = (np.take_along_axis(above, jj, -1) * (1 - w[:, :, None]) + np.take_along_axis(above, jj + 1, -1) * w[:, :, None])
    moved = moved * inside[:, :, None] / scales[..., None, None]
    return (curves - above + moved).astype(np.float32)


def warp_curves(curves: np.ndarray, rng, config: ConditionedTrainConfig, grid) -> np.ndarray:
    """Curves (B, K, n, G) with each candidate's whole curve stretched in energy and scaled, each with chance
    ``config.basis_warp_probability`` (:attr:`ConditionedTrainConfig.basis_stretch`, ``basis_gain``)."""
    shape, p = curves.shape[:2], config.basis_warp_probability
    if config.basis_stretch > 0:
        s = rng.uniform(1 - config.basis_stretch, 1 + config.basis_stretch, shape)
        s = np.where(rng.random(shape) < p, s, 1.0)
        curves = shift_modes(curves, np.full(shape[0], -np.inf), s, grid)  # no band edge: the whole curve
    if config.basis_gain > 0:
        g = rng.uniform(1 - config.basis_gain, 1 + config.basis_gain, shape)
        curves = (curves * np.where(rng.random(shape) < p, g, 1.0)[..., None, None]).astype(np.float32)
    return curves


def drop_true_dopant(candidates: np.ndarray, targets: np.ndarray, rng, probability: float) -> np.ndarray:
    """Candidate masks (B, V) bool with, in each sample with chance ``probability``, one of its true dopants
    (``targets`` (B, V) > 0 among its candidates) drawn at random and removed; distractors are kept."""
    out = candidates.copy()
    for i in np.flatnonzero(rng.random(len(out)) < probability):
        true = np.flatnonzero(out[i] & (targets[i] > 0))
        if len(true):
            out[i, rng.choice(true)] = False
    return out


def foreign_curves(curves, knots, table, rows, candidates, allowed_rows, rng, probability: float):
    """``curves`` (B, K, n, G) and ``knots`` (B, K, n) of samples in host rows ``rows`` (B,) with each candidate's,
    with chance ``probability``, replaced by the same element's in another of ``allowed_rows`` of ``table``
    (a candidate no other allowed host has keeps its own)."""
    from defectnet.model.conditioned import candidate_order

    order, valid = candidate_order(candidates)
    curves, knots = curves.copy(), knots.copy()
    allowed = np.zeros(len(table.hosts), bool)
    allowed[np.asarray(allowed_rows, int)] = True
    for i, k in np.argwhere(valid & (rng.random(valid.shape) < probability)):
        others = np.flatnonzero(table.has[:, order[i, k]] & allowed)
        others = others[others != rows[i]]
        if len(others):
            r = rng.choice(others)
            curves[i, k], knots[i, k] = table.curves[r, order[i, k]], table.knots[r, order[i, k]]
    return curves, knots


class BasisInputs:
    """The conditioned model's extra inputs for samples ``b``: their candidates' curves and knots.

    Called with an ``rng`` and a training config, as in training: a sample whose host has an
    alternative basis (:meth:`~defectnet.model.conditioned.BasisTable.with_alternative`) covering
    its candidates is read through it with chance ``second_basis_probability``; then a candidate is read
    through another training host's curve of its element (``foreign_curve_probability``, from
    ``foreign_rows``), its local modes move (``mode_shift_probability``) and its whole curve is warped
    (:func:`warp_curves`). ``candidates`` (B, V), when given, replaces the samples' own lists (one
    with a true dopant left off, :func:`drop_true_dopant`).
    """

    def __init__(self, table, rows, candidates, pristine, grid, foreign_rows=()):
        self.table, self.rows, self.candidates, self.grid = table, rows, candidates, grid
        self.foreign_rows = foreign_rows  # host rows whose curves may stand in for a candidate's (training hosts')
        self.edges = area_quantile_mev(pristine, grid.edges, BAND_EDGE_QUANTILE)  # (n,) meV

    def __call__(self, b, rng=None, config: ConditionedTrainConfig | None = None, candidates=None):
        b = np.asarray(b)
        candidates = self.candidates[b] if candidates is None else candidates  # (B, V) bool
        curves, knots = self.table.lookup(self.rows[b], candidates)
        if rng is not None and config is not None and config.second_basis_probability > 0 and self.table.alternative:
            alt_curves, alt_knots, ok = self.table.alternative_lookup(self.rows[b], candidates)
            use = ok & (rng.random(len(b)) < config.second_basis_probability)
            curves = np.where(use[:, None, None, None], alt_curves, curves)
            knots = np.where(use[:, None, None], alt_knots, knots)
        if rng is not None and config is not None and config.foreign_curve_probability > 0:
            curves, knots = foreign_curves(curves, knots, self.table, self.rows[b], candidates, self.foreign_rows, rng,
                                           config.foreign_curve_probability)
        if rng is not None and config is not None and config.mode_shift > 0:
            s = rng.uniform(1 - config.mode_shift, 1 + config.mode_shift, curves.shape[:2])
            s = np.where(rng.random(s.shape) < config.mode_shift_probability, s, 1.0)
            curves = shift_modes(curves, self.edges[b], s, self.grid)
        if rng is not None and config is not None:
            curves = warp_curves(curves, rng, config, self.grid)
        return torch.from_numpy(curves), torch.from_numpy(knots)


def train_conditioned(data, table, train_idx, val_idx, config: ConditionedTrainConfig = ConditionedTrainConfig(), *,
                      progress: bool = True):
    """Train a :class:`~defectnet.model.conditioned.ConditionedNet`; keep the epoch with the lowest validation MAE.

    Parameters
    ----------
    data : TrainingData
        Samples whose candidates all have curves in ``table`` (draw distractors from the host's pool).
    table : BasisTable or None
        The hosts' bases (None for a plain ``defectnet`` or ``paper`` model trained by the same recipe).
    train_idx, val_idx : int arrays
        Samples to train on and to select the epoch and calibrate presence and ±1σ on.

    Returns
    -------
    (ConditionedNet, dict)
        The model (eval mode, calibrated) and its history: per-epoch validation MAE (at.%), seconds.
        ``model.meta`` holds the grid, spectrum mode and this config; before it can be saved
        (:func:`~defectnet.model.checkpoint.save_checkpoint`) it needs ``meta['basis']``, what a
        basis must match (:func:`~defectnet.model.checkpoint.basis_requirements` of the bases).
    """
    from defectnet.model.architectures import build_model
    from defectnet.model.train import training_tensors, validation_metrics, calibrate_presence, calibrate_sigma

    if config.model.arch not in ("conditioned", "defectnet", "paper"):
        raise DefectnetError(f"train_conditioned trains arch 'conditioned' (or 'defectnet' or 'paper', the same recipe "
                             f"without the basis, to compare), the config says {config.model.arch!r}")
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    tensors = training_tensors(data, config.spectrum_mode)
    P, D, C, M, T = tensors
    rows = table.rows_of(data) if table is not None else None
    inputs = (BasisInputs(table, rows, data.candidates, P.numpy(), data.grid, foreign_rows=np.unique(rows[train_idx]))
              if config.model.arch == "conditioned" else None)
    model = build_model(config.model, data.grid, data.vocabulary, data.host_elements)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * int(np.ceil(len(train_idx) / config.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    best, history, t0 = (float("inf"), None), {"val_mae_at_pct": []}, time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        perm = rng.permutation(train_idx)
        for i in range(0, len(perm), config.batch_size):
            b = torch.as_tensor(perm[i:i + config.batch_size])
            p, d = P[b], D[b]
            if config.augment.active:
                p, d = config.augment(p, d, data.grid, rng)
            m = M[b]
            if config.drop_true_probability > 0:
                m = torch.from_numpy(drop_true_dopant(m.numpy(), T[b].numpy(), rng, config.drop_true_probability))
            extra = inputs(b, rng, config, m.numpy()) if inputs else ()
            loss, _ = model.loss(model(p, d, C[b], m, *extra), T[b], m)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        val = validation_metrics(model, tensors, val_idx, extra=inputs)
        history["val_mae_at_pct"].append(val["mae_at_pct"])
        if progress:
            print(f"epoch {epoch + 1}/{config.epochs}: val MAE {val['mae_at_pct']:.3f} at.%, F1 {val['f1']:.3f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        if val["mae_at_pct"] < best[0]:
            best = (val["mae_at_pct"], copy.deepcopy(model.state_dict()))
        if time.perf_counter() - t0 > 60 * config.max_minutes:
            break
    model.load_state_dict(best[1])
    model.meta = {"grid": data.grid.to_dict(), "spectrum_mode": config.spectrum_mode, "train_config": asdict(config)}
    history |= {"best_val_mae_at_pct": best[0], "epochs_run": len(history["val_mae_at_pct"]),
                "seconds": time.perf_counter() - t0,
                "logit_scale": calibrate_presence(model, tensors, val_idx, extra=inputs),
                "sigma_scale": calibrate_sigma(model, tensors, val_idx, extra=inputs)}
    model.eval()
    return model, history


def predict_conditioned(model, data, table, idx, spectrum_mode: str = "gpdos") -> dict:
    """(n, V) ``concentration``, ``sigma`` and ``presence`` of samples ``idx`` of ``data`` (``table`` unused by a plain model)."""
    from defectnet.model.evaluate import predict_arrays

    idx = np.asarray(idx)
    P, D = data.spectra(spectrum_mode)
    extra = None
    if model.config.arch == "conditioned":
        inputs = BasisInputs(table, table.rows_of(data), data.candidates, P, data.grid)
        extra = lambda sl: inputs(idx[sl])  # noqa: E731
    return predict_arrays(model, P[idx], D[idx], data.composition[idx], data.candidates[idx], extra=extra)


def predict_with_basis(model, pristine, doped, composition, candidates, basis) -> dict:
    """The conditioned ``model``'s answer for one spectrum pair, each candidate read through its signature in ``basis``.

    Parameters
    ----------
    model : ConditionedNet
        With ``meta['basis']`` (as loaded from a checkpoint), which ``basis`` must match
        (:func:`~defectnet.model.checkpoint.check_basis`).
    pristine, doped : array, shape (G,)
        Spectra on the model's grid, of its ``meta['spectrum_mode']``, per meV.
    composition : dict
        Host atomic fractions {element: fraction}.
    candidates : list of str
        Candidate dopants, each in ``basis.elements`` and the model's vocabulary.
    basis : SignatureBasis
        The host's simulated signatures.

    Returns
    -------
    dict
        ``{element: {"concentration": atomic fraction, "uncertainty": 1σ (atomic fraction),
        "presence": probability}}`` per candidate; every other element is 0 by construction.
    """
    out = predict_many_with_basis(model, np.asarray(pristine)[None], np.asarray(doped)[None], composition, candidates,
                                  basis)
    return {el: {"concentration": float(out["concentration"][0, k]), "uncertainty": float(out["sigma"][0, k]),
                 "presence": float(out["presence"][0, k])} for k, el in enumerate(candidates)}


def predict_many_with_basis(model, pristine, doped, composition, candidates, basis) -> dict:
    """:func:`predict_with_basis` for n spectrum pairs of one host at once: ``pristine``, ``doped`` (n, G);
    returns ``concentration``, ``sigma`` and ``presence`` (n, K), columns in the order of ``candidates``."""
    from defectnet.grid import EnergyGrid
    from defectnet.model.checkpoint import check_basis
    from defectnet.model.conditioned import BasisTable
    from defectnet.model.dataset import composition_vector
    from defectnet.model.evaluate import predict_arrays

    req = (model.meta or {}).get("basis")
    if not req:
        raise DefectnetError("the model does not record what a basis must match (meta['basis']); load it from a "
                             "conditioned checkpoint")
    check_basis(req, basis)
    outside = [c for c in candidates if c not in model.vocabulary]
    if outside:
        raise DefectnetError(f"candidates {outside} are not in the model's dopant vocabulary")
    grid = EnergyGrid.from_dict(model.meta["grid"])
    p, d = (np.asarray(a, np.float32) for a in (pristine, doped))
    n = len(p)
    if p.shape != (n, grid.n_bins) or d.shape != p.shape:
        raise DefectnetError(f"spectra have shapes {p.shape[1:]} and {d.shape[1:]}; the model needs ({grid.n_bins},) "
                             f"on grid {grid.grid_id}")
    table = BasisTable({basis.host: basis}, model.vocabulary, grid, kind=req["kind"], n_knots=req["n_knots"])
    cols = [model.vocabulary.index(c) for c in candidates]
    mask = np.zeros((n, len(model.vocabulary)), bool)
    mask[:, cols] = True
    curves, knots = table.lookup(np.zeros(n, int), mask)  # raises for a candidate without curves
    comp = np.repeat(composition_vector(composition, model.host_elements)[None], n, axis=0)
    out = predict_arrays(model, p, d, comp, mask,
                         extra=lambda sl: (torch.from_numpy(curves[sl]), torch.from_numpy(knots[sl])))
    return {k: out[k][:, cols] for k in ("concentration", "sigma", "presence")}

