"""Predict which dopants a crystal holds, and how much, from its doped (and pristine) spectrum.

The user-facing end of defectnet::

    from defectnet import predict_defects
    p = predict_defects("GaAs", "doped.csv", pristine="pristine.csv", candidates=["Si", "Zn", "Be", "C"])
    print(p.table())
    p.plot("prediction.png")

:func:`predict_defects` is four steps of :mod:`defectnet.analysis`: plan (who answers, on
which grid, against which simulated pristine: :func:`~defectnet.analysis.routes.plan_prediction`),
read and align both spectra (any grid, meV / THz / cm⁻¹, energies × ``energy_scale``, only the
range both cover, rebinned: :func:`~defectnet.analysis.spectra.align`) with the checks of
:mod:`defectnet.checks`, estimate (an :class:`~defectnet.analysis.estimators.Estimator`), and
assemble the frozen :class:`~defectnet.analysis.result.Prediction`. Every correction made to
the input is a note in :attr:`Prediction.messages`, every doubt a warning.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import warnings
from dataclasses import replace
from pathlib import Path

from defectnet.analysis.config import KINDS, METHODS, PredictConfig
from defectnet.analysis.estimators import (ESTIMATORS, DopantEstimate, Estimator, calibration_note, family_note,
                                           host_in_training, loaded, make_estimator)
from defectnet.analysis.reference import (cache_dir, computed_pristine, model_grid, resolve_host,
                                          training_broadening)
from defectnet.analysis.result import Message, Prediction, answer_row
from defectnet.analysis.routes import Plan, basis_modes, plan_prediction
from defectnet.analysis.spectra import COVERAGE, align, fit_energy_scale
from defectnet.checks import change_unexplained_warning, no_signature_warning, plausibility_warnings
from defectnet.errors import DefectnetError
from defectnet.prediction import DETECTION_THRESHOLD_AT_PCT
from defectnet.spectrum import Spectrum

__all__ = ["COVERAGE", "DETECTION_THRESHOLD_AT_PCT", "ESTIMATORS", "KINDS", "METHODS", "DopantEstimate", "Estimator",
           "Message", "PredictConfig", "Prediction", "basis_modes", "cache_dir", "calibration_note", "family_note",
           "fit_energy_scale", "host_in_training", "host_reference", "make_estimator", "model_grid",
           "predict_defects", "read_truth", "training_broadening"]


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
        plan = plan_prediction(host, config, model=model, basis=basis, pristine_given=pristine is not None,
                               progress=progress)
        aligned = align(doped, pristine, config, plan.frame)
        estimate = plan.estimator.estimate(aligned.spectra, list(plan.candidates))
    messages = plan.before + aligned.messages + estimate.messages + plan.after
    spectra = aligned.spectra
    pred = Prediction(spectra.host, spectra.composition, spectra.kind, answer_rows(plan, estimate), spectra.pristine,
                      spectra.doped, messages + caught_messages(caught, messages), estimate.model, read_truth(truth),
                      aligned.config, aligned.checks, estimate.parts)
    return vetted(pred)


def answer_rows(plan: Plan, estimate: DopantEstimate) -> list[dict]:
    """The rows of a :class:`Prediction`: each candidate of ``plan`` with its source, largest concentration
    first, then (those read as absent) most likely present first: a ranking when no list was given."""
    rows = [answer_row(el, source, c.concentration, c.uncertainty, c.presence)
            for el, source in plan.candidates.items() for c in [estimate.candidates[el]]]
    return sorted(rows, key=lambda r: (-r["concentration"], -r["presence"]))


def vetted(pred: Prediction) -> Prediction:
    """``pred`` after the checks of its answer (:mod:`defectnet.checks`): nothing reported without a
    signature above noise; an answer too small for the change in the spectrum, or implausible, warned about."""
    rows, added = pred.rows, []
    if warning := no_signature_warning(pred.checks.get("signal") or {}, rows):
        rows = [dict(r, concentration=0.0, presence=0.0, detected=False) for r in rows]
        added.append(Message.warning("no-signature", warning))
    elif warning := change_unexplained_warning(pred.checks.get("doped"), rows):
        added.append(Message.warning("change-unexplained", warning))
    added += [Message.warning("implausible", w) for w in plausibility_warnings(rows)]
    return replace(pred, rows=rows, messages=pred.messages + tuple(added))


def caught_messages(caught, said) -> tuple[Message, ...]:
    """Notes with the text of warnings raised while predicting, once each and not already ``said``.

    A guessed energy unit is already a note (from the spectrum's ``meta["unit_inferred"]``)."""
    from defectnet.io import UnitGuessWarning

    texts = {m.text for m in said if m.level == "note"}
    out = []
    for w in caught:
        text = f"warning: {' '.join(str(w.message).split())}"
        if not issubclass(w.category, UnitGuessWarning) and text not in texts:
            texts.add(text)
            out.append(Message.note("python-warning", text))
    return tuple(out)


def host_reference(host, *, config: PredictConfig | None = None, model=None, progress: bool = False) -> Spectrum:
    """The host's simulated pristine spectrum that :func:`predict_defects` checks measured spectra
    against: the MLIP's q-mesh PDoS on the model's grid (neutron-weighted if the model reads
    GPDoS), cached on disk (``$DEFECTNET_CACHE``; for the process only when that is ``off``)."""
    config = config or PredictConfig()
    model, _ = loaded(model)
    atoms, name, composition = resolve_host(host)
    s = computed_pristine(atoms, name, config, model, model_grid(model), progress=progress)
    return s.neutron_weighted(composition) if (config.kind or model.meta.get("spectrum_mode")) == "gpdos" else s


def read_truth(truth) -> dict | None:
    """Known concentrations {element: atomic fraction} from a dict or a ``defectnet simulate`` meta.json /
    plain JSON file; None for None."""
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


class _CallableModule(types.ModuleType):
    """This module, callable: ``defectnet.predict(host, doped, ...)`` is :func:`predict_defects`.

    The root API's ``predict`` must be this module (importing a submodule sets it as the
    package's attribute), so the module itself answers the call.
    """

    def __call__(self, *args, **kw) -> Prediction:
        return predict_defects(*args, **kw)


__signature__ = inspect.signature(predict_defects)
sys.modules[__name__].__class__ = _CallableModule
