"""Detection limits: the least concentration of each candidate dopant a measurement would find.

Before beam time the question is whether, say, 0.5 at.% of B in Si is visible on TOSCA with
the counting statistics a given count time buys. :func:`detection_limits` answers it per
candidate of a host's signature basis by simulated measurements:

1. **Forward model** (:data:`ENGINES`): the defect signature Δ_k(c) of candidate k alone at
   concentration c (other candidates absent; optionally a stated background mix in every
   sample). ``curves``: the basis' own simulated curves, piecewise linear in c through the
   origin (what :func:`defectnet.unmix.unmix` reads them as; milliseconds). ``synthesis``:
   the host's patches placed afresh in its supercell by :class:`~defectnet.synthesis.Synthesizer`
   with other seeds than the basis' (~1–4 s per placement; a concentration is then a whole
   number of dopant atoms in the cell, and below half an atom the cell is pristine).
2. **Instrument**: pristine and doped spectra broadened to the instrument's resolution
   (:func:`defectnet.resolution.get_resolution`): a Gaussian of FWHM
   √(R(E)² − b(E)²) on top of the basis' own broadening b(E), so that the total is R(E);
   where R is finer than b, the basis' broadening is kept.
3. **Counting noise**, independently on pristine and doped, in the convention of the
   training augmentation (:class:`~defectnet.model.augment.Augment`): with q_i the share of
   the spectrum's area in bin i of the basis grid (B bins), q_i += noise · √(q_i / B) · z_i,
   z_i ~ N(0, 1), clipped at 0 and renormalised. ``noise`` is the relative error of a bin
   holding the mean share 1/B, and equals Poisson statistics of N = B / noise² counts over
   the grid (0.02 on the 640-bin grid: 1.6 × 10⁶ counts).
4. **Predictor** (:data:`PREDICTORS`), given the pristine and doped measurement and every
   candidate: ``unmix`` (``predict --basis --method unmix``), ``conditioned`` (the shipped
   conditioned network, ``predict --basis``'s default answer, in one batch), both with
   predict's signal-against-noise check, or ``predict``
   (:func:`~defectnet.predict.predict_defects` itself, with all its checks; ~5× slower). A measurement *detects* the candidate when the predictor's
   presence for it is ≥ ``min_presence`` (0.95).

The limit of a candidate is the least concentration of a log grid (0.1–25 at.% by default)
at which at least ``min_rate`` (90 %) of ``measurements`` simulated measurements detect it,
and every grid concentration above it too (``scan``), or the same found by bisection over
the grid, assuming the detection rate grows with c (``bisect``; a concentration is then measured
a few measurements at a time until its verdict is certain, which gives the verdict of all of them). Each candidate's
measurements use the same noise draws at every concentration (common random numbers), so
its rate is a smooth function of c and two noise levels are compared on the same draws.
A blank measurement (no candidate) gives each candidate's false-alarm rate.

With the ``curves`` engine the simulated measurements come from the very curves the
unmixing fits, so the planner has no model error: it is the limit set by resolution and
counting noise. How far that is from the limit observed on fresh placements is measured in
``benchmarks/limits.py`` (``docs/limits.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError, dataclass_from_dict

#: How the concentrations of the grid are visited: every one, or a bisection.
SEARCHES = ("bisect", "scan")
#: Placement seeds of the synthesis engine start here (the basis' own are its ``seed`` + 0, 1 ...).
PLACEMENT_SEED = 10_000
#: Candidates whose signatures (as the predictor reads them) have a cosine above this are twins: no spectrum
#: tells them apart, and the predictor splits their sum between them (predict notes them at the same value).
TWIN_COSINE = 0.95
#: A bisection measures a concentration this many measurements at a time, and stops once the verdict is certain.
SEQUENTIAL_CHUNK = 5
#: The spectra a basis holds, as the predictor calls them.
PREDICT_KINDS = {"gpdos": "gpdos", "pdos": "total"}


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


# ----------------------------------------------------------------------------- forward models
class CurvesEngine:
    """Δ from the basis' own curves: Σ_k Δ_k(c_k), each piecewise linear in c through the origin and
    the basis' realised concentrations (the last segment extended); no placement noise."""

    name = "curves"

    def __init__(self, basis, config: LimitsConfig, synthesizer=None):
        self.basis, self.kind = basis, config.kind

    def describe(self) -> str:
        knots = ", ".join(f"{100 * x:.2f}" for x in np.mean(self.basis.realised, axis=0))
        return (f"the basis' own simulated curves Δ_k(c) (cells at {knots} at.%; piecewise linear in c through 0, "
                "extended beyond the last; the curves unmixing fits, so no model error: the limit set by resolution "
                "and counting noise)")

    def signature(self, mix: dict, index: int) -> np.ndarray:
        """Δ (B,) per meV of ``mix`` {element: atomic fraction} (``index``: the measurement, unused)."""
        from defectnet.unmix import curve_and_slope

        b = self.basis
        out = np.zeros(b.grid.n_bins)
        for el, c in mix.items():
            k = b.elements.index(el)
            out += curve_and_slope(b.realised[k], b.curves[self.kind][k], c)[0]
        return out

    def realised(self, element: str, c: float) -> float:
        return float(c)


