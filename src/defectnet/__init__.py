"""defectnet: which substitutional dopants, and how much, from phonon DOS spectra.

The public API is deliberately small; heavy modules (torch, the MLIPs, phonopy) are
imported only when a name that needs them is first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0.dev0"

_LAZY = {
    "Spectrum": "defectnet.spectrum",
    "EnergyGrid": "defectnet.grid",
    "DEFAULT_GRID": "defectnet.grid",
    "Host": "defectnet.host",
    "simulate_spectra": "defectnet.simulate",
    "DopantRecommender": "defectnet.recommend",
    "DefectNet": "defectnet.model.network",
    "load_model": "defectnet.model.checkpoint",
    "predict_defects": "defectnet.predict",
    "PredictConfig": "defectnet.predict",
    "Prediction": "defectnet.analysis.result",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'defectnet' has no attribute {name!r}")
