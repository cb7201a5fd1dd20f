"""The settings of a detection-limit run (:class:`LimitsConfig`), saved with every result."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from defectnet.errors import DefectnetError, dataclass_from_dict
from defectnet.limits.engines import ENGINES
from defectnet.limits.predictors import PREDICT_KINDS, PREDICTORS

#: How the concentrations of the grid are visited: every one, or a bisection.
SEARCHES = ("bisect", "scan")


@dataclass(frozen=True)
class LimitsConfig:
    """How detection limits are simulated; saved with every result.

    Parameters
    ----------
    candidates : tuple of str
        The candidates whose limits are found, each alone in turn (``"Si"`` or ``"Si@Ga"``);
        () = every candidate of the basis but those of ``background``. The predictor is
        given all of them (and the background's) in every measurement.
    resolution : str
        Instrument resolution (:func:`defectnet.resolution.get_resolution`: ``tosca``,
        ``<instrument>:<Ei meV>``, ``direct:<Ei meV>``, ``gaussian:<FWHM meV>`` ...).
    noise : float
        Relative counting noise of a bin holding the mean share of the area (module
        docstring: Poisson statistics of B / noise² counts over the B bins), > 0.
    kind : {'gpdos', 'pdos'}
        Which spectra are measured: neutron-weighted GPDoS (what INS measures) or total PDoS.
    engine : str
        Forward model, a key of :data:`ENGINES` (``curves`` | ``synthesis``).
    predictor : str
        A key of :data:`PREDICTORS` (``unmix`` | ``conditioned`` | ``predict``).
    c_min, c_max : float
        Range of the concentration grid, atomic fractions (0.001 = 0.1 at.%).
    n_concentrations : int
        Points of the log-spaced grid.
    measurements : int
        Simulated measurements per concentration.
    min_presence : float
        A measurement detects the candidate when its presence is at least this.
    min_rate : float
        The limit is the least concentration detected in at least this share of measurements.
    search : {'bisect', 'scan'}
        Visit the grid by bisection (assumes the rate grows with c) or every point.
    match_basis : bool
        The predictor reads against the basis broadened to the instrument's resolution, as a
        basis simulated with that resolution (``defectnet basis --resolution``) is; False: the
        basis as given (a basis at another resolution than the measurement's).
    placements : int
        Synthesis engine: seeded placements per concentration, cycled over the measurements.
    background : tuple of (str, float)
        (element, atomic fraction) pairs present in every doped sample (and the blank);
        elements of the basis.
    seed : int
        Noise draws (and the synthesis engine's placements) derive from it.
    """

    candidates: tuple[str, ...] = ()
    resolution: str = "tosca"
    noise: float = 0.02
    kind: str = "gpdos"
    engine: str = "curves"
    predictor: str = "unmix"
    c_min: float = 0.001  # atomic fraction
    c_max: float = 0.25  # atomic fraction
    n_concentrations: int = 13
    measurements: int = 50
    min_presence: float = 0.95
    min_rate: float = 0.9
    search: str = "bisect"
    match_basis: bool = True
    placements: int = 3
    background: tuple = ()
    seed: int = 0

    def __post_init__(self):
        from defectnet.resolution import get_resolution

        object.__setattr__(self, "candidates", tuple(dict.fromkeys(str(c).strip() for c in self.candidates)))
        pairs = self.background.items() if isinstance(self.background, dict) else self.background
        try:
            background = tuple((str(el), float(c)) for el, c in pairs)
        except (TypeError, ValueError):
            raise DefectnetError(f"background must be (element, atomic fraction) pairs, got {self.background!r}") from None
        object.__setattr__(self, "background", background)
        if not (isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and self.noise > 0):
            raise DefectnetError(f"noise must be a positive relative counting noise (e.g. 0.02), got {self.noise!r}")
        get_resolution(self.resolution)  # an unknown instrument fails here, in one line
        for name, value, choices in (("kind", self.kind, tuple(PREDICT_KINDS)), ("engine", self.engine, tuple(ENGINES)),
                                     ("predictor", self.predictor, tuple(PREDICTORS)), ("search", self.search, SEARCHES)):
            if value not in choices:
                raise DefectnetError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
        if not 0 < self.c_min < self.c_max < 1:
            raise DefectnetError(f"concentration range must satisfy 0 < c_min < c_max < 1 (atomic fractions), got "
                                 f"{self.c_min!r}, {self.c_max!r}")
        if self.n_concentrations < 2 or self.measurements < 1 or self.placements < 1:
            raise DefectnetError(f"need ≥ 2 concentrations, ≥ 1 measurement and ≥ 1 placement, got "
                                 f"{self.n_concentrations}, {self.measurements}, {self.placements}")
        if not (0 < self.min_presence < 1 and 0 < self.min_rate <= 1):
            raise DefectnetError(f"min_presence must lie in (0, 1) and min_rate in (0, 1], got {self.min_presence!r}, "
                                 f"{self.min_rate!r}")
        if any(not 0 < c < 1 for _, c in background):
            raise DefectnetError(f"background fractions must be atomic fractions in (0, 1), got {dict(background)}")

    @property
    def concentrations(self) -> np.ndarray:
        """The grid, (n_concentrations,) atomic fractions, log-spaced from ``c_min`` to ``c_max``."""
        return np.geomspace(self.c_min, self.c_max, self.n_concentrations)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["candidates"], d["background"] = list(self.candidates), [list(p) for p in self.background]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LimitsConfig:
        """The config :meth:`to_dict` wrote; unknown keys are refused."""
        d = dict(d)
        d["candidates"] = tuple(d.get("candidates", ()))
        d["background"] = tuple(tuple(p) for p in d.get("background", ()))
        return dataclass_from_dict(cls, d, "limits config")
