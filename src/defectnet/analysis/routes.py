"""Routes: what a prediction reads the spectra with, decided before they are read.

A route turns (host, config, model, basis) into a :class:`Plan`: the estimator that answers, the
:class:`~defectnet.analysis.spectra.Frame` the spectra are aligned to (grid, kind, the host's
simulated pristine), the candidates and the notes that go before and after the answer. Without a
basis the plain network answers (:func:`network_plan`); with one, ``config.method`` or
:func:`choose_method` names a route in :data:`ROUTES`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from defectnet.analysis.config import AUTO, AUTO_REFINE, PredictConfig
from defectnet.analysis.estimators import (ConditionedEstimator, Estimator, MergeEstimator, NetworkEstimator,
                                           RefineEstimator, UnmixEstimator, label_of, loaded)
from defectnet.analysis.reference import broadening_text, computed_pristine, model_grid, resolve_host
from defectnet.analysis.result import Message
from defectnet.analysis.spectra import Frame
from defectnet.checks import basis_candidates, check_in_basis, model_candidates
from defectnet.elements import DOPANTS
from defectnet.errors import DefectnetError
from defectnet.signatures import basis_kind
from defectnet.spectrum import Spectrum


@dataclass(frozen=True)
class Plan:
    """How one prediction is made.

    Attributes
    ----------
    estimator : Estimator
        Who answers.
    frame : Frame
        What the spectra are read against and aligned to.
    candidates : dict
        {element: source}, source ``user``, ``recommender``, ``both`` or ``basis``; the order the
        estimator is asked in.
    before, after : tuple of Message
        Notes (and warnings) that go before the ones of reading the spectra (who answers, where the
        pristine comes from) and after the estimator's (what the basis cannot tell apart …).
    """

    estimator: Estimator
    frame: Frame
    candidates: dict
    before: tuple = ()
    after: tuple = ()


def plan_prediction(host, config: PredictConfig, *, model=None, basis=None, pristine_given: bool,
                    progress: bool = False) -> Plan:
    """The :class:`Plan` of :func:`defectnet.predict.predict_defects`: the plain network without a basis,
    else the route of the method that reads it (measured local modes moved into it first)."""
    if basis is None:
        if config.modes_mev:
            raise DefectnetError("measured local modes (--lvm) move signatures in a basis: they need a basis (--basis)")
        if config.method:
            raise DefectnetError(f"method {config.method!r} (--method, --basis-only) chooses how a basis is read: "
                                 "it needs a basis (--basis)")
        return network_plan(host, config, model, pristine_given=pristine_given, progress=progress)
    basis, source = read_basis(basis)
    moved = []
    if config.modes_mev:
        from defectnet.unmix import calibrated

        basis, moved = calibrated(basis, config.modes_mev)
    method, model, chosen = choose_method(config, model, basis, source or f"the basis of {basis.host}")
    plan = ROUTES[method](host, config, basis, source, model, pristine_given=pristine_given)
    first = (Message.note("method-chosen", chosen),) if chosen else ()
    return replace(plan, before=first + plan.before,
                   after=plan.after + tuple(Message.note("modes-moved", m) for m in moved))


def read_basis(basis) -> tuple:
    """(the basis, its file or None when given as an object)."""
    from defectnet.unmix import SignatureBasis

    if isinstance(basis, SignatureBasis):
        return basis, None
    return SignatureBasis.load(basis), str(basis)


# ----------------------------------------------------------------------------- the plain network
def network_plan(host, config: PredictConfig, model, *, pristine_given: bool, progress: bool) -> Plan:
    """The plain network's plan: its grid and kind, the host's MLIP pristine as the reference (computed,
    cached), candidates from the user and the recommender."""
    if config.refine:
        raise DefectnetError("refine corrects an answer by synthesising the mix from a basis: it needs a basis (--basis)")
    estimator = NetworkEstimator(model)
    model = estimator.model
    if model.config.arch == "conditioned":
        raise DefectnetError(f"{estimator.label} is a conditioned model: it reads each candidate through its "
                             "signature in the host, so it needs a basis (defectnet basis HOST --candidates ... "
                             "--out basis.npz, then --basis basis.npz)")
    grid = model_grid(model)
    mode = model.meta.get("spectrum_mode", "total")
    kind = config.kind or mode
    if kind != mode:
        raise DefectnetError(f"the model reads {mode} spectra but the input is {kind}; expected --kind {mode}, or a "
                             f"model trained on {kind} (defectnet train ... --set spectrum_mode={kind})")
    atoms, name, composition = resolve_host(host)
    unknown = [e for e in composition if e not in model.host_elements]
    if unknown:
        raise DefectnetError(f"host {name} contains {unknown}, which the model does not know as host elements")
    candidates = network_candidates(atoms, name, config, model.vocabulary)
    after = ()
    try:
        reference = computed_pristine(atoms, name, config, model, grid, progress=progress)
    except DefectnetError as exc:
        if not pristine_given:
            raise
        reference = None  # a measured pristine is still read, unchecked against the host
        after = (Message.warning("reference-unavailable",
                                 f"not checked against the host's simulated spectrum: {exc}"),)
    else:
        reference = reference.neutron_weighted(composition) if kind == "gpdos" else reference
    before = () if pristine_given else (Message.note(
        "pristine-computed", f"pristine spectrum computed with {config.potential} (q-mesh, "
                             f"{broadening_text(config, model)})"),)
    frame = Frame(name, composition, kind, grid, reference, f"the {config.potential}")
    return Plan(estimator, frame, candidates, before, after)


def network_candidates(atoms, name: str, config: PredictConfig, vocabulary) -> dict[str, str]:
    """{element: source}: the user's candidates, then the recommender's (``user``, ``recommender``, ``both``)."""
    if not config.candidates and not config.n_recommend:
        raise DefectnetError("no candidates: give candidate dopants (e.g. Si,Zn) and/or ask the recommender")
    if config.candidates == AUTO:
        raise DefectnetError("--candidates auto reads every candidate of a basis: make one of the host's possible "
                             f"dopants (defectnet basis {name} --candidates auto --out basis.npz) and pass --basis; "
                             "without one, --recommend N adds the recommender's N best for the network")
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


# ----------------------------------------------------------------------------- with a basis
def choose_method(config: PredictConfig, model, basis, source: str) -> tuple[str, object, str | None]:
    """(the method that reads ``basis``, the model it needs: loaded, or None for a shipped one, and a
    note when the method was chosen for the user).

    ``config.method`` when it names one. Else ``conditioned`` when the model given is a
    conditioned one, or none is given and the shipped conditioned model can read this basis;
    ``merge`` (what ``--basis`` did before there was a conditioned model) when the model given
    is a plain one, none is shipped, --stretch (an unmixing option) is asked for, or the
    shipped conditioned model cannot read the basis; the last two are said in the note."""
    from defectnet.model.checkpoint import pretrained_path

    method, note = config.method, None
    if model is not None and not hasattr(model, "predict"):
        if method == "unmix":  # the unmixing reads no model
            model = None
        else:
            model, label = loaded(model)
            model.meta["path"] = label  # named so in the notes and the output
    arch = model.config.arch if model is not None else None
    if method is None and arch is None and pretrained_path("conditioned").is_file():
        method, model, note = _shipped_or_merge(config, basis, source)
    elif method is None:
        method = "conditioned" if arch == "conditioned" else "merge"
    if method == "conditioned" and arch not in (None, "conditioned"):
        raise DefectnetError(f"--method conditioned needs a conditioned model; {label_of(model)} is a {arch} model "
                             "(without --model the shipped conditioned model answers)")
    if method == "merge" and arch == "conditioned":
        raise DefectnetError(f"--method merge merges the unmixing with the plain network; {label_of(model)} is a "
                             "conditioned model (--method conditioned reads the basis with it)")
    if method == "conditioned" and config.stretch:
        raise DefectnetError("--stretch moves the local modes of an unmixing, and here the conditioned network "
                             "answers; add --method unmix (or merge)")
    return method, model, note


def _shipped_or_merge(config: PredictConfig, basis, source: str) -> tuple[str, object, str | None]:
    """(method, model, note) unasked: the shipped conditioned network when it can read ``basis`` and
    ``--stretch`` (an unmixing's option) is not asked for; else ``merge``, with a note saying why."""
    from defectnet.model.checkpoint import load_model

    if config.stretch:
        return "merge", None, "--stretch refines an unmixing: answered as --method merge, not by the conditioned network"
    shipped = load_model(arch="conditioned")
    shipped.meta["path"] = "shipped"
    try:
        conditioned_reads(shipped, basis, config, source)
    except DefectnetError as exc:  # a basis made for unmixing alone still answers, as it did
        return "merge", None, (f"not answered by the conditioned network, which cannot read this: {exc}; answered "
                               "as --method merge")
    return "conditioned", shipped, None


def conditioned_reads(model, basis, config: PredictConfig, source: str) -> list[str]:
    """Raise unless the conditioned ``model`` reads ``basis`` and spectra of ``config.kind``; notes on what differs."""
    from defectnet.model.checkpoint import check_basis

    mode = model.meta.get("spectrum_mode", "gpdos")
    if (config.kind or mode) != mode:
        raise DefectnetError(f"the conditioned model reads {mode} spectra but the input is {config.kind}; "
                             "use --method unmix for other spectra")
    return check_basis(model.meta.get("basis") or {}, basis, source)


def basis_modes(basis, kind: str, candidates) -> dict[str, float]:
    """{candidate: the energy (meV) below which 99 % of its simulated signature's |area| lies}: where its
    local modes end, which a spectrum must reach for the candidate to be seen."""
    from defectnet.unmix import band_edge_mev

    rows = {el: np.abs(basis.signatures[kind][basis.elements.index(el)]) for el in candidates if el in basis.elements}
    return {el: band_edge_mev(v, basis.grid, 0.99) for el, v in rows.items() if np.any(v > 0)}


def _basis_frame(basis, name: str, composition: dict, kind: str, modes_of) -> Frame:
    """The frame of a basis: its grid, its simulated pristine supercell as the host's reference, and where
    the signatures of the candidates ``modes_of`` end."""
    reference = Spectrum.on_grid(basis.grid, basis.pristine[basis_kind(kind)], kind=kind,
                                 meta={"source": f"{basis.host} pristine supercell of the basis"})
    return Frame(name, composition, kind, basis.grid, reference, "the basis'",
                 basis_modes(basis, basis_kind(kind), modes_of))


def _basis_notes(basis, name: str, first: str, pristine_given: bool) -> tuple[list, list]:
    """(notes that open a basis' answer, notes after the host mismatch: where the pristine comes from)."""
    opening = [Message.note("basis-host", f"the basis was simulated for {basis.host}, the host given is {name}")] \
        if basis.host != name else []
    pristine = [] if pristine_given else [Message.note("pristine-from-basis",
                                                       "pristine spectrum: the basis' simulated pristine supercell")]
    return [Message.note("answered-by", first)] + opening, pristine


def _basis_candidates(config: PredictConfig, basis, composition: dict, name: str, source) -> list[str]:
    if config.candidates == AUTO:
        return list(basis.elements)
    cands = basis_candidates(config.candidates, basis, composition, name) or list(basis.elements)
    check_in_basis(cands, basis, name, source)
    return cands


def conditioned_plan(host, config: PredictConfig, basis, source, model, *, pristine_given: bool) -> Plan:
    """The conditioned network's plan (``model`` None: the shipped one): its kind, the basis' grid and pristine."""
    estimator = ConditionedEstimator(basis, model, source)
    model = estimator.model
    differs = conditioned_reads(model, basis, config, source or f"the basis of {basis.host}")
    kind = model.meta.get("spectrum_mode", "gpdos")
    _, name, composition = resolve_host(host)
    unknown = [e for e in composition if e not in model.host_elements]
    if unknown:
        raise DefectnetError(f"host {name} contains {unknown}, which the model does not know as host elements")
    sim = basis.config.get("simulation", {})
    members = getattr(model.config, "ensemble", 1)
    who = f"an ensemble of {members} conditioned networks" if members > 1 else "the conditioned network"
    opening, pristine = _basis_notes(basis, name, f"answered by {who} ({label_of(model)}), which "
                                     f"reads each candidate through its signature simulated in {basis.host} "
                                     f"({sim.get('potential')}, tier {sim.get('tier')})", pristine_given)
    opening[1:1] = [Message.note("basis-differs", d) for d in differs]
    cands = _basis_candidates(config, basis, composition, name, source)
    outside = [c for c in cands if c not in model.vocabulary]
    if outside:
        raise DefectnetError(f"candidates {outside} are not in the conditioned model's dopant vocabulary")
    read = [c for c in cands if c not in basis.failed]
    frame = _basis_frame(basis, name, composition, kind, read)
    estimator, after = refined(estimator, basis, source, config.refine)
    return Plan(estimator, frame, dict.fromkeys(cands, "user" if config.candidates not in ((), AUTO) else "basis"),
                tuple(opening + pristine), after)


def refined(network, basis, source, refine: int | None) -> tuple:
    """(the estimator, notes after the answer): the conditioned ``network`` refined by synthesis as
    ``refine`` says (None: :data:`~defectnet.analysis.config.AUTO_REFINE` when the basis keeps its host
    and patches), the candidates it finds absent held at 0."""
    if refine is None and not basis.synthesis:
        return network, (Message.note("not-refined", "not refined by synthesis: the basis keeps no host and patches "
                                                     "(a basis made by `defectnet basis` keeps them)"),)
    if refine is None:
        return RefineEstimator(basis, source=source, start=network, hold_absent=True, **AUTO_REFINE), ()
    if refine:
        return RefineEstimator(basis, source=source, iterations=refine, start=network, hold_absent=True), ()
    return network, ()


def unmix_plan(host, config: PredictConfig, basis, source, model, *, pristine_given: bool, merge: bool) -> Plan:
    """The unmixing's plan (refined when ``config.refine``; with ``merge``, merged with the plain ``model``
    on its training hosts): the basis' grid and pristine, its candidates."""
    kind = config.kind or "gpdos"  # what INS measures
    _, name, composition = resolve_host(host)
    sim = basis.config.get("simulation", {})
    opening, pristine = _basis_notes(basis, name, f"analysis by synthesis: unmixed against the signatures of "
                                     f"{len(basis.elements)} candidates simulated in {basis.host} "
                                     f"({sim.get('potential')}, tier {sim.get('tier')})", pristine_given)
    cands = _basis_candidates(config, basis, composition, name, source)
    frame = _basis_frame(basis, name, composition, kind, cands)
    estimator = RefineEstimator(basis, source=source, iterations=config.refine) if config.refine else \
        UnmixEstimator(basis, config.stretch, source)
    if merge:
        estimator = MergeEstimator(estimator, model)
    twins = [f"{a}/{b}" for a, b, cos in basis.alike(basis_kind(kind), among=cands) if cos > 0.95]
    after = (Message.note("twins", "signatures too alike to tell apart (cosine > 0.95), their split is arbitrary: "
                          + ", ".join(twins)),) if twins else ()
    return Plan(estimator, frame, dict.fromkeys(cands, "user" if config.candidates not in ((), AUTO) else "basis"),
                tuple(opening + pristine), after)


#: Routes by method (:data:`~defectnet.analysis.config.METHODS`): ``f(host, config, basis, source, model, *,
#: pristine_given) -> Plan``.
ROUTES = {"conditioned": conditioned_plan, "unmix": partial(unmix_plan, merge=False),
          "merge": partial(unmix_plan, merge=True)}
