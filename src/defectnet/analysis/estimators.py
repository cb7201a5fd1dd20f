"""Estimators: who reads the aligned spectra as concentrations of candidate dopants.

Every estimator answers the one :class:`Estimator` protocol, ``estimate(spectra, candidates) ->
DopantEstimate``, and is found by name in :data:`ESTIMATORS` (:func:`make_estimator`):

``network``
    The plain network (:meth:`~defectnet.model.network.SpectralModel.predict`), its ±1σ
    calibrated for seen or unseen hosts.
``conditioned``
    The conditioned network, which reads each candidate through its simulated signature in a
    basis (:func:`~defectnet.model.conditioned_train.predict_with_basis`).
``unmix``
    Non-negative unmixing of Δ = doped − pristine against a basis (:func:`~defectnet.unmix.unmix`).
``refine``
    The unmixing corrected by syntheses of the mix (:func:`~defectnet.synthesis.refine`).
``merge``
    An unmixing (or refinement) merged with the plain network's answer on its training hosts
    (:func:`~defectnet.unmix.combine`); elsewhere the unmixing alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from defectnet.analysis.result import Message
from defectnet.analysis.spectra import AlignedSpectra
from defectnet.checks import unexplained_warning
from defectnet.errors import DefectnetError
from defectnet.signatures import basis_kind


@dataclass(frozen=True)
class CandidateEstimate:
    """One candidate's answer: ``concentration`` (atomic fraction of the crystal), ``uncertainty`` (1σ, atomic
    fraction) and ``presence`` (probability that it is there at or above the detection threshold)."""

    concentration: float
    uncertainty: float
    presence: float


@dataclass(frozen=True)
class DopantEstimate:
    """What an :class:`Estimator` returns.

    Attributes
    ----------
    estimator : str
        Its name in :data:`ESTIMATORS`.
    candidates : dict
        {element: :class:`CandidateEstimate`}, in the order the candidates were asked.
    model : dict
        Who answered (path, arch, method, code version, basis …): ``Prediction.model``.
    messages : tuple of Message
        Notes and warnings on the answer (its ±1σ calibration, what the fit leaves unexplained …).
    fit : dict or None
        The unmixing's fit of Δ (``residual_fraction``, ``residual_range_mev``, ``modes``,
        ``unstable`` …, :func:`~defectnet.unmix.unmix`); None for the networks.
    parts : dict or None
        With a basis, Δ as the basis reads the answer (:func:`fitted_parts`): ``reading`` and
        ``contributions`` {element: list (B,) per meV}, each candidate's Δ_k at its concentration;
        None without a basis.
    """

    estimator: str
    candidates: dict
    model: dict = field(default_factory=dict)
    messages: tuple = ()
    fit: dict | None = None
    parts: dict | None = None

    @classmethod
    def of(cls, estimator: str, results: dict, candidates: Sequence[str], model: dict, messages=(),
           fit: dict | None = None, parts: dict | None = None) -> "DopantEstimate":
        """From ``{element: {"concentration", "uncertainty", "presence"}}`` (what the networks and
        :func:`~defectnet.unmix.unmix` return), for ``candidates`` in their order."""
        return cls(estimator, {el: CandidateEstimate(float(results[el]["concentration"]),
                                                     float(results[el]["uncertainty"]),
                                                     float(results[el]["presence"])) for el in candidates},
                   model, tuple(messages), fit, parts)

    def as_dicts(self) -> dict:
        """{element: {"concentration", "uncertainty", "presence"}}: the layout :func:`~defectnet.unmix.combine` reads."""
        return {el: {"concentration": c.concentration, "uncertainty": c.uncertainty, "presence": c.presence}
                for el, c in self.candidates.items()}


@runtime_checkable
class Estimator(Protocol):
    """Reads a doped spectrum against its pristine as concentrations of candidates."""

    name: ClassVar[str]

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The answer for ``candidates`` (element symbols) from ``spectra`` (on the estimator's grid)."""
        ...


