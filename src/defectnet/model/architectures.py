"""The architecture registry: ``ModelConfig.arch`` -> model class, and :func:`build_model`.

Apart from :mod:`~defectnet.model.network` because the conditioned model subclasses its DefectNet.
"""

from __future__ import annotations

from defectnet.elements import DOPANTS
from defectnet.model.conditioned import ConditionedNet
from defectnet.model.ensemble import Ensemble
from defectnet.model.network import DefectNet, ModelConfig, PaperNet, SpectralModel

#: Architecture name -> model class (its names are :data:`~defectnet.model.network.ARCHITECTURE_NAMES`).
ARCHITECTURES = {"defectnet": DefectNet, "paper": PaperNet, "conditioned": ConditionedNet}


def build_model(config: ModelConfig, grid, vocabulary=DOPANTS, host_elements=None) -> SpectralModel:
    """The model ``config.arch`` for an :class:`~defectnet.grid.EnergyGrid` and a vocabulary of V elements
    (an :class:`~defectnet.model.ensemble.Ensemble` of ``config.ensemble`` such models when that is > 1)."""
    if config.ensemble > 1:
        return Ensemble(config, grid, vocabulary, host_elements, build_model)
    return ARCHITECTURES[config.arch](config, grid, vocabulary, host_elements)