class SynthesisEngine:
    """Δ from fresh placements of the host's patches (:class:`~defectnet.synthesis.Synthesizer`),
    ``placements`` seeds per concentration starting at :data:`PLACEMENT_SEED` + seed × placements."""

    name = "synthesis"

    def __init__(self, basis, config: LimitsConfig, synthesizer=None):
        from defectnet.synthesis import Synthesizer

        self.kind, self.placements = config.kind, config.placements
        self.first_seed = PLACEMENT_SEED + config.seed * config.placements
        self.synthesizer = synthesizer if synthesizer is not None else Synthesizer.from_basis(basis)
        self._cache: dict = {}

    def describe(self) -> str:
        return (f"fresh placements of the host's patches in its {self.atoms}-atom supercell (Synthesizer; "
                f"{self.placements} placements per concentration, seeds {self.first_seed}…, not the basis'; a "
                "concentration is a whole number of dopant atoms, below half an atom the cell is pristine)")

    @property
    def atoms(self) -> int:
        return len(self.synthesizer.host.supercell)

    def signature(self, mix: dict, index: int) -> np.ndarray:
        seed = self.first_seed + index % self.placements
        key = (tuple(sorted(mix.items())), seed)
        if key not in self._cache:
            self._cache[key] = self.synthesizer.signature(mix, kind=self.kind, seed=seed)
        return self._cache[key]

    def realised(self, element: str, c: float) -> float:
        return round(c * self.atoms) / self.atoms


#: Forward models of a candidate's doped spectrum, by name.
ENGINES = {"curves": CurvesEngine, "synthesis": SynthesisEngine}


# ----------------------------------------------------------------------------- predictors
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


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CandidateLimit:
    """One candidate's detection limit and the rates it rests on.

    Attributes
    ----------
    element : str
    limit : float or None
        Atomic fraction: the least tested concentration detected in ≥ ``min_rate`` of the
        measurements (and every tested one above it); None when even ``c_max`` is not.
    concentrations : tuple of float, length T
        The tested grid concentrations, increasing (atomic fractions).
    rates : tuple of float, length T
        Share of the measurements with presence ≥ ``min_presence`` at each.
    read : tuple of float, length T
        Median concentration the predictor read at each (atomic fractions).
    realised : tuple of float, length T
        The concentration simulated at each (the synthesis engine's whole atoms; else the grid's).
    false_alarm : float
        Share of blank measurements (no candidate) with presence ≥ ``min_presence``.
    measurements : int
        Measurements per tested concentration asked for.
    measured : tuple of int, length T
        Measurements made at each: all of them in a scan; in a bisection, chunk by chunk until
        the verdict was certain (a pass needs ⌈min_rate · measurements⌉ detections, so the
        verdict, and the limit, are those of all the measurements; ``rates`` are over these).
    """

    element: str
    limit: float | None
    concentrations: tuple
    rates: tuple
    read: tuple
    realised: tuple
    false_alarm: float
    measurements: int
    measured: tuple = ()

    @property
    def below_range(self) -> bool:
        """True when the lowest grid concentration is already detected: the limit is at or below it."""
        return self.limit is not None and self.limit <= self.concentrations[0] * (1 + 1e-9)

    def rate_at(self, c: float | None) -> float | None:
        """The detection rate at tested concentration ``c`` (None if not tested)."""
        for x, r in zip(self.concentrations, self.rates):
            if c is not None and math.isclose(x, c, rel_tol=1e-9):
                return r
        return None

    def rate_below(self) -> float | None:
        """The rate at the tested concentration just below the limit (None if none was)."""
        below = [r for x, r in zip(self.concentrations, self.rates) if self.limit is None or x < self.limit * (1 - 1e-9)]
        return below[-1] if below else None