# ----------------------------------------------------------------------------- the networks
def loaded(model) -> tuple:
    """(the model, what to call it in the output): a model object, a checkpoint path, or None (shipped)."""
    from defectnet.model.checkpoint import load_model

    if hasattr(model, "predict"):
        return model, str(model.meta.get("path") or "shipped")
    return load_model(model), str(model) if model else "shipped"


def label_of(model) -> str:
    """What a model given by the user is called in the output: its path, or ``the model given``."""
    return str(model.meta.get("path") or "the model given")


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


def calibration_note(model, name: str, seen: bool | None) -> str:
    """Which ±1σ calibration of ``model`` applies to host ``name`` (``seen``: :func:`host_in_training`)."""
    if seen:
        return f"{name} is a training host: ±1σ calibrated on unseen configurations of training hosts"
    unseen = getattr(model, "sigma_scale_unseen", None)
    what = "was not a training host" if seen is False else "may not be a training host (the model does not list them)"
    if seen is False and unseen is not None and np.isfinite(unseen):
        return f"{name} {what}: ±1σ calibrated on hosts held out of training"
    return f"{name} {what}: ±1σ is calibrated on training hosts only and is likely too small"


def headline(metrics: dict) -> dict:
    """The test metrics of a model's card worth showing beside an answer."""
    out = {}
    for part in ("test_ood", "test_id"):
        m = metrics.get(part)
        if isinstance(m, dict):
            out[part] = {k: m[k] for k in ("mae_at_pct", "r2", "f1", "distractor_mean_at_pct") if k in m}
    return out


#: Without a basis, a total dopant fraction (atomic fraction) at or above this is given with a doubt: nothing
#: checks that a spectrum changed this much is a doping of this host rather than a rescaled energy axis or
#: another material's file, which the plain network reads as 11–24 at.% of light dopants
#: (``benchmarks/hostile.py``); its own error on training hosts is ~2 at.% per candidate there (docs/predict-checks.md).
UNCHECKED_TOTAL = 0.10


def unchecked_network(model, name: str, seen: bool | None, total: float) -> list[Message]:
    """The plain network's doubts about its own answer, which no basis checks.

    Parameters
    ----------
    model : SpectralModel
    name : str
        The host.
    seen : bool or None
        Whether ``name`` was a training host (:func:`host_in_training`).
    total : float
        The answer's total dopant fraction (atomic fraction).

    Returns
    -------
    list of Message
        A ``host-not-trained`` warning for a host the model did not train on (its error there is
        about that of answering 0: model card), and an ``unchecked-total`` warning when ``total`` ≥
        :data:`UNCHECKED_TOTAL`.
    """
    out = []
    if seen is False:
        mae = ((model.meta.get("metrics") or {}).get("test_ood") or {}).get("mae_at_pct")
        out.append(Message.warning("host-not-trained", (
            f"{name} was not a training host: without a basis the plain network's error on such hosts "
            + (f"(MAE {mae:.2f} at.% on its never-seen test hosts) " if mae is not None else "")
            + "is about that of answering 0 for every candidate")))
    if total >= UNCHECKED_TOTAL:
        out.append(Message.warning("unchecked-total", (
            f"a total of {100 * total:.1f} at.% read without a basis: nothing checks that a change this large "
            "is a doping of this host, not a rescaled energy axis or another material's spectrum")))
    return out


