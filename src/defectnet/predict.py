"""Predict which dopants a crystal holds, and how much, from its doped (and pristine) spectrum.

The user-facing end of defectnet::

    from defectnet import predict_defects
    p = predict_defects("GaAs", "doped.csv", pristine="pristine.csv", candidates=["Si", "Zn", "Be", "C"])
    print(p.table())
    p.plot("prediction.png")

Steps: read both spectra (any grid, meV / THz / cm⁻¹, see :func:`defectnet.io.read_spectrum`),
or compute the pristine one with the MLIP when it is not given (cached on disk); put them
on the model's energy scale (``energy_scale``: measured energies × s, for the softening of
universal MLIPs); keep only the energy range both spectra cover, which must include the
host's whole spectrum; rebin onto the model's grid; run the model on the candidates (the
user's, the recommender's, or both). Every correction made to the input is stated in
:attr:`Prediction.notes`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from defectnet.checks import (DOPED_EDGE_WINDOW, MAX_ROUGHNESS, PRISTINE_EDGE_WINDOW, band_edge, basis_candidates,
                              check_in_basis, choose_unit, coverage_warnings, doped_consistency, doped_problem,
                              host_consistency, host_problem, is_cut, model_candidates, no_signature_warning,
                              plausibility_warnings, roughness, scale_warning, scaled_distance, signal_against_noise,
                              split_candidate, swap_consistency, swap_problem, change_unexplained_warning,
                              unexplained_warning)
from defectnet.elements import DOPANTS, atomic_fractions
from defectnet.errors import DefectnetError
from defectnet.prediction import DETECTION_THRESHOLD_AT_PCT, Prediction, extent_mev
from defectnet.spectrum import Spectrum

#: Share of the pristine spectrum's area that the input range must cover (the rest may be cut).
COVERAGE = 0.995
KINDS = ("total", "gpdos")
#: Who answers with a basis: the conditioned network, the unmixing alone, or the unmixing merged with the plain network.
METHODS = ("conditioned", "unmix", "merge")


@dataclass(frozen=True)
class PredictConfig:
    """How a prediction is made; saved beside every output.

    Parameters
    ----------
    candidates : tuple of str
        Candidate dopant elements given by the user.
    n_recommend : int
        Add this many candidates from :class:`~defectnet.recommend.DopantRecommender` (0 = none).
    kind : str or None
        What the input spectra are: ``"total"`` PDoS or neutron-weighted ``"gpdos"``; ``None``
        = what the model was trained on (a file with a ``gpdos`` or ``total`` column is read
        accordingly).
    unit : str or None
        Energy unit of the input files (meV, THz, cm-1); ``None`` = from the files, see
        :func:`~defectnet.io.read_spectrum`.
    energy_scale : float or None
        The input files' energies are multiplied by this before use (dimensionless).
        Universal MLIPs soften phonons (Si optical ~50 meV vs 64 meV measured): pass
        E_MLIP / E_measured of a known peak to put measured spectra on the model's scale,
        or ``None`` to fit it (:func:`fit_energy_scale`: the measured pristine spectrum
        against the host's MLIP spectrum).
    potential : str
        MLIP for the pristine spectrum when no pristine file is given.
    fwhm_mev, resolution
        Broadening of a computed pristine spectrum (``resolution`` wins); ``None`` for both =
        the broadening of the model's training data.
    method : {'conditioned', 'unmix', 'merge'} or None
        Who answers with a basis (:data:`METHODS`): ``conditioned``, the conditioned network,
        which reads each candidate through its signature in the basis
        (:mod:`defectnet.model.conditioned`); ``unmix``, the unmixing alone
        (:func:`~defectnet.unmix.unmix`); ``merge``, on a host the plain network was trained
        on its answer merged with the unmixing (:func:`~defectnet.unmix.combine`; better than
        either alone there, worse on hosts it never saw, where the unmixing alone is kept).
        ``None``: ``conditioned`` when a conditioned model is given, or none is given and the
        shipped one can read the basis; else ``merge``, with a note when a conditioned model
        is shipped but cannot read the basis or ``refine`` / ``stretch`` asks for an unmixing.
    refine : int
        With ``method`` unmix or merge: correct the unmixed concentrations by this many
        syntheses of the mix (:func:`~defectnet.unmix.refine`, ~1–4 s each; mixes of several
        dopants at 10–30 % are read low without). 0 = unmixing alone.
    combine : bool
        The older spelling of ``method``: ``False`` is ``method='unmix'``.
    stretch : float
        With a basis: each candidate's local modes (its signature above the host's band edge)
        may sit at energies scaled by up to ±``stretch`` from where the basis' potential put
        them, fitted per candidate (:func:`~defectnet.unmix.unmix`). 0 = as simulated.
    modes_mev : dict element -> float
        With a basis: measured local-mode energies (meV) of candidates; each one's signature above
        the host's bands is moved there before anything reads the basis
        (:func:`~defectnet.unmix.calibrated`), for every method.
    force : bool
        Answer even when the input is unlike the host (a measured pristine unlike the host's
        simulated one, a doped spectrum unlike its pristine): the refusal becomes a warning and
        the answer is not trusted (:mod:`defectnet.checks`).
    """

    candidates: tuple[str, ...] = ()
    n_recommend: int = 0
    kind: str | None = None
    unit: str | None = None
    energy_scale: float | None = 1.0
    potential: str = "sevennet"
    fwhm_mev: float | None = None
    resolution: str | None = None
    method: str | None = None
    refine: int = 0
    combine: bool = True
    stretch: float = 0.0
    modes_mev: dict = field(default_factory=dict)
    force: bool = False

    def __post_init__(self):
        object.__setattr__(self, "candidates", tuple(dict.fromkeys(self.candidates)))
        if self.kind is not None and self.kind not in KINDS:
            raise DefectnetError(f"unknown spectrum kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.energy_scale is not None and not (np.isfinite(self.energy_scale) and 0.5 <= self.energy_scale <= 2.0):
            raise DefectnetError(f"energy_scale must lie in [0.5, 2], got {self.energy_scale!r}")
        if self.n_recommend < 0:
            raise DefectnetError(f"n_recommend must be ≥ 0, got {self.n_recommend}")
        if self.refine < 0:
            raise DefectnetError(f"refine must be ≥ 0 syntheses, got {self.refine}")
        if not (np.isfinite(self.stretch) and 0 <= self.stretch <= 0.5):
            raise DefectnetError(f"stretch must be a fraction in [0, 0.5], got {self.stretch!r}")
        for el, e in self.modes_mev.items():
            if not (isinstance(e, (int, float)) and np.isfinite(e) and e > 0):
                raise DefectnetError(f"the local mode of {el} must be a positive energy in meV, got {e!r}")
        if self.method is not None and self.method not in METHODS:
            raise DefectnetError(f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not self.combine:  # --basis-only, from before there were methods
            if self.method not in (None, "unmix"):
                raise DefectnetError(f"--basis-only is --method unmix, which contradicts --method {self.method}; "
                                     "give one of them")
            object.__setattr__(self, "method", "unmix")
        for c in self.candidates:
            split_candidate(c)


def predict_defects(host, doped, *, pristine=None, config: PredictConfig | None = None, model=None,
                    truth=None, progress: bool = False, basis=None, **kw) -> Prediction:
    """Concentrations of candidate dopants in ``host`` from its doped spectrum.

    Parameters
    ----------
    host : str, Path or ase.Atoms
        Library name (``GaAs``), CIF/POSCAR file, or structure.
    doped : str, Path or Spectrum
        The doped sample's spectrum (file: see :func:`defectnet.io.read_spectrum`).
    pristine : str, Path, Spectrum or None
        The undoped host's spectrum; ``None`` computes it with the MLIP (cached).
    config : PredictConfig, optional
        Candidates, units, energy scale ...; keyword arguments build one if not given
        (``candidates=["Si", "Zn"]``, ``n_recommend=5`` ...).
    model : SpectralModel, str or Path, optional
        A trained model or checkpoint path; default: the model shipped with defectnet (with
        ``basis``, the shipped conditioned model). A conditioned model needs ``basis``.
    truth : dict or str or Path, optional
        Known concentrations {element: atomic fraction}, or a ``meta.json`` written by
        ``defectnet simulate``; shown beside the prediction.
    basis : SignatureBasis, str or Path, optional
        This host's simulated candidate signatures (``defectnet basis`` makes one), read as
        ``config.method`` says: by the conditioned network (default), by unmixing the
        signature against them (:mod:`defectnet.unmix`), or by unmixing merged with the plain
        network on its training hosts. The candidates must be in the basis; a missing
        pristine is the basis' own simulated pristine supercell.

    Returns
    -------
    Prediction
    """
    config = config or PredictConfig(**kw)
    with warnings.catch_warnings(record=True) as caught:  # the user reads warnings in the notes, not on stderr
        moved = []
        if basis is not None:
            basis, path = _read_basis(basis)
            if config.modes_mev:
                from defectnet.unmix import calibrated

                basis, moved = calibrated(basis, config.modes_mev)
            method, model, chosen = _basis_method(config, model, basis, path or f"the basis of {basis.host}")
            if method == "conditioned":
                pred = _predict_conditioned(host, doped, pristine, config, basis, path, truth, model)
            else:
                pred = _predict_by_unmixing(host, doped, pristine, config, basis, path, truth,
                                            model if method == "merge" else None, merge=method == "merge")
            if chosen:
                pred.notes.insert(0, chosen)
            pred.notes += moved
        else:
            if config.modes_mev:
                raise DefectnetError("measured local modes (--lvm) move signatures in a basis: they need a basis (--basis)")
            if config.method:
                raise DefectnetError(f"method {config.method!r} (--method, --basis-only) chooses how a basis is read: "
                                     "it needs a basis (--basis)")
            pred = _predict_with_model(host, doped, pristine, config, model, truth, progress)
    _warnings_to_notes(caught, pred.notes)
    return _vetted(pred)


def _vetted(pred: Prediction) -> Prediction:
    """``pred`` after the checks of its answer (:mod:`defectnet.checks`): nothing reported without a
    signature above noise; an answer too small for the change in the spectrum, or implausible, warned about."""
    if warning := no_signature_warning(pred.checks.get("signal") or {}, pred.rows):
        pred.rows = [dict(r, concentration=0.0, presence=0.0, detected=False) for r in pred.rows]
        pred.warnings.append(warning)
    elif warning := change_unexplained_warning(pred.checks.get("doped"), pred.rows):
        pred.warnings.append(warning)
    pred.warnings += plausibility_warnings(pred.rows)
    return pred


def _warnings_to_notes(caught, notes: list) -> None:
    """Append the text of warnings raised while predicting to ``notes``, once each.

    A guessed energy unit is already a note (from the spectrum's ``meta["unit_inferred"]``)."""
    from defectnet.io import UnitGuessWarning

    for w in caught:
        text = f"warning: {' '.join(str(w.message).split())}"
        if not issubclass(w.category, UnitGuessWarning) and text not in notes:
            notes.append(text)


def host_reference(host, *, config: PredictConfig | None = None, model=None, progress: bool = False) -> Spectrum:
    """The host's simulated pristine spectrum that :func:`predict_defects` checks measured spectra
    against: the MLIP's q-mesh PDoS on the model's grid (neutron-weighted if the model reads
    GPDoS), cached on disk (``$DEFECTNET_CACHE``; for the process only when that is ``off``)."""
    config = config or PredictConfig()
    model, _ = _loaded(model)
    atoms, name, composition = _resolve_host(host)
    s = _computed_pristine(atoms, name, config, model, _model_grid(model), progress=progress)
    return s.neutron_weighted(composition) if (config.kind or model.meta.get("spectrum_mode")) == "gpdos" else s


def _predict_with_model(host, doped, pristine, config: PredictConfig, model, truth, progress: bool) -> Prediction:
    """:func:`predict_defects` by the trained model."""
    if config.refine:
        raise DefectnetError("refine corrects an unmixing: it needs a basis (--basis)")
    from defectnet.model.network import host_calibration

    model, model_label = _loaded(model)
    if model.config.arch == "conditioned":
        raise DefectnetError(f"{model_label} is a conditioned model: it reads each candidate through its signature in "
                             "the host, so it needs a basis (defectnet basis HOST --candidates ... --out basis.npz, "
                             "then --basis basis.npz)")
    grid = _model_grid(model)
    mode = model.meta.get("spectrum_mode", "total")
    kind = config.kind or mode
    if kind != mode:
        raise DefectnetError(f"the model reads {mode} spectra but the input is {kind}; expected --kind {mode}, or a "
                             f"model trained on {kind} (defectnet train ... --set spectrum_mode={kind})")
    atoms, name, composition = _resolve_host(host)
    unknown = [e for e in composition if e not in model.host_elements]
    if unknown:
        raise DefectnetError(f"host {name} contains {unknown}, which the model does not know as host elements")

    notes: list[str] = []
    candidates = _candidates(atoms, name, config, model.vocabulary)
    try:
        computed = _computed_pristine(atoms, name, config, model, grid, progress=progress)
    except DefectnetError as exc:
        if pristine is None:
            raise
        computed, reference_error = None, str(exc)
    else:
        computed, reference_error = (computed.neutron_weighted(composition) if kind == "gpdos" else computed), None
    if pristine is None:
        notes.append(f"pristine spectrum computed with {config.potential} (q-mesh, "
                     f"{_broadening_text(config, model)})")
    p, d, config, checks, warned = _inputs(doped, pristine, config, kind, composition, name, computed,
                                           f"the {config.potential}", grid, notes)
    if reference_error:
        warned.append(f"not checked against the host's simulated spectrum: {reference_error}")
    seen = host_in_training(model, name, composition)
    notes.append(_calibration_note(model, name, seen))
    if seen is not True and (note := family_note(model, name)):
        notes.append(note)
    if seen is not True:
        notes.append(f"on hosts it did not train on the model errs most; `defectnet basis {name} --candidates "
                     f"{','.join(candidates)} --out basis.npz` then `predict --basis basis.npz` unmixes against "
                     "this host's own simulated signatures instead (README, analysis by synthesis)")
    with host_calibration(model, seen=seen is not False):
        res = model.predict(p.values, d.values, composition, list(candidates))
    rows = _rows({el: (source, res[el]["concentration"], res[el]["uncertainty"], res[el]["presence"])
                  for el, source in candidates.items()})
    info = {"path": model_label, "arch": model.config.arch,
            "spectrum_mode": mode, "code_version": model.meta.get("code_version"), "host_in_training": seen,
            "trained_on": (model.meta.get("data") or {}).get("path"),
            "test_metrics": _headline(model.meta.get("metrics") or {})}
    return Prediction(name, composition, kind, rows, p, d, notes, info, _truth(truth), config, warnings=warned,
                      checks=checks)


def _basis_method(config: PredictConfig, model, basis, source: str) -> tuple[str, object, str | None]:
    """(the method that reads ``basis``, the model it needs: loaded, or None for a shipped one, and a
    note when the method was chosen for the user).

    ``config.method`` when it names one. Else ``conditioned`` when the model given is a
    conditioned one, or none is given and the shipped conditioned model can read this basis;
    ``merge`` (what ``--basis`` did before there was a conditioned model) when the model given
    is a plain one, none is shipped, an unmixing option (refine, stretch) is asked for, or the
    shipped conditioned model cannot read the basis; the last two are said in the note."""
    from defectnet.model.checkpoint import load_model, pretrained_path

    method, note = config.method, None
    if model is not None and not hasattr(model, "predict"):
        if method == "unmix":  # the unmixing reads no model
            model = None
        else:
            model, label = _loaded(model)
            model.meta["path"] = label  # named so in the notes and the output
    arch = model.config.arch if model is not None else None
    if method is None and arch is None and pretrained_path("conditioned").is_file():
        method = "merge"
        if asked := "--refine" if config.refine else "--stretch" if config.stretch else None:
            note = f"{asked} refines an unmixing: answered as --method merge, not by the conditioned network"
        else:
            shipped = load_model(arch="conditioned")
            shipped.meta["path"] = "shipped"
            try:
                _conditioned_reads(shipped, basis, config, source)
            except DefectnetError as exc:  # a basis made for unmixing alone still answers, as it did
                note = f"not answered by the conditioned network, which cannot read this: {exc}; answered as --method merge"
            else:
                method, model = "conditioned", shipped
    elif method is None:
        method = "conditioned" if arch == "conditioned" else "merge"
    if method == "conditioned" and arch not in (None, "conditioned"):
        raise DefectnetError(f"--method conditioned needs a conditioned model; {_label_of(model)} is a {arch} model "
                             "(without --model the shipped conditioned model answers)")
    if method == "merge" and arch == "conditioned":
        raise DefectnetError(f"--method merge merges the unmixing with the plain network; {_label_of(model)} is a "
                             "conditioned model (--method conditioned reads the basis with it)")
    if method == "conditioned" and (config.refine or config.stretch):
        what = "--refine corrects" if config.refine else "--stretch moves the local modes of"
        raise DefectnetError(f"{what} an unmixing, and here the conditioned network answers; add --method unmix "
                             "(or merge)")
    return method, model, note


def _conditioned_reads(model, basis, config: PredictConfig, source: str) -> list[str]:
    """Raise unless the conditioned ``model`` reads ``basis`` and spectra of ``config.kind``; notes on what differs."""
    from defectnet.model.checkpoint import check_basis

    mode = model.meta.get("spectrum_mode", "gpdos")
    if (config.kind or mode) != mode:
        raise DefectnetError(f"the conditioned model reads {mode} spectra but the input is {config.kind}; "
                             "use --method unmix for other spectra")
    return check_basis(model.meta.get("basis") or {}, basis, source)


def _label_of(model) -> str:
    return str(model.meta.get("path") or "the model given")


def _read_basis(basis) -> tuple:
    """(the basis, its file or None when given as an object)."""
    from defectnet.unmix import SignatureBasis

    if isinstance(basis, SignatureBasis):
        return basis, None
    return SignatureBasis.load(basis), str(basis)


def _predict_conditioned(host, doped, pristine, config: PredictConfig, basis, path, truth, model) -> Prediction:
    """:func:`predict_defects` by the conditioned network, each candidate read through its signature in ``basis``
    (read from ``path``, None for an object)."""
    from defectnet.model.checkpoint import load_model
    from defectnet.model.conditioned_train import predict_with_basis
    from defectnet.model.network import host_calibration

    model, label = (model, _label_of(model)) if model is not None else (load_model(arch="conditioned"), "shipped")
    differs = _conditioned_reads(model, basis, config, path or f"the basis of {basis.host}")
    mode = kind = model.meta.get("spectrum_mode", "gpdos")
    _, name, composition = _resolve_host(host)
    unknown = [e for e in composition if e not in model.host_elements]
    if unknown:
        raise DefectnetError(f"host {name} contains {unknown}, which the model does not know as host elements")
    sim = basis.config.get("simulation", {})
    notes = [f"answered by the conditioned network ({label}), which reads each candidate through its signature "
             f"simulated in {basis.host} ({sim.get('potential')}, tier {sim.get('tier')})"]
    notes += differs
    if basis.host != name:
        notes.append(f"the basis was simulated for {basis.host}, the host given is {name}")
    cands = basis_candidates(config.candidates, basis, composition, name) or list(basis.elements)
    check_in_basis(cands, basis, name, path)
    outside = [c for c in cands if c not in model.vocabulary]
    if outside:
        raise DefectnetError(f"candidates {outside} are not in the conditioned model's dopant vocabulary")
    read = [c for c in cands if c not in basis.failed]
    bkind = "gpdos" if kind == "gpdos" else "pdos"
    computed = Spectrum.on_grid(basis.grid, basis.pristine[bkind], kind=kind,
                                meta={"source": f"{basis.host} pristine supercell of the basis"})
    if pristine is None:
        notes.append("pristine spectrum: the basis' simulated pristine supercell")
    p, d, config, checks, warned = _inputs(doped, pristine, config, kind, composition, name, computed, "the basis'",
                                           basis.grid, notes, modes=basis_modes(basis, bkind, read))
    seen = host_in_training(model, name, composition)
    notes.append(_calibration_note(model, name, seen))
    res = {}
    if read:
        from defectnet.unmix import unmix

        with host_calibration(model, seen=seen is not False):
            res = predict_with_basis(model, p.values, d.values, composition, read, basis)
        # what the candidates' signatures cannot explain, whoever answers: the basis' best fit of them
        if warning := unexplained_warning(unmix(p.values, d.values, basis, kind=bkind, candidates=read)["_fit"]):
            warned.append(warning)
    if unstable := [c for c in cands if c in basis.failed]:
        notes.append("no stable position in the basis' simulations, reported absent: "
                     + "; ".join(basis.failed[c] for c in unstable))
        res |= {c: {"concentration": 0.0, "uncertainty": 0.0, "presence": 0.0} for c in unstable}
    rows = _rows({el: ("user" if config.candidates else "basis", res[el]["concentration"], res[el]["uncertainty"],
                       res[el]["presence"]) for el in cands})
    info = {"path": label, "arch": "conditioned", "method": "conditioned", "spectrum_mode": mode,
            "code_version": model.meta.get("code_version"), "host_in_training": seen, "basis_host": basis.host,
            "basis_file": path or "in memory", "basis": basis.config,
            "trained_on": (model.meta.get("data") or {}).get("source"),
            "test_metrics": _headline(model.meta.get("metrics") or {})}
    return Prediction(name, composition, kind, rows, p, d, notes, info, _truth(truth), config, warnings=warned,
                      checks=checks)


def _predict_by_unmixing(host, doped, pristine, config: PredictConfig, basis, path, truth, model=None, *,
                         merge: bool = True) -> Prediction:
    """:func:`predict_defects` with a signature basis (read from ``path``, None for an object); with ``merge``,
    merged with the plain model on its training hosts."""
    from defectnet.unmix import unmix

    kind = config.kind or "gpdos"  # what INS measures
    _, name, composition = _resolve_host(host)
    sim = basis.config.get("simulation", {})
    notes = [f"analysis by synthesis: unmixed against the signatures of {len(basis.elements)} candidates simulated in "
             f"{basis.host} ({sim.get('potential')}, tier {sim.get('tier')})"]
    if basis.host != name:
        notes.append(f"the basis was simulated for {basis.host}, the host given is {name}")
    bkind = "gpdos" if kind == "gpdos" else "pdos"
    computed = Spectrum.on_grid(basis.grid, basis.pristine[bkind], kind=kind,
                                meta={"source": f"{basis.host} pristine supercell of the basis"})
    cands = basis_candidates(config.candidates, basis, composition, name) or list(basis.elements)
    check_in_basis(cands, basis, name, path)
    if pristine is None:
        notes.append("pristine spectrum: the basis' simulated pristine supercell")
    p, d, config, checks, warned = _inputs(doped, pristine, config, kind, composition, name, computed, "the basis'",
                                           basis.grid, notes, modes=basis_modes(basis, bkind, cands))
    if config.refine:
        from defectnet.synthesis import Synthesizer, refine

        out = refine(p.values, d.values, basis, Synthesizer.from_basis(basis), kind=bkind, candidates=cands,
                     iterations=config.refine)
        notes.append(f"refined by synthesising the mix {config.refine} times; kept synthesis "
                     f"{out['_fit']['iteration']} (0 = the unmixed concentrations)")
    else:
        out = unmix(p.values, d.values, basis, kind=bkind, candidates=cands, stretch=config.stretch)
    fit = out.pop("_fit")
    notes += [f"{el}: local mode found at {m['fitted_mev']:.1f} meV, the basis had {m['basis_mev']:.1f} meV "
              f"(×{m['scale']:.2f})" for el, m in fit.get("modes", {}).items() if m["basis_mev"] is not None]
    info = {"path": path or "in memory", "arch": "unmix", "method": "merge" if merge else "unmix",
            "spectrum_mode": kind, "basis_host": basis.host,
            "basis": basis.config, "residual_fraction": fit["residual_fraction"], "modes": fit.get("modes", {})}
    if fit["unstable"]:
        notes.append("no stable position in the basis' simulations, reported absent: "
                     + "; ".join(fit["unstable"].values()))
    what = "the synthesis" if config.refine else "the basis"
    notes.append(f"{what} explains {100 * (1 - fit['residual_fraction'] ** 2):.0f} % of the signature's variance")
    if warning := unexplained_warning(fit):
        warned.append(warning)
    merged = _merge_with_model(model, name, composition, kind, basis.grid, p, d, cands, out, notes) \
        if merge else None
    if merged is not None:
        out, model, model_label = merged
        info |= {"arch": f"unmix+{model.config.arch}", "model": model_label,
                 "code_version": model.meta.get("code_version")}
    rows = _rows({el: ("user" if config.candidates else "basis", out[el]["concentration"],
                       out[el]["uncertainty"], out[el]["presence"]) for el in cands})
    twins = [f"{a}/{b}" for a, b, cos in basis.alike(bkind, among=cands) if cos > 0.95]
    if twins:
        notes.append("signatures too alike to tell apart (cosine > 0.95), their split is arbitrary: " + ", ".join(twins))
    return Prediction(name, composition, kind, rows, p, d, notes, info, _truth(truth), config, warnings=warned,
                      checks=checks)


def basis_modes(basis, kind: str, candidates) -> dict[str, float]:
    """{candidate: the energy (meV) below which 99 % of its simulated signature's |area| lies}: where its
    local modes end, which a spectrum must reach for the candidate to be seen."""
    from defectnet.unmix import band_edge_mev

    rows = {el: np.abs(basis.signatures[kind][basis.elements.index(el)]) for el in candidates if el in basis.elements}
    return {el: band_edge_mev(v, basis.grid, 0.99) for el, v in rows.items() if np.any(v > 0)}


def _inputs(doped, pristine, config, kind, composition, host: str, reference, against: str, grid, notes, modes=None):
    """(pristine, doped, config, checks, warnings): both spectra read, in their energy unit and
    scale, checked against each other and the host's simulated ``reference`` (None: not
    checked) and put on ``grid``. A refusal raises unless ``config.force``, where it becomes a warning."""
    if config.energy_scale is None:
        config = _fit_scale(config, pristine, reference, kind, composition, against, notes, host)
    d = _load(doped, config, kind, composition, "doped", notes, reference, host)
    p = reference if pristine is None else _load(pristine, config, kind, composition, "pristine", notes, reference, host)
    labels = {"doped": _label(doped, "doped"),
              "pristine": _label(pristine, f"{against} pristine of {host}") if pristine is not None else
              f"{against} pristine of {host}"}
    checks = {"signal": signal_against_noise(p, d), "doped": doped_consistency(p, d)}
    problems = [doped_problem(checks["doped"], labels["doped"], labels["pristine"])]
    warned = []
    if reference is not None:
        if pristine is not None:
            checks["host"] = host_consistency(p, reference)
            checks["swap"] = swap_consistency(p, d, reference, checks["host"])
            problems[:0] = [swap_problem(checks["swap"], labels["pristine"], labels["doped"], host, against),
                            host_problem(checks["host"], labels["pristine"], host, against)]
            warned += [w for w in [scale_warning(checks["host"], labels["pristine"], host, against,
                                                 config.energy_scale or 1.0)] if w]
        warned += coverage_warnings({labels[k]: s.edges_mev[-1] for k, s in (("pristine", p), ("doped", d))},
                                    band_edge(reference), host, modes)
    p, d = _common_range(p, d, grid, notes)
    problems = [x for x in problems if x]
    if problems and not config.force:
        raise DefectnetError(problems[0])
    return p, d, config, checks, problems + warned


def _label(src, default: str) -> str:
    return default if src is None or isinstance(src, Spectrum) else str(src)


def _merge_with_model(model, name, composition, kind, grid, p, d, cands, unmixed, notes):
    """(the unmixing merged with the model's answer, the model, its label) when ``name`` is a
    training host of the model and it reads these spectra on this grid; else None (unmixing alone)."""
    from defectnet.model.network import host_calibration
    from defectnet.unmix import combine

    model, label = _loaded(model)
    if host_in_training(model, name, composition) is not True:
        return None  # the model's error on a host it never saw is not in its σ: merging would be worse
    why = ("it gives no uncertainty to weigh its answer by" if model.config.arch == "paper" else
           "it reads other spectra" if model.meta.get("spectrum_mode", "total") != kind else
           "it is on another energy grid" if model.meta.get("grid_id") not in (None, grid.grid_id) else
           "a candidate is outside its vocabulary" if any(c not in model.vocabulary for c in cands) else
           "a candidate is a host element (an antisite), which it cannot tell from the host's own atoms"
           if any(c in composition for c in cands) else
           "a host element is unknown to it" if any(e not in model.host_elements for e in composition) else None)
    if why:
        notes.append(f"{name} is a training host of the model, but {why}: the unmixing alone is reported")
        return None
    with host_calibration(model, seen=True):
        res = model.predict(p.values, d.values, composition, list(cands))
    notes.append(f"{name} is a training host of the model: its answer and the unmixing's are merged "
                 "(1/σ² weights; --method unmix for the unmixing alone)")
    return combine(res, unmixed), model, label


def _loaded(model) -> tuple:
    """(the model, what to call it in the output): a model object, a checkpoint path, or None (shipped)."""
    from defectnet.model.checkpoint import load_model

    if hasattr(model, "predict"):
        return model, str(model.meta.get("path") or "shipped")
    return load_model(model), str(model) if model else "shipped"


# ----------------------------------------------------------------------------- helpers
def _resolve_host(host) -> tuple:
    """(atoms, name, composition {element: atomic fraction}) of a library name, file or Atoms."""
    from defectnet.simulate import resolve_host

    atoms, name = resolve_host(host)
    return atoms, name, atomic_fractions(atoms.get_chemical_symbols())


def _fit_scale(config: PredictConfig, pristine, computed, kind, composition, against: str, notes,
               host: str) -> PredictConfig:
    """``config`` with the energy scale that puts the measured ``pristine`` on ``computed``'s axis."""
    if pristine is None:
        raise DefectnetError("fitting the energy scale needs a measured pristine spectrum (--pristine)")
    if computed is None:
        raise DefectnetError("fitting the energy scale needs the host's simulated spectrum, which could not be "
                             "computed; pass --energy-scale explicitly")
    measured = _load(pristine, replace(config, energy_scale=1.0), kind, composition, "pristine", [], computed, host)
    scale, before, after = fit_energy_scale(measured, computed)
    notes.append(f"energy scale {scale:.3f} fitted to {against} pristine spectrum (W1 distance {before:.2f} → "
                 f"{after:.2f} meV)")
    return replace(config, energy_scale=scale)


def _rows(found: dict) -> list[dict]:
    """Table rows from {element: (source, fraction, 1σ, presence)}, largest concentration first."""
    rows = [{"element": el, "source": src, "concentration": c, "uncertainty": s, "presence": p,
             "detected": bool(p > 0.5 and 100 * c >= DETECTION_THRESHOLD_AT_PCT)} for el, (src, c, s, p) in found.items()]
    return sorted(rows, key=lambda r: -r["concentration"])


def host_in_training(model, name: str, composition: dict) -> bool | None:
    """Whether a host of this name or composition (±0.001 per element) was a training host; None if unknown."""
    data = model.meta.get("data") or {}
    if name in (data.get("train_hosts") or ()):
        return True
    comps = data.get("train_compositions")
    if comps is None:
        return None
    els = set(composition)
    return any(set(c) == els and all(abs(c[e] - composition[e]) <= 1e-3 for e in els) for c in comps)


def family_note(model, name: str) -> str | None:
    """A warning when host ``name``'s structure family (library prototype) has no training host.

    Errors grow and ±1σ under-covers on such hosts (the model card's per-family table);
    None when the family is shared or either side is unknown (a host outside the library)."""
    from defectnet.model.evaluate import host_families

    train = list((model.meta.get("data") or {}).get("train_hosts") or ())
    if not train:
        return None
    family, *train_families = host_families([name, *train])
    known = set(train_families) - {"?"}
    if family == "?" or not known or family in known:
        return None
    return (f"{name} is a {family}, a structure family with no training host ({', '.join(sorted(known))}): "
            f"expect larger errors than the model card's test rows, and a ±1σ that covers less than 68 %")


def _calibration_note(model, name: str, seen: bool | None) -> str:
    if seen:
        return f"{name} is a training host: ±1σ calibrated on unseen configurations of training hosts"
    unseen = getattr(model, "sigma_scale_unseen", None)
    what = "was not a training host" if seen is False else "may not be a training host (the model does not list them)"
    if seen is False and unseen is not None and np.isfinite(unseen):
        return f"{name} {what}: ±1σ calibrated on hosts held out of training"
    return f"{name} {what}: ±1σ is calibrated on training hosts only and is likely too small"


def _model_grid(model):
    from defectnet.grid import EnergyGrid

    g = model.meta.get("grid")
    if g is None:
        raise DefectnetError("the model does not record its energy grid; retrain it with this defectnet")
    return EnergyGrid.from_dict(g if isinstance(g, dict) else json.loads(g))


def _headline(metrics: dict) -> dict:
    out = {}
    for part in ("test_ood", "test_id"):
        m = metrics.get(part)
        if isinstance(m, dict):
            out[part] = {k: m[k] for k in ("mae_at_pct", "r2", "f1", "distractor_mean_at_pct") if k in m}
    return out


def _load(src, config: PredictConfig, kind: str, composition: dict, what: str, notes: list, reference=None,
          host: str = "the host") -> Spectrum:
    """A spectrum from a file or object, of ``kind``, energies × ``energy_scale``; a file's energy
    unit checked against (or, unstated, chosen by) the band edge of the host's simulated ``reference``."""
    from defectnet.io import read_spectrum

    if isinstance(src, Spectrum):
        s, label = src, what
    else:
        label = str(src)
        s = None
        if kind == "gpdos":  # our own files carry both: prefer the GPDoS column
            try:
                s = read_spectrum(src, unit=config.unit, column="gpdos")
            except DefectnetError as exc:
                if "no column named" not in str(exc):
                    raise
        s = _positive_energies(s or read_spectrum(src, unit=config.unit), label, notes)
        if not s.area() > 0:
            raise DefectnetError(f"{label}: the spectrum is zero everywhere; expected a phonon density of states")
        if reference is not None and roughness(s) <= MAX_ROUGHNESS:  # random numbers have no unit to tell
            s = _physical_unit(s, label, config, reference, what, host, notes)
        elif v := s.meta.get("unit_inferred"):
            notes.append(f"{label}: energy unit not stated, assumed {v['unit']} ({v['rule']}); pass --unit to override")
        if s.meta.get("sorted_on_read"):
            notes.append(f"{label}: rows were not sorted by energy; sorted")
        if s.meta.get("clipped_negatives"):
            notes.append(f"{label}: {s.meta['clipped_negatives']} tiny negative values (numerical noise) set to 0")
    if kind == "gpdos" and s.kind != "gpdos" and str(s.meta.get("column", "")).lower() != "gpdos":
        if s.partials and set(composition) <= set(s.partials) and set(s.partials) <= set(composition):
            s = s.neutron_weighted(composition)
            notes.append(f"{label}: GPDoS made from its per-element partials with neutron weights")
        else:
            notes.append(f"{label}: intensity taken as a neutron-weighted GPDoS (what INS measures)")
    if config.energy_scale not in (None, 1.0):
        s = s.scale_energy(config.energy_scale)
        notes.append(f"{label}: energies multiplied by {config.energy_scale:g} (energy scale)")
    if not s.area() > 0:
        raise DefectnetError(f"{label}: the spectrum is zero everywhere; expected a phonon density of states")
    return s


def _positive_energies(s: Spectrum, label: str, notes: list) -> Spectrum:
    """``s`` without its rows at negative energies (the energy-gain side of a measurement), said in a note."""
    n = s.meta.get("negative_energy_rows")
    if not n:
        return s
    kept = s.edges_mev[s.edges_mev > 0]
    if kept.size < 2:
        raise DefectnetError(f"{label}: every row is at a negative energy; expected phonon energies ≥ 0")
    notes.append(f"{label}: {n} rows at negative energies (down to {s.edges_mev[0]:.3g} meV) dropped")
    return s.resample(np.concatenate([[0.0], kept]))


def _physical_unit(s: Spectrum, label: str, config: PredictConfig, reference: Spectrum, what: str, host: str,
                   notes: list) -> Spectrum:
    """``s`` in the energy unit :func:`defectnet.checks.choose_unit` picks from what is stated and the
    host's band edge (``reference``'s); a note says why when it was not stated, or stated differently."""
    from defectnet.units import ENERGY_UNIT_TO_MEV

    window = DOPED_EDGE_WINDOW if what == "doped" else PRISTINE_EDGE_WINDOW
    read = s.meta["unit"]
    unit, note = choose_unit(band_edge(s) * (config.energy_scale or 1.0), read, s.meta.get("unit_sources") or {},
                             band_edge(reference), window=window, label=label, host=host, cut=is_cut(s))
    if note:
        notes.append(note)
    if unit == read:
        return s
    r = ENERGY_UNIT_TO_MEV[unit] / ENERGY_UNIT_TO_MEV[read]
    return Spectrum(s.edges_mev * r, s.values / r, {el: v / r for el, v in s.partials.items()}, kind=s.kind,
                    meta=dict(s.meta, unit=unit))


def fit_energy_scale(measured: Spectrum, reference: Spectrum, *, bounds=(0.7, 1.4), step: float = 0.001):
    """The factor s that best puts ``measured`` energies onto ``reference``'s scale.

    Minimises the Wasserstein-1 distance between ``measured`` with energies × s and
    ``reference`` (both unit area, on the reference's edges) over a grid of s in ``bounds``
    (:func:`defectnet.checks.scaled_distance`). W1 compares whole spectra, so broadening
    differences barely move the optimum.

    Returns
    -------
    (scale, w1_before_mev, w1_after_mev)
    """
    fit = scaled_distance(measured, reference, bounds=bounds, step=step)
    if fit["at_bound"]:
        raise DefectnetError(f"the energy scale fit ran into its bound {fit['scale']:g}; the measured and computed "
                             "spectra may not be of the same host — pass --energy-scale explicitly")
    return fit["scale"], fit["w1_unscaled_mev"], fit["w1_mev"]


def _common_range(p: Spectrum, d: Spectrum, grid, notes: list) -> tuple[Spectrum, Spectrum]:
    """Both spectra on ``grid``, zero outside the range both cover, unit area.

    The range must reach past ``COVERAGE`` of each spectrum's area, or the comparison
    would be made on part of the host's spectrum only.
    """
    lo = max(p.edges_mev[0], d.edges_mev[0])
    hi = min(p.edges_mev[-1], d.edges_mev[-1])
    for s, other, name in ((p, d, "pristine"), (d, p, "doped")):
        need = extent_mev(s, COVERAGE)
        if other.edges_mev[-1] < need:
            src = other.meta.get("source", "the other spectrum")
            raise DefectnetError(f"{src} stops at {other.edges_mev[-1]:.1f} meV but the {name} spectrum extends to "
                                 f"{need:.1f} meV; expected both to cover the host's whole phonon spectrum")
    if hi > grid.edges[-1]:
        lost = [s for s in (p, d) if extent_mev(s, COVERAGE) > grid.edges[-1]]
        if lost:
            raise DefectnetError(f"{lost[0].meta.get('source', 'a spectrum')} extends past {grid.edges[-1]:.0f} meV, "
                                 "the end of the model's grid")
    from defectnet.io import onto_grid

    out = []
    centres = grid.centers
    keep = (centres >= lo) & (centres <= hi)
    for s in (p, d):
        v = onto_grid(s, grid).values  # a coarser file interpolated, not stepped (defectnet.io.onto_grid)
        v = np.where(keep, np.clip(v, 0.0, None), 0.0)
        area = float(np.sum(v * grid.widths))
        out.append(Spectrum.on_grid(grid, v / area, kind=s.kind, meta={"source": s.meta.get("source")}))
    if lo > grid.edges[0] + 0.5:
        notes.append(f"both spectra set to zero below {lo:.1f} meV, where one of them has no data")
    return out[0], out[1]


def _broadening_text(config: PredictConfig, model) -> str:
    if config.resolution:
        return f"resolution {config.resolution}"
    if config.fwhm_mev is not None:
        return f"FWHM {config.fwhm_mev:g} meV"
    return f"training broadening {_training_broadening(model)}"


def _training_broadening(model) -> dict:
    b = (model.meta.get("data") or {}).get("broadening") or {}
    if isinstance(b, str):
        b = json.loads(b) if b else {}
    return b or {"fwhm_mev": 1.0}


def cache_dir() -> Path | None:
    """Where computed pristine spectra are cached: ``$DEFECTNET_CACHE`` or ``~/.cache/defectnet``;
    None when ``DEFECTNET_CACHE=off`` (then they are kept for the running process only)."""
    from defectnet.phonons import cache

    return cache.cache_dir()


#: Computed pristine spectra of this process, by their cache key, while the disk cache is off.
_COMPUTED: dict[str, Spectrum] = {}


def _computed_pristine(atoms, name: str, config: PredictConfig, model, grid, *, progress: bool) -> Spectrum:
    """The host's q-mesh PDoS from the MLIP on ``grid``, with partials; cached on disk by structure and settings."""
    from defectnet.phonons.host import HostSettings, compute_pristine

    b = _training_broadening(model)
    resolution = config.resolution or (None if config.fwhm_mev is not None else b.get("resolution"))
    fwhm = config.fwhm_mev if config.fwhm_mev is not None else b.get("fwhm_mev") or 1.0
    settings = HostSettings(potential=config.potential)
    key = hashlib.sha256(json.dumps({
        "numbers": atoms.numbers.tolist(), "cell": np.round(atoms.cell.array, 6).tolist(),
        "positions": np.round(atoms.get_scaled_positions(), 6).tolist(), "settings": repr(settings),
        "grid": grid.grid_id, "resolution": resolution, "fwhm": fwhm}, sort_keys=True).encode()).hexdigest()[:20]
    root = cache_dir()
    if root is None and key in _COMPUTED:
        return _COMPUTED[key]
    path = root / "pristine" / f"{key}.json" if root is not None else None
    if path is not None and path.is_file():
        try:
            return Spectrum.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, DefectnetError):
            pass  # a torn or unreadable cache file: recompute
    ph = compute_pristine(atoms, settings, grid=grid, resolution=resolution, fwhm_mev=fwhm, progress=progress)
    s = Spectrum(ph.spectrum.edges_mev, ph.spectrum.values, ph.spectrum.partials, kind="total",
                 meta={"source": f"{name} computed with {config.potential}"})
    if path is None:
        return _COMPUTED.setdefault(key, s)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(s.to_dict()))
        tmp.replace(path)  # atomic: a crash never leaves a half-written cache entry
    except OSError as exc:  # the answer does not need the cache: say so (a note) and go on
        warnings.warn(f"the computed pristine spectrum was not cached in {path.parent} ({exc.strerror or exc}); "
                      "set DEFECTNET_CACHE to a writable directory to keep it", stacklevel=2)
    return s