@dataclass
class DetectionLimits:
    """Detection limits of a host's candidates, with how they were computed.

    Attributes
    ----------
    host : str
    config : LimitsConfig
    limits : tuple of CandidateLimit
    method : dict
        How it was computed, in words and numbers: ``engine``, ``predictor``, ``resolution``
        (the model's ``to_dict``), ``noise`` (its equivalents: ``counts`` over the grid and the
        relative error at the pristine's peak bin), ``grid`` (step factor), ``basis``.
    provenance : dict
        :func:`defectnet.provenance.provenance` of the run.
    notes : list of str
        What to know beside the numbers (candidates too alike to tell apart).
    """

    host: str
    config: LimitsConfig
    limits: tuple
    method: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __getitem__(self, element: str) -> CandidateLimit:
        for lim in self.limits:
            if lim.element == element:
                return lim
        raise KeyError(element)

    def summary(self) -> str:
        """The settings in one line."""
        c, n = self.config, self.method.get("noise", {})
        return (f"{self.host}: presence ≥ {c.min_presence:g} in ≥ {100 * c.min_rate:g} % of {c.measurements} simulated "
                f"measurements; resolution {c.resolution}, noise {c.noise:g} (≈ {n.get('counts', float('nan')):.2g} "
                f"counts over the grid, {100 * n.get('peak_relative', float('nan')):.2g} % at the pristine's peak bin), "
                f"{c.kind}")

    def table(self) -> str:
        """Plain text: per candidate the limit (at.%), the rate there and just below, false alarms, how."""
        head = f"{'candidate':<10} {'limit at.%':>10} {'rate there':>10} {'rate below':>10} {'false alarms':>12}  tested"
        lines = [self.summary(), head]
        for lim in self.limits:
            below = lim.rate_below()
            text = ("> " + _pct(self.config.c_max) if lim.limit is None else
                    ("≤ " if lim.below_range else "") + _pct(lim.limit))
            there = lim.rate_at(lim.limit)
            placed = dict(zip(lim.concentrations, lim.realised)).get(lim.limit)
            if placed is not None and not math.isclose(placed, lim.limit, rel_tol=1e-6):
                text += f" ({_pct(placed)} placed)"  # the synthesis engine: whole dopant atoms
            lines.append(f"{lim.element:<10} {text:>10} {_rate(there):>10} {_rate(below):>10} "
                         f"{lim.false_alarm:12.2f}  {len(lim.concentrations)}")
        lines += [f"{HOW[k]}: {self.method[k]['text']}" for k in HOW
                  if isinstance(self.method.get(k), dict) and "text" in self.method[k]]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return {"host": self.host, "config": self.config.to_dict(), "method": self.method,
                "units": {"limit": "atomic fraction", "concentrations": "atomic fraction", "read": "atomic fraction"},
                "limits": [asdict(lim) | {"below_range": lim.below_range} for lim in self.limits],
                "notes": self.notes, "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict) -> DetectionLimits:
        names = {f.name for f in fields(CandidateLimit)}
        lims = tuple(CandidateLimit(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k in names})
                     for row in d["limits"])
        return cls(d["host"], LimitsConfig.from_dict(d["config"]), lims, d.get("method", {}), d.get("provenance", {}),
                   list(d.get("notes", [])))

    def write_json(self, path) -> Path:
        """Write :meth:`to_dict` (settings, how, numbers, provenance) as JSON; returns the path."""
        from defectnet.prediction import writing

        p = Path(path)
        with writing(p, "the detection limits as JSON"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p

    def plot(self, path) -> Path:
        """Detection rate against concentration (log axis) per candidate, limits marked; a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from defectnet.prediction import writing

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, lim in enumerate(self.limits):
            order = np.argsort(lim.concentrations)
            x = 100 * np.asarray(lim.concentrations)[order]
            ax.plot(x, np.asarray(lim.rates)[order], "o-", color=f"C{i % 10}", ms=4, lw=1,
                    label=f"{lim.element}: " + ("not reached" if lim.limit is None else f"{100 * lim.limit:.3g} at.%"))
            if lim.limit is not None:
                ax.axvline(100 * lim.limit, color=f"C{i % 10}", lw=0.6, ls=":")
        ax.axhline(self.config.min_rate, color="0.5", lw=0.8, ls="--")
        ax.set(xscale="log", ylim=(-0.03, 1.03), xlim=(100 * self.config.c_min / 1.2, 100 * self.config.c_max * 1.2),
               xlabel="concentration (at.%)", ylabel=f"share with presence ≥ {self.config.min_presence:g}")
        ax.set_title(f"{self.host}: {self.config.resolution}, noise {self.config.noise:g}, "
                     f"{self.config.measurements} measurements each", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        fig.text(0.01, 0.01, f"forward model: {self.config.engine}; predictor: {self.config.predictor}", fontsize=7,
                 color="0.4")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        p = Path(path)
        try:
            with writing(p, "the plot"):
                p.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(p, dpi=120, format=None if p.suffix else "png")
        finally:
            plt.close(fig)
        return p


#: The parts of :attr:`DetectionLimits.method` the table states, with their labels.
HOW = {"engine": "forward model", "predictor": "predictor", "resolution": "resolution", "noise": "noise",
       "grid": "concentrations"}


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g}"


def _rate(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}"


# ----------------------------------------------------------------------------- the planner
def detection_limits(basis, config: LimitsConfig | None = None, *, host: str | None = None, synthesizer=None,
                     progress: bool = False, **kw) -> DetectionLimits:
    """Per candidate of ``basis``, the least concentration simulated measurements detect (module docstring).

    Parameters
    ----------
    basis : SignatureBasis, str or Path
        The host's signature basis (``defectnet basis``); a path is loaded.
    config : LimitsConfig, optional
        Built from the keyword arguments if not given (``resolution="tosca", noise=0.05`` ...).
    host : str, optional
        The host the user means; refused when it is not the basis' host.
    synthesizer : Synthesizer, optional
        The synthesis engine's forward model; default :meth:`~defectnet.synthesis.Synthesizer.from_basis`.
    progress : bool
        A progress bar on stderr.

    Returns
    -------
    DetectionLimits
    """
    from defectnet.provenance import LIBRARIES, provenance
    from defectnet.resolution import get_resolution
    from defectnet.unmix import SignatureBasis

    config = config or LimitsConfig(**kw)
    if not isinstance(basis, SignatureBasis):
        basis = SignatureBasis.load(basis)
    if host is not None and host != basis.host:
        raise DefectnetError(f"the basis is of {basis.host}, not of {host}: give the basis of the host to plan for")
    scanned, background = _candidates(basis, config)
    told = list(dict.fromkeys([*scanned, *background]))  # what the predictor is given
    fixed = {el: c for el, (_, c) in zip(background, config.background)}  # in every doped sample
    resolution = get_resolution(config.resolution)
    sim = _Measurements(basis, config, ENGINES[config.engine](basis, config, synthesizer), resolution, told)
    bar = _progress_bar(basis, config, len(scanned)) if progress else None
    blank = sim.measure(fixed, *_draws(config, 0, basis.grid.n_bins))["presence"] >= config.min_presence  # (n, K)
    if bar is not None:
        bar.update(1)
    limits = [_candidate_limit(sim, el, fixed, blank, bar) for el in scanned]
    if bar is not None:
        bar.close()
    method = _method(basis, config, sim.engine, resolution, sim.pristine) | {
        "predictor": {"name": config.predictor, "text": PREDICTOR_TEXT.get(config.predictor) or _first_line(sim.predictor)}}
    twins = [f"{a}/{b}: signatures too alike to tell apart (cosine {cos:.3f} at this resolution); the predictor "
             "splits their sum between them, so either may stay below the presence asked"
             for a, b, cos in sim.reading.alike(config.kind, among=told) if cos > TWIN_COSINE]
    return DetectionLimits(basis.host, config, tuple(limits), method, provenance(packages=(*LIBRARIES, "resins")), twins)


class _Measurements:
    """Simulated measurements of one basis' host under one :class:`LimitsConfig`, read by its predictor.

    ``told`` are the candidates the predictor is given; ``reading`` the basis it reads against
    (broadened to the instrument's resolution unless ``config.match_basis`` is False).
    """

    def __init__(self, basis, config: LimitsConfig, engine, resolution, told: list[str]):
        self.basis, self.config, self.engine, self.told = basis, config, engine, told
        self.predictor = PREDICTORS[config.predictor]
        self.kernel = broadening_kernel(basis, resolution)
        self.pristine = _broaden(basis.pristine[config.kind], self.kernel, basis.grid.widths)
        self.reading = broadened_basis(basis, self.kernel, config.resolution) if config.match_basis else basis

    def measure(self, mix: dict, z_pristine, z_doped, rows=None) -> dict:
        config, basis, widths = self.config, self.basis, self.basis.grid.widths
        rows = range(config.measurements) if rows is None else rows
        doped = np.array([_broaden(basis.pristine[config.kind] + self.engine.signature(mix, i), self.kernel, widths)
                          for i in rows])
        return self.predictor(counting_noise(self.pristine, basis.grid, config.noise, z_pristine[rows]),
                              counting_noise(doped, basis.grid, config.noise, z_doped[rows]), self.reading, self.told,
                              kind=config.kind)

    def detections(self, mix: dict, z, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(detected (m,), concentration read (m,)) of the candidate in column ``j`` over the measurements made:
        all of them for a scan; in a bisection, chunk by chunk until the verdict on ``min_rate`` is certain."""
        config = self.config
        need = math.ceil(config.min_rate * config.measurements - 1e-9)  # detections for a pass
        hits, read = [], []
        chunks = [range(config.measurements)] if config.search == "scan" else [
            range(a, min(a + SEQUENTIAL_CHUNK, config.measurements))
            for a in range(0, config.measurements, SEQUENTIAL_CHUNK)]
        for rows in chunks:
            out = self.measure(mix, *z, rows=rows)
            hits += list(out["presence"][:, j] >= config.min_presence)
            read += list(out["concentration"][:, j])
            if sum(hits) >= need or len(hits) - sum(hits) > config.measurements - need:
                break
        return np.array(hits), np.array(read)


def _progress_bar(basis, config: LimitsConfig, n_candidates: int):
    from tqdm.auto import tqdm

    steps = config.n_concentrations if config.search == "scan" else math.ceil(math.log2(config.n_concentrations)) + 2
    return tqdm(total=1 + steps * n_candidates, desc=f"detection limits in {basis.host}", unit="concentration")


def _candidate_limit(sim: _Measurements, el: str, fixed: dict, blank: np.ndarray, bar) -> CandidateLimit:
    """The limit of candidate ``el`` alone (with the ``fixed`` background) over the concentration grid."""
    config, basis, grid = sim.config, sim.basis, sim.config.concentrations
    j, z = sim.told.index(el), _draws(config, 1 + basis.elements.index(el), basis.grid.n_bins)
    tested: dict[int, tuple[float, float, int]] = {}

    def passes(i: int) -> bool:
        if i not in tested:
            hits, read = sim.detections({el: grid[i], **fixed}, z, j)
            tested[i] = (float(np.mean(hits)), float(np.median(read)), len(hits))
            if bar is not None:
                bar.update(1)
        return tested[i][0] >= config.min_rate

    found = _search(passes, len(grid), config.search)
    idx = sorted(tested)
    return CandidateLimit(
        element=el, limit=None if found is None else float(grid[found]),
        concentrations=tuple(float(grid[i]) for i in idx), rates=tuple(tested[i][0] for i in idx),
        read=tuple(tested[i][1] for i in idx), realised=tuple(sim.engine.realised(el, float(grid[i])) for i in idx),
        false_alarm=float(np.mean(blank[:, j])), measurements=config.measurements,
        measured=tuple(tested[i][2] for i in idx))


def _candidates(basis, config: LimitsConfig) -> tuple[list[str], list[str]]:
    """(elements whose limits are found, elements of the background), checked against the basis."""
    from defectnet.checks import split_candidate

    def element(text: str) -> str:
        el, _ = split_candidate(text)
        if el in basis.failed:
            raise DefectnetError(f"candidate {text} has no signature in the basis of {basis.host} (no stable position: "
                                 f"{basis.failed[el]})")
        if el not in basis.elements:
            raise DefectnetError(f"candidate {text} is not in the basis of {basis.host}; expected some of "
                                 f"{', '.join(basis.elements)}")
        return el

    background = [element(el) for el, _ in config.background]
    scanned = [element(c) for c in config.candidates] or [el for el in basis.elements if el not in background]
    both = sorted(set(scanned) & set(background))
    if both:
        raise DefectnetError(f"{', '.join(both)} is in the background mix and among the candidates to scan; a "
                             "candidate's limit is found with the others absent")
    if not scanned:
        raise DefectnetError(f"no candidate of the basis of {basis.host} is left to scan outside the background")
    return scanned, background


def _search(passes, n: int, how: str) -> int | None:
    """Index of the least grid point that passes (and every one above it), or None if the top one fails."""
    if how == "scan":
        ok = [passes(i) for i in range(n)]
        if not ok[-1]:
            return None
        i = n - 1
        while i > 0 and ok[i - 1]:
            i -= 1
        return i
    if not passes(n - 1):
        return None
    if passes(0):
        return 0
    lo, hi = 0, n - 1  # lo fails, hi passes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return hi


def _draws(config: LimitsConfig, stream: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal draws (measurements, B) for the pristine and the doped of one candidate
    (``stream``: 0 the blank, 1 + its index in the basis), the same at every concentration."""
    rng = np.random.default_rng([config.seed, stream])
    return rng.standard_normal((config.measurements, n_bins)), rng.standard_normal((config.measurements, n_bins))


def counting_noise(values, grid, noise: float, z) -> np.ndarray:
    """Spectra with relative counting noise, renormalised (the convention of :class:`~defectnet.model.augment.Augment`).

    Parameters
    ----------
    values : ndarray (..., B)
        Unit-area spectra on ``grid``, per meV.
    grid : EnergyGrid
    noise : float
        Relative error of a bin holding the mean share 1/B of the area: each bin's share q gets
        noise · √(q / B) · z (Poisson statistics of B / noise² counts), then is clipped at 0.
    z : ndarray (..., B)
        Standard normal draws.

    Returns
    -------
    ndarray (..., B)
        Unit area, per meV.
    """
    w = grid.widths
    q = np.asarray(values, float) * w
    q = np.clip(q + noise * np.sqrt(np.clip(q, 0.0, None) / q.shape[-1]) * z, 0.0, None)
    return q / q.sum(axis=-1, keepdims=True) / w


def broadening_kernel(basis, resolution) -> np.ndarray:
    """(B, B) K with shares_new = shares @ K: the Gaussian that takes the basis' own broadening b(E) to the
    instrument's R(E) (FWHM √(R² − b²), none where R ≤ b), each row's area kept on the grid."""
    from defectnet.resolution import FWHM_PER_SIGMA, get_resolution
    from defectnet.spectrum import gaussian_shares

    e, edges = basis.grid.centers, basis.grid.edges
    extra = np.sqrt(np.clip(resolution.fwhm_mev(e) ** 2 - _own_fwhm(basis, get_resolution)(e) ** 2, 0.0, None))
    return gaussian_shares(edges, e, np.maximum(extra / FWHM_PER_SIGMA, 1e-6), np.eye(e.size), "both")


def _own_fwhm(basis, get_resolution):
    """E (meV) -> the FWHM (meV) the basis' spectra were broadened with."""
    sim = basis.config.get("simulation") or {}
    return get_resolution(sim.get("resolution") or float(sim.get("fwhm_mev") or 1.0)).fwhm_mev


def _broaden(values, kernel, widths) -> np.ndarray:
    """``values`` (..., B) per meV through the broadening ``kernel``."""
    return (np.asarray(values, float) * widths) @ kernel / widths


def broadened_basis(basis, kernel, resolution: str):
    """``basis`` as if simulated at the instrument's resolution (``defectnet basis --resolution``): its pristine,
    signatures and curves through ``kernel``."""
    from dataclasses import replace

    widths = basis.grid.widths
    sim = {**(basis.config.get("simulation") or {}), "resolution": resolution}
    return replace(basis, pristine={k: _broaden(v, kernel, widths) for k, v in basis.pristine.items()},
                   signatures={k: _broaden(v, kernel, widths) for k, v in basis.signatures.items()},
                   curves={k: _broaden(v, kernel, widths) for k, v in basis.curves.items()},
                   config={**basis.config, "simulation": sim})


def _first_line(fn) -> str:
    return " ".join((fn.__doc__ or fn.__name__).strip().split("\n\n")[0].split())


def _method(basis, config: LimitsConfig, engine, resolution, pristine) -> dict:
    """How the limits were computed, in words and numbers, for the output."""
    from defectnet.predict import DETECTION_THRESHOLD_AT_PCT

    grid = config.concentrations
    step = float(grid[1] / grid[0])
    sim = basis.config.get("simulation") or {}
    own = sim.get("resolution") or f"{sim.get('fwhm_mev', 1.0)} meV FWHM"
    peak = float(np.max(pristine * basis.grid.widths))
    n_bins = basis.grid.n_bins
    e = np.array([10.0, 50.0, 100.0, 300.0])
    return {
        "engine": {"name": engine.name, "text": engine.describe()},
        "grid": {"step_factor": step, "text": (
            f"concentrations {_pct(grid[0])}–{_pct(grid[-1])} at.% on a log grid of {len(grid)} (×{step:.2f} per "
            f"step), {'bisection (the rate assumed to grow with c; a concentration measured ' + str(SEQUENTIAL_CHUNK) + ' at a time until its verdict is certain)' if config.search == 'bisect' else 'every point'}; "
            "the same noise draws at every concentration of a candidate; presence is the probability of ≥ "
            f"{DETECTION_THRESHOLD_AT_PCT:g} at.%, so the limit lies above that")},
        "resolution": {"model": resolution.to_dict(), "fwhm_mev": dict(zip(map(str, e), resolution.fwhm_mev(e).tolist())),
                       "basis_broadening": own,
                       "text": f"the instrument's on top of the basis' own broadening ({own}), in quadrature; the predictor reads "
                               + ("against the basis broadened alike (as a basis simulated at the instrument's resolution)"
                                  if config.match_basis else f"against the basis as given ({own})")},
        "noise": {"relative": config.noise, "counts": n_bins / config.noise ** 2,
                  "peak_relative": config.noise / math.sqrt(n_bins * peak), "bins": n_bins,
                  "text": "each bin's share q of pristine and doped (independently) gets noise·√(q/B)·N(0,1), "
                          "clipped at 0, renormalised: Poisson statistics of B/noise² counts over the grid"},
        "basis": {"host": basis.host, "elements": list(basis.elements), "candidates": basis.config.get("candidates"),
                  "potential": sim.get("potential"), "tier": sim.get("tier"), "grid_id": basis.grid.grid_id},
    }
