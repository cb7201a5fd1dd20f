"""Instrument resolution models: the Gaussian FWHM (meV) of a line at energy transfer E (meV).

Every model is a frozen dataclass with ``fwhm_mev(energy_mev) -> ndarray`` and
``to_dict``/``from_dict``; :func:`get_resolution` turns a name, a dict, a number or a model
into a model. Where ResINS (pip ``resins``, PACE's maintained library of neutron-instrument
resolution functions) covers an instrument, the width comes from it (:class:`Resins`:
FWHM = 2√(2 ln 2) σ of its Gaussian); hand-written models stay only for what it lacks. Names:

``"tosca"``
    Indirect-geometry TOSCA (ISIS), ResINS ``TOSCA`` model ``AbINS``: σ = 0.30996 + 0.005 E +
    8.0655e-7 E² (meV; the Abins polynomial σ = 2.5 + 0.005 ω + 1e-7 ω² in cm⁻¹, Mantid
    ``scripts/abins/parameters.py``; Dymkowski et al., Physica B 551, 443 (2018)), i.e. FWHM
    1.93 meV at 100 meV (1.9 %) and 5.7 meV at 400 meV (1.4 %). With ResINS 0.1.0 it equals
    the hand-written polynomial this module used before to ≤ 5e-11 relative over 0–500 meV
    (the same coefficients, rounded differently); ResINS's other TOSCA models (``book``,
    ``vision``) do not evaluate in 0.1.0.
``"merlin-ei50"``
    Direct-geometry MERLIN (ISIS) at Ei = 50 meV, 300 Hz, chopper package G: ResINS's PyChop
    fit. It agrees with the FWHM table in the SpinW documentation of ``sw_res`` (E = 0, 10,
    20, 30, 40, 49 meV → 2.31, 1.80, 1.37, 1.02, 0.78, 0.67 meV) to within 0.08 meV.
``"<instrument>:<Ei>[:<frequency Hz>[:<chopper package>]]"``
    A direct-geometry instrument through ResINS's PyChop fits: ``merlin``, ``mari``, ``maps``,
    ``let``, ``arcs``, ``sequoia``, ``cncs``, ``hyspec`` (e.g. ``"mari:500:400:A"``; the
    frequency is the Fermi chopper's, or LET's resolution chopper, CNCS's resolution disk;
    omitted parts take ResINS's defaults). ResINS refuses settings outside the instrument's
    range (e.g. MERLIN Ei > 181 meV with package G); the message says so. The width is held
    at its E = 0 value for E < 0 and at its E = Ei value above Ei.
``"direct:<Ei>"``
    Hand-written, for a generic chopper spectrometer ResINS has no model of: the *relative*
    shape FWHM/Ei = f(E/Ei) of MERLIN at Ei = 50 meV, 300 Hz (a cubic in E/Ei fitted to the
    SpinW ``sw_res`` table above, residuals < 0.003 meV): 4.6 % of Ei at the elastic line,
    shrinking to 1.3 % at E = Ei. Scaling the shape with Ei assumes the chopper speed is
    chosen to keep the relative resolution; an approximation, not a PyChop calculation.
``"gaussian:<fwhm>"``
    A constant FWHM in meV.

VISION (SNS) is not available: ResINS 0.1.0's VISION model (Seeger et al., NIM A 604, 719
(2009)) cannot be evaluated (its pulse-width parameter ``d_t`` is unset in the package's
data), and no hand-written VISION preset with a citable width function is kept.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from defectnet.errors import DefectnetError, exception_reason

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # ≈ 2.3548
MIN_FWHM_MEV = 1e-3  # floor on any model's width

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


@functools.lru_cache(maxsize=64)
def resins_function(instrument: str, model_name: str | None, settings: tuple):
    """ResINS's resolution function of ``instrument`` (its default version) for ``model_name`` (None:
    ResINS's default) and ``settings`` ((name, value) pairs), cached; failures are one-line errors."""
    try:
        from resins import Instrument
    except ImportError:
        raise DefectnetError(f"resolution of {instrument} needs the 'resins' package (pip install resins)") from None
    try:
        return Instrument.from_default(instrument).get_resolution_function(model_name, **dict(settings))
    except Exception as exc:  # ResINS raises its own error types, and TypeErrors from incomplete models
        raise DefectnetError(f"ResINS cannot give the resolution of {instrument} with model {model_name or 'default'} "
                             f"and settings {dict(settings)} ({exception_reason(exc)})") from None


