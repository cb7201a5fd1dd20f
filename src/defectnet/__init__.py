"""defectnet: which substitutional dopants, and how much, from phonon DOS spectra.

The public API is deliberately small; heavy modules (torch, the MLIPs, phonopy) are
imported only when a name that needs them is first used (``import defectnet`` imports none).
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0.dev0"

#: Root name -> the module that defines it (imported on first use).
_LAZY = {
    "Spectrum": "defectnet.spectrum",
    "EnergyGrid": "defectnet.grid",
    "DEFAULT_GRID": "defectnet.grid",
    "read_spectrum": "defectnet.io",
    "Host": "defectnet.host",
    "simulate_spectra": "defectnet.simulate",
    "DopantRecommender": "defectnet.recommend",
    "DefectNet": "defectnet.model.network",
    "load_model": "defectnet.model.checkpoint",
    "predict": "defectnet.predict",
    "predict_defects": "defectnet.predict",
    "PredictConfig": "defectnet.predict",
    "Prediction": "defectnet.analysis.result",
    "basis": "defectnet.unmix",
    "BasisConfig": "defectnet.signatures",
    "SignatureBasis": "defectnet.signatures",
    "GenerateConfig": "defectnet.data.config",
    "run_generate": "defectnet.data.generate",
    "TrainConfig": "defectnet.model.config",
    "train_from_files": "defectnet.model.train",
}

#: Root names spelled differently in their module. ``predict`` is the module defectnet.predict
#: itself, callable as predict_defects (a submodule import would overwrite any other object).
_RENAMED = {"basis": "signature_basis"}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        if module.__name__ == f"{__name__}.{name}":
            return module
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'defectnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