@dataclass(frozen=True)
class NetworkEstimator:
    """The plain network.

    Parameters
    ----------
    model : SpectralModel, str, Path or None
        A trained model, a checkpoint path, or None for the shipped one.
    label : str, optional
        What the output calls it (default: its path, or ``shipped``).
    """

    model: object = None
    label: str | None = None
    name: ClassVar[str] = "network"

    def __post_init__(self):
        model, label = loaded(self.model)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "label", self.label or label)

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The network's answer, its ±1σ calibrated for a seen or unseen host (said in a note)."""
        from defectnet.model.network import host_calibration

        model, name = self.model, spectra.host
        seen = host_in_training(model, name, spectra.composition)
        messages = [Message.note("calibration", calibration_note(model, name, seen))]
        if seen is not True and (note := family_note(model, name)):
            messages.append(Message.note("family", note))
        messages += unweighted_notes(spectra, "the network", "--basis with --method unmix")
        res = host_calibration(model, seen=seen is not False).predict(
            spectra.pristine.values, spectra.doped.values, spectra.composition, list(candidates))
        doubts = unchecked_network(model, name, seen, sum(res[el]["concentration"] for el in candidates))
        messages += doubts
        if seen is not True or doubts:  # the way out
            messages.append(Message.note(
                "basis-suggested", f"`defectnet basis {name} --candidates {','.join(candidates)} --out basis.npz` "
                "then `predict --basis basis.npz` reads the spectra through this host's own simulated signatures "
                "and checks the answer against them (README, analysis by synthesis)"))
        info = {"path": self.label, "arch": model.config.arch, "spectrum_mode": model.meta.get("spectrum_mode", "total"),
                "code_version": model.meta.get("code_version"), "host_in_training": seen,
                "trained_on": (model.meta.get("data") or {}).get("path"),
                "test_metrics": headline(model.meta.get("metrics") or {})}
        return DopantEstimate.of(self.name, res, candidates, info, messages)