@dataclass(frozen=True)
class Resins(_Model):
    """FWHM(E) = 2√(2 ln 2) σ(E), σ from ResINS's Gaussian model of a neutron instrument.

    ``instrument`` is a ResINS name (``TOSCA``, ``MERLIN`` ...), ``model_name`` one of its models
    (``None``: ResINS's default) and ``settings`` the model's settings (a dict or (name, value)
    pairs; e.g. ``e_init`` = Ei in meV, ``chopper_frequency`` in Hz). With an ``e_init`` the
    energy is clipped to [0, Ei] first (direct geometry: the width at the elastic line for
    neutron energy gain, at Ei beyond it); otherwise |E| is the caller's business. Widths are
    floored at 1e-3 meV. The model is built (and its settings checked) at construction.
    """

    model: ClassVar[str] = "resins"
    instrument: str
    model_name: str | None = None
    settings: tuple = ()
    name: str = ""

    def __post_init__(self):
        pairs = self.settings.items() if isinstance(self.settings, dict) else self.settings
        object.__setattr__(self, "settings", tuple(sorted((str(k), v) for k, v in pairs)))
        resins_function(self.instrument, self.model_name, self.settings)

    @property
    def ei_mev(self) -> float | None:
        """The incident energy (meV) of a direct-geometry model, else None."""
        ei = dict(self.settings).get("e_init")
        return None if ei is None else float(ei)

    def fwhm_mev(self, energy_mev) -> np.ndarray:
        """FWHM in meV, same shape as ``energy_mev``."""
        e = _as_energy(energy_mev)
        if self.ei_mev is not None:
            e = np.clip(e, 0.0, self.ei_mev)
        sigma = resins_function(self.instrument, self.model_name, self.settings).get_characteristics(
            e.reshape(-1, 1))["sigma"]
        return np.maximum(FWHM_PER_SIGMA * np.asarray(sigma, dtype=float).reshape(e.shape), MIN_FWHM_MEV)

    def to_dict(self) -> dict:
        return {"model": self.model, "instrument": self.instrument, "model_name": self.model_name,
                "settings": dict(self.settings), "name": self.name}


ResolutionModel = Gaussian | Polynomial | DirectGeometry | Resins
MODELS: dict[str, type] = {cls.model: cls for cls in (Gaussian, Polynomial, DirectGeometry, Resins)}

PRESETS = {
    "tosca": lambda: Resins("TOSCA", "AbINS", name="tosca"),
    "merlin-ei50": lambda: Resins("MERLIN", None, {"chopper_package": "G", "e_init": 50.0, "chopper_frequency": 300},
                                  name="merlin-ei50"),
}
# Direct-geometry instruments in ResINS (PyChop fits): name → (ResINS name, its chopper-frequency setting).
DIRECT_INSTRUMENTS = {
    "merlin": ("MERLIN", "chopper_frequency"), "mari": ("MARI", "chopper_frequency"),
    "maps": ("MAPS", "chopper_frequency"), "arcs": ("ARCS", "chopper_frequency"),
    "sequoia": ("SEQUOIA", "chopper_frequency"), "hyspec": ("HYSPEC", "chopper_frequency"),
    "let": ("LET", "resolution_frequency"), "cncs": ("CNCS", "resolution_disk_frequency"),
}
UNAVAILABLE = {
    "vision": "VISION: ResINS 0.1.0's VISION model cannot be evaluated (its pulse-width parameter d_t is unset) "
              "and no hand-written VISION preset is kept; use tosca (a similar indirect-geometry instrument) or "
              "gaussian:<FWHM>",
}
PATTERNS = ("gaussian:<FWHM meV>", "direct:<Ei meV>", "<instrument>:<Ei meV>[:<frequency Hz>[:<chopper package>]]")


def available() -> list[str]:
    """Names :func:`get_resolution` accepts (``<instrument>`` is one of DIRECT_INSTRUMENTS)."""
    return sorted(PRESETS) + list(PATTERNS)


def _direct_instrument(spec: str) -> Resins:
    """``"<instrument>:<Ei>[:<frequency>[:<package>]]"`` as a ResINS PyChop model."""
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) > 4 or not all(parts):
        raise DefectnetError(f"resolution {spec!r}: expected <instrument>:<Ei meV>[:<frequency Hz>[:<chopper package>]]")
    instrument, freq_name = DIRECT_INSTRUMENTS[parts[0].lower()]
    settings: dict = {}
    try:
        settings["e_init"] = _check_positive(float(parts[1]), "incident energy Ei")
        if len(parts) > 2:
            settings[freq_name] = int(parts[2])
    except ValueError:
        raise DefectnetError(f"resolution {spec!r}: Ei must be a number of meV and the frequency an integer "
                             "number of Hz") from None
    if len(parts) > 3:
        settings["chopper_package"] = parts[3]
    return Resins(instrument, None, settings, name=spec.lower())


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
        if key in UNAVAILABLE:
            raise DefectnetError(f"resolution {spec!r} is not available: {UNAVAILABLE[key]}")
        prefix, _, arg = key.partition(":")
        if arg and prefix in DIRECT_INSTRUMENTS:
            return _direct_instrument(spec.strip())
        if arg and prefix in ("gaussian", "direct"):
            try:
                value = float(arg)
            except ValueError:
                raise DefectnetError(f"resolution {spec!r}: {arg!r} is not a number of meV") from None
            return Gaussian(value, name=key) if prefix == "gaussian" else DirectGeometry(value, name=key)
    raise DefectnetError(f"unknown resolution {spec!r}; expected one of {', '.join(available())} "
                         f"(instrument: {', '.join(DIRECT_INSTRUMENTS)})")


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