def _candidates(atoms, name: str, config: PredictConfig, vocabulary) -> dict[str, str]:
    """{element: source}: the user's candidates, then the recommender's (``user``, ``recommender``, ``both``)."""
    if not config.candidates and not config.n_recommend:
        raise DefectnetError("no candidates: give candidate dopants (e.g. Si,Zn) and/or ask the recommender")
    host_els = set(atoms.get_chemical_symbols())
    out = {el: "user" for el in model_candidates(config.candidates, dict.fromkeys(host_els), name)}
    outside = [el for el in out if el not in vocabulary]
    if outside:
        raise DefectnetError(f"candidates {outside} are not in the model's dopant vocabulary")
    if config.n_recommend:
        from defectnet.recommend import DopantRecommender

        rec = DopantRecommender(n_max=4 * config.n_recommend,
                                vocabulary=[e for e in DOPANTS if e in vocabulary]).fit()
        added = 0
        for r in rec.recommend(atoms):
            if r.dopant in host_els:
                continue
            if r.dopant in out:
                out[r.dopant] = "both" if out[r.dopant] == "user" else out[r.dopant]
                continue
            if added < config.n_recommend:
                out[r.dopant], added = "recommender", added + 1
    return out


def _truth(truth) -> dict | None:
    """Known concentrations from a dict or a ``defectnet simulate`` meta.json / plain JSON file."""
    if truth is None:
        return None
    if isinstance(truth, dict):
        return {str(k): float(v) for k, v in truth.items()}
    p = Path(truth)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DefectnetError(f"cannot read the true concentrations: {exc}; expected a JSON file", source=str(p)) from None
    d = d.get("concentrations", d) if isinstance(d, dict) else d
    # JSON true/false are Python bools, which are ints: not an atomic fraction
    if not isinstance(d, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d.values()):
        raise DefectnetError("expected {element: atomic fraction} or a defectnet simulate meta.json", source=str(p))
    return {str(k): float(v) for k, v in d.items()}
