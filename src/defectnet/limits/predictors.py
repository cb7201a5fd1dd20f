"""Predictors (:data:`PREDICTORS`): presence and concentration of every candidate in simulated measurements."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.signatures import SPECTRUM_KINDS

#: The spectra a basis holds, as the predictor calls them (a spectrum's name of the total PDoS is "total").
PREDICT_KINDS = SPECTRUM_KINDS


def unmix_predictor(pristine, doped, basis, candidates, *, kind: str) -> dict:
    """Presence and concentration of ``candidates`` by :func:`defectnet.unmix.unmix`, as ``predict --basis``.

    As :func:`defectnet.predict.predict_defects` does, a measurement whose signature
    Δ = doped − pristine is within its noise (:func:`defectnet.checks.signal_against_noise`)
    reports every candidate absent (presence 0).

    Parameters
    ----------
    pristine, doped : ndarray (n, B)
        Unit-area measured spectra on the basis grid, per meV.
    basis : SignatureBasis
    candidates : list of str, length K
        Elements of the basis.
    kind : {'gpdos', 'pdos'}

    Returns
    -------
    dict
        ``presence`` (n, K) probabilities and ``concentration`` (n, K) atomic fractions.
    """
    from defectnet.unmix import unmix_arrays

    out = unmix_arrays(pristine, doped, np.ones((len(pristine), len(candidates)), bool), candidates, basis, kind=kind)
    quiet = _within_noise(pristine, doped, basis.grid)
    return {k: np.where(quiet[:, None], 0.0, out[k]) for k in ("presence", "concentration")}


def predict_predictor(pristine, doped, basis, candidates, *, kind: str) -> dict:
    """:func:`unmix_predictor`'s layout, by :func:`defectnet.predict.predict_defects` with the basis: its
    input checks, the signal-against-noise check and, on a training host of the shipped model, the merge
    with the model's answer. A measurement predict refuses (a one-line error) detects nothing."""
    from defectnet.predict import predict_defects
    from defectnet.spectrum import Spectrum

    out = {"presence": np.zeros((len(pristine), len(candidates))), "concentration": np.zeros((len(pristine), len(candidates)))}
    pkind = PREDICT_KINDS[kind]
    for r, (p, d) in enumerate(zip(pristine, doped)):
        try:
            pred = predict_defects(basis.host, Spectrum.on_grid(basis.grid, d, kind=pkind), basis=basis,
                                   pristine=Spectrum.on_grid(basis.grid, p, kind=pkind), candidates=list(candidates),
                                   kind=pkind)
        except DefectnetError:
            continue
        rows = {row["element"]: row for row in pred.rows}
        out["presence"][r] = [rows[el]["presence"] for el in candidates]
        out["concentration"][r] = [rows[el]["concentration"] for el in candidates]
    return out


def conditioned_predictor(pristine, doped, basis, candidates, *, kind: str) -> dict:
    """:func:`unmix_predictor`'s layout, by the shipped conditioned network (what ``predict --basis``
    answers by default), all measurements in one batch; presence zeroed when Δ is within its noise,
    as predict does."""
    from defectnet.analysis.reference import resolve_host
    from defectnet.model.conditioned_train import predict_many_with_basis

    if kind != "gpdos":
        raise DefectnetError("the conditioned network reads GPDoS: use --kind gpdos, or --predictor unmix")
    out = predict_many_with_basis(_shipped_conditioned(), pristine, doped, resolve_host(basis.host)[2],
                                  list(candidates), basis)
    quiet = _within_noise(pristine, doped, basis.grid)
    return {k: np.where(quiet[:, None], 0.0, out[k]) for k in ("presence", "concentration")}


def _within_noise(pristine, doped, grid) -> np.ndarray:
    """(n,) True where Δ = doped − pristine is within its noise (:func:`defectnet.checks.signal_against_noise`)."""
    from defectnet.checks import signal_against_noise
    from defectnet.spectrum import Spectrum

    return np.array([signal_against_noise(Spectrum.on_grid(grid, p), Spectrum.on_grid(grid, d))["above_noise"] is False
                     for p, d in zip(pristine, doped)])


@lru_cache(maxsize=1)
def _shipped_conditioned():
    from defectnet.model.checkpoint import load_model

    return load_model(arch="conditioned")


#: Predictors by name: ``f(pristine (n, B), doped (n, B), basis, candidates, *, kind) -> {"presence", "concentration"}``,
#: each (n, K).
PREDICTORS = {"unmix": unmix_predictor, "conditioned": conditioned_predictor, "predict": predict_predictor}
PREDICTOR_TEXT = {
    "unmix": "defectnet.unmix.unmix with every candidate (predict --basis --method unmix), presence zeroed "
             "when Δ is within its noise as predict does",
    "conditioned": "the shipped conditioned network (predict --basis's default answer), every candidate, all "
                   "measurements in one batch, presence zeroed when Δ is within its noise as predict does",
    "predict": "defectnet.predict_defects with the basis (its checks, and the method it chooses: the shipped "
               "conditioned network by default); a refused measurement detects nothing",
}
