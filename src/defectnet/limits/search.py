"""The planner: :func:`detection_limits`, its simulated measurements and the search over the concentration grid."""

from __future__ import annotations

import math

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.limits.config import LimitsConfig
from defectnet.limits.engines import ENGINES
from defectnet.limits.instrument import broaden, broadened_basis, broadening_kernel, counting_noise
from defectnet.limits.predictors import PREDICTOR_TEXT, PREDICTORS
from defectnet.limits.results import CandidateLimit, DetectionLimits, pct

#: Candidates whose signatures (as the predictor reads them) have a cosine above this are twins: no spectrum
#: tells them apart, and the predictor splits their sum between them (predict notes them at the same value).
TWIN_COSINE = 0.95
#: A bisection measures a concentration this many measurements at a time, and stops once the verdict is certain.
SEQUENTIAL_CHUNK = 5


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
        self.pristine = broaden(basis.pristine[config.kind], self.kernel, basis.grid.widths)
        self.reading = broadened_basis(basis, self.kernel, config.resolution) if config.match_basis else basis

    def measure(self, mix: dict, z_pristine, z_doped, rows=None) -> dict:
        config, basis, widths = self.config, self.basis, self.basis.grid.widths
        rows = range(config.measurements) if rows is None else rows
        doped = np.array([broaden(basis.pristine[config.kind] + self.engine.signature(mix, i), self.kernel, widths)
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
            f"concentrations {pct(grid[0])}–{pct(grid[-1])} at.% on a log grid of {len(grid)} (×{step:.2f} per "
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
