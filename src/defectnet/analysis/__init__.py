"""The analysis layer: from two spectra to a :class:`~defectnet.analysis.result.Prediction`.

``config``
    :class:`PredictConfig`, how a prediction is made.
``routes``
    Who answers, on which grid, against which simulated pristine (a :class:`~defectnet.analysis.routes.Plan`).
``spectra``
    Reading, checking and aligning the doped and pristine spectra.
``estimators``
    The estimators behind one protocol (network, conditioned, unmix, refine, merge) and their registry.
``result``
    The frozen :class:`Prediction` and its :class:`Message` records.
``reference``
    The host's simulated pristine spectrum (MLIP, cached) and the model's grid.

:func:`defectnet.predict.predict_defects` runs them in that order. Names below are imported on
first use, so that ``import defectnet.analysis`` stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "PredictConfig": "defectnet.analysis.config",
    "Prediction": "defectnet.analysis.result",
    "Message": "defectnet.analysis.result",
    "DopantEstimate": "defectnet.analysis.estimators",
    "CandidateEstimate": "defectnet.analysis.estimators",
    "Estimator": "defectnet.analysis.estimators",
    "ESTIMATORS": "defectnet.analysis.estimators",
    "make_estimator": "defectnet.analysis.estimators",
    "AlignedSpectra": "defectnet.analysis.spectra",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'defectnet.analysis' has no attribute {name!r}")