@dataclass(frozen=True)
class ConditionedEstimator:
    """The conditioned network, each candidate read through its signature in ``basis``.

    Parameters
    ----------
    basis : SignatureBasis
    model : ConditionedNet or None
        None: the shipped conditioned model.
    source : str, optional
        The basis' file (None: given as an object), for the output.
    """

    basis: object
    model: object = None
    source: str | None = None
    name: ClassVar[str] = "conditioned"

    def __post_init__(self):
        if self.model is None:
            from defectnet.model.checkpoint import load_model

            model = load_model(arch="conditioned")
            model.meta["path"] = "shipped"
            object.__setattr__(self, "model", model)

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The network's answer for the candidates with a stable position in the basis (the rest: absent,
        said in a note), and a warning when their signatures leave Δ unexplained."""
        from defectnet.model.conditioned_train import predict_with_basis
        from defectnet.model.network import host_calibration

        model, basis = self.model, self.basis
        seen = host_in_training(model, spectra.host, spectra.composition)
        messages = [Message.note("calibration", calibration_note(model, spectra.host, seen)),
                    *unweighted_notes(spectra, "the conditioned network", "--method unmix")]
        read = [c for c in candidates if c not in basis.failed]
        res = {}
        if read:
            res = predict_with_basis(host_calibration(model, seen=seen is not False), spectra.pristine.values,
                                     spectra.doped.values, spectra.composition, read, basis)
            # what the candidates' signatures cannot explain, whoever answers: the basis' best fit of them
            if warning := unexplained_warning(unmixed(spectra, basis, read, weighted=False).fit,
                                              noise_share=spectra.noise_share):
                messages.append(Message.warning("unexplained", warning))
        if unstable := [c for c in candidates if c in basis.failed]:
            messages.append(Message.note("unstable", "no stable position in the basis' simulations, reported absent: "
                                         + "; ".join(basis.failed[c] for c in unstable)))
            res |= {c: {"concentration": 0.0, "uncertainty": 0.0, "presence": 0.0} for c in unstable}
        info = {"path": label_of(model), "arch": "conditioned", "method": "conditioned",
                "spectrum_mode": model.meta.get("spectrum_mode", "gpdos"), "code_version": model.meta.get("code_version"),
                "host_in_training": seen, "basis_host": basis.host, "basis_file": self.source or "in memory",
                "basis": basis.config, "trained_on": (model.meta.get("data") or {}).get("source"),
                "test_metrics": headline(model.meta.get("metrics") or {})}
        return DopantEstimate.of(self.name, res, candidates, info, messages,
                                 parts=fitted_parts(basis, spectra.kind, res, {"model": "curve"}))


# ----------------------------------------------------------------------------- the unmixing
def delta_errors(spectra: AlignedSpectra):
    """The 1σ of Δ = doped − pristine per bin, √(σ_doped² + σ_pristine²) (B,), or None when the files gave none."""
    p, d = spectra.pristine.errors, spectra.doped.errors
    return None if p is None or d is None else np.sqrt(p ** 2 + d ** 2)


def unweighted_notes(spectra: AlignedSpectra, who: str, instead: str) -> list[Message]:
    """A note that ``who`` reads the spectra unweighted, when they carry errors it therefore does not use."""
    if delta_errors(spectra) is None:
        return []
    return [Message.note("errors-unused", f"{who} reads the spectra unweighted: the files' 1σ errors are not used "
                                          f"and its ±1σ does not reflect them ({instead} weighs the fit by them)")]


def unmixed(spectra: AlignedSpectra, basis, candidates: Sequence[str], *, stretch: float = 0.0,
            weighted: bool = True):
    """:func:`~defectnet.unmix.unmix` of the spectra (an :class:`~defectnet.unmix.UnmixResult`), each bin
    weighted by 1/σ of Δ when the spectra carry errors and ``weighted``."""
    from defectnet.unmix import unmix

    out = unmix(spectra.pristine.values, spectra.doped.values, basis, kind=basis_kind(spectra.kind),
                candidates=list(candidates), stretch=stretch, errors=delta_errors(spectra) if weighted else None)
    return out


def fitted_parts(basis, kind: str, results: dict, fit: dict) -> dict:
    """Δ as the basis reads an answer: ``reading`` (``fit["model"]``: curve, total, linear; any other, such
    as a refinement's, read as curve) and ``contributions`` {element: list (B,), per meV}, each candidate's
    Δ_k at its concentration in ``results`` (local modes moved as ``fit["modes"]`` fitted them)."""
    from defectnet.unmix import contributions

    reading = fit.get("model") if fit.get("model") in ("curve", "total", "linear") else "curve"
    conc = {el: r["concentration"] for el, r in results.items() if el in basis.elements}
    scales = {el: m["scale"] for el, m in (fit.get("modes") or {}).items()}
    parts = contributions(basis, conc, kind=basis_kind(kind), reading=reading, scales=scales)
    return {"reading": reading, "contributions": {el: v.tolist() for el, v in parts.items()}}


def weights_note(fit: dict) -> list[Message]:
    """How the unmixing's ±1σ was made when the files' errors weighted it (nothing otherwise): the χ²/dof and,
    when it shows more than counting noise, how much ±1σ was widened (:func:`~defectnet.unmix.error_inflation`)."""
    if fit.get("weights") != "errors":
        return []
    chi2, factor = fit["chi2_reduced"], fit.get("sigma_inflation", 1.0)
    text = ("each bin weighted by 1/σ of Δ (σ² = σ_doped² + σ_pristine², the files' errors carried onto the grid); "
            f"±1σ is the least-squares covariance with these errors (χ²/dof = {chi2:.2f} where Δ has signal)")
    if factor > 1.0:
        text += (f", widened ×{factor:.2f}: χ²/dof above what counting noise gives is the basis' own error "
                 "(placement, mixing, potential), counted as the residual without errors counts it")
    else:
        text += ": Δ is explained within the errors, counting noise only"
    return [Message.note("errors-weighted", text)]


def unmixing_estimate(name: str, results, spectra: AlignedSpectra, basis, candidates, source: str | None, *,
                      what: str, messages=()) -> DopantEstimate:
    """An unmixing's (or refinement's) :class:`DopantEstimate` from its :class:`~defectnet.unmix.UnmixResult`:
    its fitted local modes, unstable candidates and the share of Δ it explains, in notes; a warning when it
    leaves too much unexplained."""
    fit = results.fit
    messages = list(messages)
    messages += [Message.note("local-mode", f"{el}: local mode found at {m['fitted_mev']:.1f} meV, the basis had "
                                            f"{m['basis_mev']:.1f} meV (×{m['scale']:.2f})")
                 for el, m in fit.get("modes", {}).items() if m["basis_mev"] is not None]
    if fit["unstable"]:
        messages.append(Message.note("unstable", "no stable position in the basis' simulations, reported absent: "
                                     + "; ".join(fit["unstable"].values())))
    messages.append(Message.note("explained", f"{what} explains {100 * (1 - fit['residual_fraction'] ** 2):.0f} % "
                                              "of the signature's variance"))
    messages += weights_note(fit)
    if warning := unexplained_warning(fit, noise_share=spectra.noise_share):
        messages.append(Message.warning("unexplained", warning))
    info = {"path": source or "in memory", "arch": "unmix", "method": "unmix", "spectrum_mode": spectra.kind,
            "basis_host": basis.host, "basis": basis.config, "residual_fraction": fit["residual_fraction"],
            "modes": fit.get("modes", {})}
    if fit.get("weights") == "errors":
        info |= {"chi2_reduced": fit["chi2_reduced"], "sigma_inflation": fit["sigma_inflation"]}
    return DopantEstimate.of(name, results, candidates, info, messages, fit,
                             fitted_parts(basis, spectra.kind, results, fit))


@dataclass(frozen=True)
class UnmixEstimator:
    """Unmixing of Δ against a basis' signatures.

    Parameters
    ----------
    basis : SignatureBasis
    stretch : float
        Each candidate's local modes may sit at energies scaled by up to ±``stretch`` (fraction).
    source : str, optional
        The basis' file (None: given as an object), for the output.
    """

    basis: object
    stretch: float = 0.0
    source: str | None = None
    name: ClassVar[str] = "unmix"

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The unmixed concentrations of ``candidates``."""
        return unmixing_estimate(self.name, unmixed(spectra, self.basis, candidates, stretch=self.stretch), spectra,
                                 self.basis, candidates, self.source, what="the basis")


