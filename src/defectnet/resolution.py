"""Instrument resolution models: the Gaussian FWHM (meV) of a line at energy transfer E (meV).

Every model is a frozen dataclass with ``fwhm_mev(energy_mev) -> ndarray`` and
``to_dict``/``from_dict``; :func:`get_resolution` turns a name, a dict, a number or a model
into a model. Names:

``"tosca"``
    Indirect-geometry TOSCA (ISIS), the quadratic used by Abins (Mantid,
    ``scripts/abins/parameters.py``): σ(ω) = 2.5 + 0.005 ω + 1e-7 ω² with ω and σ in cm⁻¹,
    where σ is the *standard deviation* of the Gaussian (Abins and PACE's
    ``resolution_functions`` package, model "AbINS" in ``tosca.yaml``, both use it as σ).
    In meV: σ = 0.30996 + 0.005 E + 8.0655e-7 E²; we store FWHM = 2√(2 ln 2) σ,
    i.e. 1.93 meV at 100 meV (1.9 %) and 5.7 meV at 400 meV (1.4 %).
``"merlin-ei50"``
    Direct-geometry MERLIN (ISIS) at Ei = 50 meV, 300 Hz: the FWHM table tabulated in the
    SpinW documentation of ``sw_res`` (E = 0, 10, 20, 30, 40, 49 meV → 2.31, 1.80, 1.37,
    1.02, 0.78, 0.67 meV), fitted here by a cubic in E/Ei (residuals < 0.003 meV).
``"direct:<Ei>"``
    A chopper spectrometer at incident energy Ei (meV) with the same *relative* shape
    FWHM/Ei = f(E/Ei) as the MERLIN fit: 4.6 % of Ei at the elastic line, shrinking to 1.3 %
    at E = Ei. Scaling the shape with Ei assumes the chopper speed is chosen to keep the
    relative resolution, which is how these instruments are usually run; it is an
    approximation, not a PyChop calculation.
``"gaussian:<fwhm>"``
    A constant FWHM in meV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.units import UNITS

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # ≈ 2.3548

# Abins' TOSCA σ(ω) coefficients (a0, a1, a2), ω and σ in cm⁻¹ (Mantid scripts/abins/parameters.py).
_TOSCA_SIGMA_CM1 = (2.5, 0.005, 1.0e-7)

# FWHM/Ei as a cubic in x = E/Ei, fitted to SpinW's MERLIN table (Ei = 50 meV, 300 Hz; sw_res docs).
MERLIN_SHAPE = (0.04619, -0.05370, 0.01359, 0.00720)


def _as_energy(energy_mev) -> np.ndarray:
    return np.asarray(energy_mev, dtype=float)


def _check_positive(value: float, what: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise DefectnetError(f"{what} must be a positive number of meV, got {value!r}")
    return value


class _Model:
    """Shared ``from_dict`` for the model dataclasses."""

    @classmethod
    def from_dict(cls, d: dict):
        model = from_dict(d)
        if not isinstance(model, cls):
            raise DefectnetError(f"expected a {cls.model!r} resolution, got {d.get('model')!r}")
        return model


@dataclass(frozen=True, init=False)
class Gaussian(_Model):
    """A constant FWHM (meV) at every energy."""

    model: ClassVar[str] = "gaussian"
    width_mev: float
    name: str = ""

    # Explicit __init__ so the argument can be called ``fwhm_mev`` although the method is.
    def __init__(self, fwhm_mev: float, name: str = ""):
        object.__setattr__(self, "width_mev", _check_positive(fwhm_mev, "FWHM"))
        object.__setattr__(self, "name", str(name))

    def fwhm_mev(self, energy_mev) -> np.ndarray:
        """FWHM in meV, same shape as ``energy_mev``."""
        return np.full_like(_as_energy(energy_mev), self.width_mev)

    def to_dict(self) -> dict:
        return {"model": self.model, "fwhm_mev": self.width_mev, "name": self.name}


@dataclass(frozen=True)
class Polynomial(_Model):
    """FWHM(E) = Σ_k c_k E^k (E and FWHM in meV), clipped below at ``floor_mev``."""

    model: ClassVar[str] = "polynomial"
    coefficients: tuple[float, ...]
    floor_mev: float = 1e-3
    name: str = ""

    def __post_init__(self):
        coeffs = tuple(float(c) for c in np.atleast_1d(self.coefficients))
        if not coeffs or not all(math.isfinite(c) for c in coeffs):
            raise DefectnetError(f"polynomial resolution needs finite coefficients, got {self.coefficients!r}")
        object.__setattr__(self, "coefficients", coeffs)
        _check_positive(self.floor_mev, "polynomial resolution floor")

    def fwhm_mev(self, energy_mev) -> np.ndarray:
        """FWHM in meV, same shape as ``energy_mev``."""
        e = _as_energy(energy_mev)
        return np.maximum(np.polynomial.polynomial.polyval(e, self.coefficients), self.floor_mev)

    def to_dict(self) -> dict:
        return {"model": self.model, "coefficients": list(self.coefficients),
                "floor_mev": self.floor_mev, "name": self.name}


@dataclass(frozen=True)
class DirectGeometry(_Model):
    """Chopper spectrometer: FWHM(E) = Ei · Σ_k a_k (E/Ei)^k, with E/Ei clipped to [0, 1].

    The clip keeps the width finite where the model does not apply: neutron energy gain
    (E < 0) gets the elastic width, and E > Ei (kinematically unreachable) the width at Ei.
    """

    model: ClassVar[str] = "direct"
    ei_mev: float
    coefficients: tuple[float, ...] = field(default=MERLIN_SHAPE)
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "ei_mev", _check_positive(self.ei_mev, "incident energy Ei"))
        coeffs = tuple(float(c) for c in np.atleast_1d(self.coefficients))
        x = np.linspace(0.0, 1.0, 101)
        if not coeffs or np.any(np.polynomial.polynomial.polyval(x, coeffs) <= 0):
            raise DefectnetError(f"direct-geometry shape {coeffs!r} must give a positive FWHM for 0 ≤ E/Ei ≤ 1")
        object.__setattr__(self, "coefficients", coeffs)

    def fwhm_mev(self, energy_mev) -> np.ndarray:
        """FWHM in meV, same shape as ``energy_mev``."""
        x = np.clip(_as_energy(energy_mev) / self.ei_mev, 0.0, 1.0)
        return self.ei_mev * np.polynomial.polynomial.polyval(x, self.coefficients)

    def to_dict(self) -> dict:
        return {"model": self.model, "ei_mev": self.ei_mev,
                "coefficients": list(self.coefficients), "name": self.name}


ResolutionModel = Gaussian | Polynomial | DirectGeometry
MODELS: dict[str, type] = {cls.model: cls for cls in (Gaussian, Polynomial, DirectGeometry)}


def _tosca() -> Polynomial:
    # σ_cm = Σ a_k ω_cm^k with ω_cm = s·E (s = cm⁻¹ per meV) → σ_meV = Σ a_k s^(k-1) E^k.
    s = UNITS.cm1_per_mev
    coeffs = tuple(FWHM_PER_SIGMA * a * s ** (k - 1) for k, a in enumerate(_TOSCA_SIGMA_CM1))
    return Polynomial(coeffs, name="tosca")


PRESETS = {
    "tosca": _tosca,
    "merlin-ei50": lambda: DirectGeometry(50.0, name="merlin-ei50"),
}
PATTERNS = ("gaussian:<FWHM meV>", "direct:<Ei meV>")


def available() -> list[str]:
    """Names :func:`get_resolution` accepts."""
    return sorted(PRESETS) + list(PATTERNS)


def get_resolution(spec) -> ResolutionModel:
    """Return a resolution model from a name, a dict (``to_dict`` output), a number or a model.

    A number is a constant FWHM in meV. Unknown names raise :class:`DefectnetError`
    listing the choices.
    """
    if isinstance(spec, tuple(MODELS.values())):
        return spec
    if isinstance(spec, (int, float, np.floating, np.integer)) and not isinstance(spec, bool):
        return Gaussian(float(spec))
    if isinstance(spec, dict):
        return from_dict(spec)
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in PRESETS:
            return PRESETS[key]()
        prefix, _, arg = key.partition(":")
        if arg and prefix in ("gaussian", "direct"):
            try:
                value = float(arg)
            except ValueError:
                raise DefectnetError(f"resolution {spec!r}: {arg!r} is not a number of meV") from None
            return Gaussian(value, name=key) if prefix == "gaussian" else DirectGeometry(value, name=key)
    raise DefectnetError(f"unknown resolution {spec!r}; expected one of {', '.join(available())}")


def from_dict(d: dict) -> ResolutionModel:
    """Rebuild a model from its ``to_dict`` output; unknown keys are rejected."""
    d = dict(d)
    kind = d.pop("model", None)
    if kind not in MODELS:
        raise DefectnetError(f"unknown resolution model {kind!r}; expected one of {sorted(MODELS)}")
    try:
        return MODELS[kind](**d)
    except TypeError as exc:
        raise DefectnetError(f"bad parameters for resolution model {kind!r}: {exc}") from None