@dataclass(frozen=True)
class RefineEstimator(UnmixEstimator):
    """An answer corrected by ``iterations`` syntheses of the mix (~1–4 s each; the syntheses place the
    local modes, so ``stretch`` is not used), each bin weighted by 1/σ of Δ when the spectra carry errors.

    Started from the unmixing, or from ``start``'s answer (the conditioned network's) when its
    synthesis is closer (:func:`~defectnet.synthesis.refine`).

    Parameters
    ----------
    iterations : int
        Syntheses after the start (0 = the start's concentrations); the rest as :class:`UnmixEstimator`.
    start : Estimator, optional
        Whose answer is the other start.
    from_total : float
        Refine only when ``start``'s total is at least this (atomic fraction); below it ``start``'s
        answer is returned as it is, with a note (dilute mixes are as the basis adds them).
    hold_absent : bool
        Hold the candidates ``start`` finds absent (presence < 0.5) at 0: the refinement only
        corrects the amounts of those it found.
    """

    iterations: int = 1
    start: object = None
    from_total: float = 0.0
    hold_absent: bool = False
    name: ClassVar[str] = "refine"

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The refined concentrations of ``candidates``, with the start and the synthesis kept said in a note."""
        from defectnet.synthesis import Synthesizer, refine

        first = self.start.estimate(spectra, candidates) if self.start is not None else None
        total = 0.0 if first is None else sum(c.concentration for c in first.candidates.values())
        if first is not None and total < self.from_total:
            return replace(first, messages=first.messages + (Message.note(
                "not-refined", f"not refined by synthesis: a total of {100 * total:.1f} at.% is below "
                               f"{100 * self.from_total:.0f} at.%, where the basis' curves add up (--refine N refines)"),))
        basis = self.basis
        absent = [el for el, c in first.candidates.items() if c.presence < 0.5] \
            if first is not None and self.hold_absent else []
        out = refine(spectra.pristine.values, spectra.doped.values, basis, Synthesizer.from_basis(basis),
                     kind=basis_kind(spectra.kind), candidates=list(candidates), iterations=self.iterations,
                     errors=delta_errors(spectra),
                     start=None if first is None else {el: c.concentration for el, c in first.candidates.items()},
                     absent=absent)
        began = "the unmixing's answer" if out.fit["started_from"] == "unmixing" else \
            f"the {first.estimator} network's answer (its synthesis was closer than the unmixing's)"
        refined = Message.note("refined", f"refined by synthesising the mix {self.iterations} times from {began}; "
                                          f"kept synthesis {out.fit['iteration']} (0 = the start)"
                                          + (f"; held at 0: {', '.join(absent)}, found absent" if absent else ""))
        est = unmixing_estimate(self.name, out, spectra, basis, candidates, self.source, what="the synthesis",
                                messages=[refined])
        if first is None:
            return est
        return replace(est, model={**first.model, "method": f"{first.estimator}+refine",
                                   "residual_fraction": est.model["residual_fraction"]})


@dataclass(frozen=True)
class MergeEstimator:
    """An unmixing merged with the plain network's answer where the network knows the host.

    Merged (1/σ² weights, :func:`~defectnet.unmix.combine`) only on a training host of the
    network: elsewhere its error is not in its σ and merging would be worse than the unmixing.

    Parameters
    ----------
    inner : UnmixEstimator or RefineEstimator
    network : NetworkEstimator, SpectralModel, str, Path or None
        The plain network: as an estimator, a model, a checkpoint path, or None for the shipped one.
    """

    inner: object
    network: object = None
    name: ClassVar[str] = "merge"

    def __post_init__(self):
        if not isinstance(self.network, NetworkEstimator):
            object.__setattr__(self, "network", NetworkEstimator(self.network))

    def estimate(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> DopantEstimate:
        """The inner estimate, merged with the network's when it can be (a note says which)."""
        from defectnet.model.network import host_calibration
        from defectnet.unmix import combine

        est = self.inner.estimate(spectra, candidates)
        model, name = self.network.model, spectra.host
        alone = replace(est, estimator=self.name, model={**est.model, "method": "merge"})
        if host_in_training(model, name, spectra.composition) is not True:
            return alone  # the model's error on a host it never saw is not in its σ: merging would be worse
        if why := self._cannot(spectra, candidates):
            note = f"{name} is a training host of the model, but {why}: the unmixing alone is reported"
            return replace(alone, messages=alone.messages + (Message.note("not-merged", note),))
        res = host_calibration(model, seen=True).predict(spectra.pristine.values, spectra.doped.values,
                                                         spectra.composition, list(candidates))
        note = Message.note("merged", f"{name} is a training host of the model: its answer and the unmixing's are "
                                      "merged (1/σ² weights; --method unmix for the unmixing alone)")
        info = alone.model | {"arch": f"unmix+{model.config.arch}", "model": self.network.label,
                              "code_version": model.meta.get("code_version")}
        merged = combine(res, est.as_dicts())
        return DopantEstimate.of(self.name, merged, candidates, info, alone.messages + (note,), est.fit,
                                 fitted_parts(self.inner.basis, spectra.kind, merged, est.fit))

    def _cannot(self, spectra: AlignedSpectra, candidates: Sequence[str]) -> str | None:
        """Why the network cannot answer what the unmixing did (None when it can)."""
        model, composition = self.network.model, spectra.composition
        grid_id = self.inner.basis.grid.grid_id
        return ("it gives no uncertainty to weigh its answer by" if model.config.arch == "paper" else
                "it reads other spectra" if model.meta.get("spectrum_mode", "total") != spectra.kind else
                "it is on another energy grid" if model.meta.get("grid_id") not in (None, grid_id) else
                "a candidate is outside its vocabulary" if any(c not in model.vocabulary for c in candidates) else
                "a candidate is a host element (an antisite), which it cannot tell from the host's own atoms"
                if any(c in composition for c in candidates) else
                "a host element is unknown to it" if any(e not in model.host_elements for e in composition) else None)


#: Estimators by name (:func:`make_estimator`); a new one plugs in as one more entry.
ESTIMATORS: dict[str, type] = {cls.name: cls for cls in (NetworkEstimator, ConditionedEstimator, UnmixEstimator,
                                                          RefineEstimator, MergeEstimator)}


def make_estimator(name: str, **kw) -> Estimator:
    """The estimator registered as ``name`` in :data:`ESTIMATORS`, made with ``kw``; an unknown name is a
    one-line :class:`DefectnetError`."""
    if name not in ESTIMATORS:
        raise DefectnetError(f"unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](**kw)
