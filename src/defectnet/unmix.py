"""Analysis by synthesis: a host's simulated defect signatures, and the unmixing of a measured one.

DefectNet has to learn, from other hosts, what a dopant does to a host it has never seen; on
never-seen hosts that is its weakness (README, "Against knowing nothing"). When the host is
known, the spectra engine can instead simulate what each candidate does *to this host*: the
signature Δ_k(c) = g_doped − g_pristine of candidate k alone at a few concentrations (1, 5
and 15 at.% by default), one doped supercell each. Signatures are far from linear in c: a
light dopant's sharp local mode at 1 at.% becomes a broad impurity band at 15 at.%, so its
signature per unit concentration, projected on the mean one, falls by up to 4× (Be in InAs).
The basis therefore keeps the whole curve, and a measured signature Δ is unmixed with c_k ≥ 0
by bounded nonlinear least squares, started from the linear (non-negative least squares)
solution, under two physical readings of the curves (:data:`METHODS`): each candidate on its
own curve, Δ ≈ Σ Δ_k(c_k), or each at the host's total dopant fraction, Δ ≈ Σ c_k s_k(Σ c),
s_k = Δ_k/c (the host saturates with all its dopants together: Ag and Al in Cu). The reading
with the smaller residual is kept. Residuals are weighted by the bin widths so that the fit is
an integral over energy, not a sum over bins. How this compares with the model on hosts the
model never saw is measured in ``benchmarks/unmix.py`` (README).

A mix of several dopants at 10–30 % gives less signal than the sum of their curves, so such
mixes are read low. :func:`defectnet.synthesis.refine` corrects them with the forward model
itself (``benchmarks/refine.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# BasisConfig and basis_files are re-exported: callers import the basis route from here
from defectnet.signatures import KINDS, BasisConfig, SignatureBasis, basis_files  # noqa: F401
from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid
from defectnet.prediction import DETECTION_THRESHOLD_AT_PCT
from defectnet.spectrum import BAND_EDGE_QUANTILE, area_quantile_mev

#: Fitted concentrations below this atomic fraction (0.001 at.%) are reported as 0 (absent).
MIN_FRACTION = 1e-5
#: ``presence`` is the probability of at least this atomic fraction: predict's detection threshold.
DETECTION_FRACTION = DETECTION_THRESHOLD_AT_PCT / 100
#: The least-squares 1σ counts only what the residual shows; placement and additivity errors
#: that the basis shares with the fit do not show there. This factor makes ±1σ cover 68 % of
#: the true dopants of the never-seen hosts of ``benchmarks/unmix.py`` (its ``sigma_scale``).
SIGMA_SCALE = 3.25
#: How a candidate's signature depends on concentration in :func:`unmix`: ``curve``, Δ_k(c_k) on
#: its own simulated curve; ``total``, c_k times its signature per unit concentration at the
#: total dopant fraction C = Σ c_j (the host saturates with all its dopants together);
#: ``auto``, both fitted and the one with the smaller residual kept; ``linear``, the mean slope.
METHODS = ("auto", "curve", "total", "linear")
#: Step of the energy-scale search of :func:`unmix` (fractional).
STRETCH_STEP = 0.01
#: A candidate's signature moves in :func:`unmix` only if at least this share of its area
#: (of |Δ|) lies above the band edge: a local mode, not the edge's own tail.
MODE_SHARE = 0.05


@dataclass(frozen=True)
class UnmixResult(Mapping):
    """What :func:`unmix` and :func:`~defectnet.synthesis.refine` read: a mapping of the candidates to
    their estimates, and the record of the fit.

    Parameters
    ----------
    estimates : dict
        ``{element: {"concentration": atomic fraction, "uncertainty": 1σ, "presence": P(c ≥ 0.1 at.%)}}``,
        every candidate asked for; ``result[element]`` and iteration read it.
    fit : dict
        ``residual_fraction`` (‖Δ − Σ Δ_k(c_k)‖ / ‖Δ‖, 0 = explained), ``residual_range_mev``,
        ``model`` (the reading kept, :data:`METHODS`, or ``"refined"``), ``unstable`` ({element:
        why}) and what the fit adds (:func:`unmix`'s ``modes``, :func:`~defectnet.synthesis.refine`'s
        ``start``, ``iteration`` and ``history``).
    """

    estimates: dict
    fit: dict

    def __getitem__(self, element: str) -> dict:
        return self.estimates[element]

    def __iter__(self):
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)


def signature_basis(host, candidates, config: BasisConfig = BasisConfig(), *, pristine_host=None,
                    checkpoint=None, progress: bool = True, synthesis: bool = True, workers: int = 1) -> SignatureBasis:
    """Simulate each candidate dopant's signature in ``host`` at the configured concentrations.

    Parameters
    ----------
    host : str, path or ase.Atoms
        As for :func:`~defectnet.simulate.simulate_spectra`.
    candidates : list of str
        ``"Si"`` (site chosen as the simulator does) or ``"Si@Ga"``.
    config : BasisConfig
    pristine_host : PristineHost, optional
        A host already relaxed with force constants; its patch cache is filled and reused,
        so each (site, dopant) patch is computed once for all concentrations.
    checkpoint : path, optional
        A file each finished cell is written to as it completes (atomically); run again with
        the same arguments after a crash and finished cells are read back, not recomputed.
        Cells of another configuration are ignored.
    synthesis : bool
        Keep the relaxed host and the candidates' patches in the basis (``synthesis``), so
        that :func:`defectnet.synthesis.refine` can simulate any mix of them (~50 kB per candidate).
        Not kept when every cell came from the checkpoint (nothing was computed).
    workers : int
        Processes computing the candidates' force-constant patches at once (the costly part;
        :meth:`~defectnet.host.Host.compute_patches`), before the cells are simulated one by one.

    Returns
    -------
    SignatureBasis
        Candidates whose dopant has no stable position on its site are listed in ``failed``
        and have no signature.
    """
    from defectnet.host import Host

    engine = Host.load(host, config.simulation, pristine=pristine_host, progress=progress)
    return engine.basis(candidates, config.concentrations, placements=config.placements, checkpoint=checkpoint,
                        synthesis=synthesis, workers=workers)


def unmix(pristine, doped, basis: SignatureBasis, *, kind: str = "pdos", candidates=None,
          method: str = "auto", stretch: float = 0.0, errors=None) -> UnmixResult:
    """Concentrations of the basis' candidates in a measured signature.

    Parameters
    ----------
    pristine, doped : ndarray (B,)
        Unit-area spectra on the basis grid, per meV (measured, or simulated).
    basis : SignatureBasis
    kind : {'pdos', 'gpdos'}
        Which spectra ``pristine`` and ``doped`` are.
    candidates : list of str, optional
        A subset of ``basis.elements`` (default: all).
    method : {'auto', 'curve', 'total', 'linear'}
        How signatures depend on concentration (:data:`METHODS`). Each candidate's simulated
        cells make a curve piecewise linear in c; ``curve`` and ``total`` read it at the
        candidate's own and at the total dopant fraction, ``linear`` uses its mean slope
        (non-negative least squares, which also starts the other fits).
    stretch : float
        Energy freedom of each candidate's signature, a fraction (0.2 = ±20 %): the part of a
        candidate's signature above the host's band edge (its local modes) may move to
        energies scaled by s_k ∈ [1 − stretch, 1 + stretch], area kept (:func:`stretched`).
        A measured local mode is rarely where a potential puts it (Si on Ga in GaAs: 7net-0
        26 % low against IR, ``benchmarks/lvm.py``); each s_k is found by a search in steps of
        :data:`STRETCH_STEP` with the other scales held, twice over the candidates, then the
        concentrations are fitted on the moved curves. 0 = the basis as simulated.
    errors : ndarray (B,), optional
        The measured 1σ of Δ = doped − pristine in each bin, per meV (all > 0; independent bins):
        residuals are weighted by 1/σ instead of √(bin width) (:func:`fit_weights`), and the 1σ
        of the answer is the least-squares covariance with these errors, not the residual's scale,
        widened by :func:`error_inflation` when χ²/dof shows the basis' own error.

    Returns
    -------
    UnmixResult
        ``result[element]`` is ``{"concentration": atomic fraction, "uncertainty": 1σ, "presence":
        P(c ≥ 0.1 at.%)}``; ``result.fit`` has the fit's ``residual_fraction`` (‖Δ − Σ Δ_k(c_k)‖ / ‖Δ‖, 0 =
        explained), ``unstable`` ({element: why}: candidates with no stable site, reported
        as 0) and, with ``stretch``, ``modes`` ({element: {"scale", "basis_mev", "fitted_mev"}}:
        each present candidate's scale and the peak of its signature above the band edge, as
        simulated and as fitted). The 1σ is the least-squares standard error at the solution, with the residual
        (what the basis cannot explain) as the noise level, or with ``errors`` the covariance
        (J^T W J)^-1 with W = 1/σ², times ``fit["sigma_inflation"]`` (:func:`error_inflation`; the result's
        ``fit`` then has ``weights: "errors"``, ``chi2_reduced`` over the bins with signal and ``sigma_inflation``); an
        absent candidate gets the error it would have if it were present beside the others.
    """

    if kind not in KINDS:
        raise DefectnetError(f"kind must be one of {KINDS}, got {kind!r}")
    if method not in METHODS:
        raise DefectnetError(f"method must be one of {METHODS}, got {method!r}")
    asked = list(basis.elements if candidates is None else candidates)
    cands = [c for c in asked if c not in basis.failed]
    missing = [c for c in cands if c not in basis.elements]
    if missing:
        raise DefectnetError(f"candidates {missing} are not in the basis of {basis.host} ({', '.join(basis.elements)})")
    p, d = np.asarray(pristine, float), np.asarray(doped, float)
    if p.shape != (basis.grid.n_bins,) or d.shape != p.shape:
        raise DefectnetError(f"spectra have shapes {p.shape} and {d.shape}; the basis needs ({basis.grid.n_bins},) "
                             f"on grid {basis.grid.grid_id}")
    if not 0 <= stretch < 1:
        raise DefectnetError(f"stretch must be a fraction in [0, 1), got {stretch!r}")
    sw = fit_weights(errors, basis.grid)
    cols = [basis.elements.index(c) for c in cands]
    y = (d - p) * sw
    edge = band_edge_mev(basis.pristine[kind], basis.grid)
    scales = _search_scales(basis, kind, cols, y, edge, stretch, sw) if stretch > 0 else np.ones(len(cols))
    moved = [stretched(basis.curves[kind][k], basis.grid, edge, s) for k, s in zip(cols, scales)]
    knots, curves = basis.realised[cols], np.array(moved) * sw  # (K, n), (K, n, B)
    slopes = np.array([stretched(basis.signatures[kind][k], basis.grid, edge, s) for k, s in zip(cols, scales)])
    c, fitted, J, name = _fit_concentrations(knots, curves, slopes.T * sw[:, None], y, method)
    fit = {"model": name, "unstable": {el: basis.failed[el] for el in asked if el in basis.failed},
           **residual_summary(y - fitted, (d - p) * np.sqrt(basis.grid.widths), sw, basis.grid, errors is not None)}
    if stretch > 0:
        fit["modes"] = {el: _moved_mode(basis.signatures[kind][k], basis.grid, edge, s)
                        for el, k, s, ci in zip(cands, cols, scales, c)
                        if ci > 0 and _share_above(basis.signatures[kind][k], basis.grid, edge) >= MODE_SHARE}
    return unmix_result(asked, cands, c, J, y - fitted, y, curves, fit, measured=errors is not None)


def fit_weights(errors, grid: EnergyGrid) -> np.ndarray:
    """The weight of each bin's residual in :func:`unmix` (B,): √(bin width) without ``errors``, so that
    the fit is an integral over energy, else 1/σ (χ²). For counting noise σ² of a bin's mean density
    goes as 1/width, so 1/σ ∝ √(width): errors uniform per meV give the unweighted fit."""
    if errors is None:
        return np.sqrt(grid.widths)
    e = np.asarray(errors, float)
    if e.shape != (grid.n_bins,):
        raise DefectnetError(f"errors have shape {e.shape}; the basis needs ({grid.n_bins},) on grid {grid.grid_id}")
    if not np.all(np.isfinite(e) & (e > 0)):
        i = int(np.argmin(np.where(np.isfinite(e), e, -np.inf)))
        raise DefectnetError(f"error {e[i]:g} at {grid.centers[i]:.3g} meV; expected every 1σ of Δ finite and > 0")
    return 1.0 / e


def residual_summary(r, delta, sw, grid: EnergyGrid, measured: bool) -> dict:
    """What a fit of Δ says of its residual ``r`` (B,), weighted by ``sw`` (B,) (:func:`fit_weights`), on the
    unweighted scale whatever the weights (an integral over energy): ``residual_range_mev`` (meV) and, when
    ``measured`` (weighted by errors), ``weights: "errors"`` and ``residual_fraction``, ‖r‖/‖Δ‖ with Δ
    (``delta`` (B,), per meV × √width) and r both × √width, as without errors."""
    unweighted = r * np.sqrt(grid.widths) / sw
    out = {"residual_range_mev": residual_range_mev(unweighted, grid)}
    if measured:
        out |= {"weights": "errors",
                "residual_fraction": float(np.linalg.norm(unweighted) / max(np.linalg.norm(delta), 1e-300))}
    return out


def error_inflation(chi2: float, dof: int, tau: float) -> float:
    """The factor (≥ 1) on the 1σ of a fit weighted by measured errors: 1 (counting noise alone) unless the
    residual exceeds the errors.

    A χ²/dof above what counting noise gives (1 + 2√(2/dof), its 2σ fluctuation) is the basis' own error
    (placement, mixing, potential), which does not average out over the bins: its excess is read as a
    variance, with the residual's correlation time ``tau`` (bins) counted and times :data:`SIGMA_SCALE`²
    (what the residual-based 1σ without errors needs for the same basis errors):
    σ = σ_counting · √(1 + max(0, χ²/dof − 1 − 2√(2/dof)) · τ · SIGMA_SCALE²). ``benchmarks/error_calibration.py``
    measures it: ±1σ covers 0.61–0.76 of the true dopants with the basis' own curves and on spectra simulated
    afresh (16 hosts), where the Birge ratio √(χ²/dof) alone covers 0.16–0.24 on the latter.

    Parameters
    ----------
    chi2 : float
        χ²/dof of the residual in units of the measured σ, over the bins where Δ or the basis has signal.
    dof : int
        Those bins less the candidates fitted present.
    tau : float
        The residual's integrated autocorrelation time over those bins, in bins (1: independent).

    Returns
    -------
    float
        The factor on the covariance 1σ, ≥ 1.
    """
    excess = max(0.0, chi2 - 1.0 - 2.0 * np.sqrt(2.0 / max(dof, 1)))
    return float(np.sqrt(1.0 + excess * tau * SIGMA_SCALE ** 2))


def _fit_concentrations(knots, curves, A, y, method: str):
    """(c (K,), fitted (B,), Jacobian (B, K), model name) of :func:`unmix`'s fit of ``y`` (B,): NNLS on
    the slopes ``A`` (B, K), then, unless ``method`` is ``linear``, bounded least squares on the
    curves (K, n, B) at ``knots`` (K, n) under each reading :data:`METHODS` names; the best kept."""
    from scipy.optimize import least_squares, nnls

    models = {"curve": lambda c: own_curves(knots, curves, c), "total": lambda c: _at_total(knots, curves, c),
              "linear": lambda c: (A @ c, A)}
    c, _ = nnls(A, y)
    name = "linear"
    chosen = {"auto": ("curve", "total"), "linear": ()}.get(method, (method,))
    if chosen:
        upper = 1.0  # an atomic fraction
        fits = [(least_squares(lambda c, m=m: models[m](c)[0] - y, np.clip(start, 1e-6, upper / 2),
                               jac=lambda c, m=m: models[m](c)[1], bounds=(0.0, upper), method="trf"), m)
                for m in chosen for start in (c, np.full(A.shape[1], 0.01))]
        best, name = min(fits, key=lambda f: f[0].cost)
        c = best.x
    c[c < MIN_FRACTION] = 0.0
    fitted, J = models[name](c)
    return c, fitted, J, name


def contributions(basis: SignatureBasis, concentrations: dict, *, kind: str = "pdos", reading: str = "curve",
                  scales: dict | None = None) -> dict:
    """{candidate: its part of the fitted signature, Δ_k (B,) per meV on the basis grid} at ``concentrations``
    ({element: atomic fraction}) under :func:`unmix`'s ``reading`` (its ``fit["model"]``): ``curve``,
    Δ_k(c_k) on its own curve; ``total``, c_k s_k(Σ c); ``linear``, c_k times its mean slope (any other
    name reads as ``curve``). ``scales`` ({element: s}, :func:`stretched`) moves local modes as fitted.
    The parts sum to the fitted Δ."""
    cands = [el for el in concentrations if el in basis.elements]
    cols = [basis.elements.index(el) for el in cands]
    c = np.array([float(concentrations[el]) for el in cands])
    edge = band_edge_mev(basis.pristine[kind], basis.grid)
    s = [float((scales or {}).get(el, 1.0)) for el in cands]
    if reading == "linear":
        return {el: ci * stretched(basis.signatures[kind][k], basis.grid, edge, si)
                for el, k, ci, si in zip(cands, cols, c, s)}
    curves = [stretched(basis.curves[kind][k], basis.grid, edge, si) for k, si in zip(cols, s)]
    if reading == "total":
        return {el: ci * _per_unit(basis.realised[k], cu, float(c.sum()))[0]
                for el, k, ci, cu in zip(cands, cols, c, curves)}
    return {el: curve_and_slope(basis.realised[k], cu, ci)[0] for el, k, ci, cu in zip(cands, cols, c, curves)}


def residual_range_mev(r, grid: EnergyGrid) -> tuple[float, float]:
    """Energies (meV) between which the middle half of a residual's squared norm lies (r (B,), any weights)."""
    w2 = np.asarray(r, float) ** 2
    if not np.any(w2 > 0):
        return float("nan"), float("nan")
    cum = np.cumsum(w2) / w2.sum()
    return float(grid.centers[np.searchsorted(cum, 0.25)]), float(grid.centers[min(np.searchsorted(cum, 0.75), len(cum) - 1)])


def band_edge_mev(pdos, grid: EnergyGrid, quantile: float = BAND_EDGE_QUANTILE) -> float:
    """The energy (meV) below which ``quantile`` of a spectrum's area lies: a host's band edge
    that a long weak tail or trailing zero rows do not move. ``pdos`` (B,) per meV on ``grid``."""
    if not np.any(np.asarray(pdos, float) > 0):
        raise DefectnetError("the spectrum has no positive area: no band edge")
    return area_quantile_mev(pdos, grid.edges, quantile)


def stretched(delta, grid: EnergyGrid, edge_mev: float, scale: float) -> np.ndarray:
    """``delta`` (..., B) per meV with its part above ``edge_mev`` moved to energies × ``scale``.

    Below the edge a dopant mainly redistributes the host's own modes, which stay where the
    host's bands are; above it are the dopant's local modes, whose energy a potential gets
    wrong by its own factor. The part above the edge, g(E), becomes g(E/s)/s: the same area,
    its peaks at s times their energy (what moves below the edge adds to what is there).
    """
    delta = np.asarray(delta, float)
    if scale == 1.0:
        return delta.copy()
    e = grid.centers
    above = np.where(e > edge_mev, delta, 0.0)
    moved = np.apply_along_axis(lambda row: np.interp(e / scale, e, row, left=0.0, right=0.0), -1, above) / scale
    return delta - above + moved


def calibrated(basis: SignatureBasis, modes_mev: dict) -> tuple[SignatureBasis, list[str]]:
    """``basis`` with candidates' local modes moved to where they were measured.

    A potential puts a dopant's local mode 5–25 % from its measured frequency
    (``benchmarks/lvm.py``). A user who knows it (an IR line, a published LVM) gives it here, and
    that candidate's signature above the host's band edge — its local modes — is moved by
    s = measured / simulated (:func:`stretched`: area kept, every peak above the edge × s), in
    both spectrum kinds and at every concentration. The simulated mode is the highest-weight
    peak of the candidate's ``pdos`` signature above the edge.

    Parameters
    ----------
    basis : SignatureBasis
    modes_mev : dict element -> float
        Measured local-mode energy of each candidate to move, meV.

    Returns
    -------
    (SignatureBasis, list of str)
        The moved basis (its ``config['calibrated_modes']`` records every move) and one note per move.
    """
    from dataclasses import replace

    signatures = {k: np.array(v, float) for k, v in basis.signatures.items()}
    curves = {k: np.array(v, float) for k, v in basis.curves.items()}
    edges = {k: band_edge_mev(basis.pristine[k], basis.grid) for k in signatures}
    moves, notes = {}, []
    for el, measured in modes_mev.items():
        if el not in basis.elements:
            raise DefectnetError(f"a local mode is given for {el}, which the basis of {basis.host} does not hold "
                                 f"({', '.join(basis.elements)})")
        if not (np.isfinite(measured) and measured > 0):
            raise DefectnetError(f"the local mode of {el} must be a positive energy, got {measured!r}")
        k = basis.elements.index(el)
        sig, edge = signatures["pdos"][k], edges["pdos"]
        if _share_above(sig, basis.grid, edge) < MODE_SHARE:
            raise DefectnetError(f"{el} has no local mode above the band edge of {basis.host} ({edge:.1f} meV) in the "
                                 f"basis: nothing to move to {measured:.1f} meV")
        simulated = _moved_mode(sig, basis.grid, edge, 1.0)["basis_mev"]
        scale = measured / simulated
        if not 0.5 <= scale <= 2.0:
            raise DefectnetError(f"the local mode of {el} given at {measured:.1f} meV is ×{scale:.2f} the basis' "
                                 f"{simulated:.1f} meV; a potential errs by 5-25 %, expected ×0.5-2 (is the unit right?)")
        for kind in signatures:
            signatures[kind][k] = stretched(signatures[kind][k], basis.grid, edges[kind], scale)
            curves[kind][k] = stretched(curves[kind][k], basis.grid, edges[kind], scale)
        moves[el] = {"basis_mev": simulated, "measured_mev": float(measured), "scale": scale}
        notes.append(f"{el}: local mode moved from {simulated:.1f} meV (the basis') to {measured:.1f} meV as given "
                     f"(×{scale:.2f})")
    config = dict(basis.config, calibrated_modes={**basis.config.get("calibrated_modes", {}), **moves})
    return replace(basis, signatures=signatures, curves=curves, config=config), notes


def _search_scales(basis, kind, cols, y, edge, stretch, sw) -> np.ndarray:
    """Per-candidate energy scales that minimise the linear (NNLS) residual, weighted by ``sw`` (B,): each
    searched on a grid of step :data:`STRETCH_STEP` over [1 − stretch, 1 + stretch] with the others held, twice."""
    from scipy.optimize import nnls

    trial = np.arange(1 - stretch, 1 + stretch + STRETCH_STEP / 2, STRETCH_STEP)
    table = {k: np.array([stretched(basis.signatures[kind][k], basis.grid, edge, s) * sw for s in trial]) for k in cols}
    pick = {k: int(np.argmin(np.abs(trial - 1))) for k in cols}
    movable = [k for k in cols if _share_above(basis.signatures[kind][k], basis.grid, edge) >= MODE_SHARE]
    for _ in range(2):
        for k in movable:
            others = [table[j][pick[j]] for j in cols if j != k]
            residuals = [nnls(np.array(others + [a]).T, y)[1] for a in table[k]]
            pick[k] = int(np.argmin(residuals))
    return np.array([trial[pick[k]] for k in cols])


def _share_above(signature, grid: EnergyGrid, edge: float) -> float:
    """Share of a signature's |area| above ``edge`` (meV)."""
    a = np.abs(np.asarray(signature, float)) * grid.widths
    return float(a[grid.centers > edge].sum() / max(a.sum(), 1e-300))


def _moved_mode(signature, grid: EnergyGrid, edge: float, scale: float) -> dict:
    """Scale and the peak energy (meV) of a signature's part above ``edge``, simulated and moved."""
    above = np.where(grid.centers > edge, np.asarray(signature, float), 0.0)
    if not np.any(above > 0):
        return {"scale": float(scale), "basis_mev": None, "fitted_mev": None}
    peak = float(grid.centers[np.argmax(above)])
    return {"scale": float(scale), "basis_mev": peak, "fitted_mev": peak * float(scale)}


def unmix_result(asked, cands, c, J, r, y, curves, fit: dict, *, measured: bool = False) -> UnmixResult:
    """:func:`unmix`'s result from the concentrations ``c`` (K,), the Jacobian ``J`` (B, K) and
    residual ``r`` (B,) at ``c``, the signature ``y`` and the basis ``curves`` (K, n, B). ``measured``:
    ``J`` and ``r`` are in units of the measured σ, whose covariance (J^T J)^-1 is then the 1σ, times
    :func:`error_inflation` of the χ²/dof over the bins with signal (``fit`` gains ``chi2_reduced`` and
    ``sigma_inflation``)."""
    from scipy.stats import norm

    active = c > 0
    occupied = np.abs(curves).max(axis=(0, 1)) + np.abs(y) > 1e-4 * (np.abs(curves).max() + np.abs(y).max())
    if measured:  # in units of σ: where a candidate's curve shows above 1σ, or Δ is measured beyond 3σ
        occupied = (np.abs(curves).max(axis=(0, 1)) > 1.0) | (np.abs(y) > 3.0)
    # Broadening correlates neighbouring bins: the residual's integrated autocorrelation time τ
    # (in bins) scales the least-squares variance, which assumes independent bins.
    dof, tau = max(int(occupied.sum()) - int(active.sum()), 1), _correlation_bins(r[occupied])
    if measured:  # χ² where Δ or the basis has signal: the empty bins would dilute it
        chi2 = float(r[occupied] @ r[occupied] / dof)
        fit = {**fit, "chi2_reduced": chi2, "sigma_inflation": error_inflation(chi2, dof, tau)}
        noise2 = fit["sigma_inflation"] ** 2
    else:
        noise2 = (r @ r) / dof * tau * SIGMA_SCALE ** 2
    sigma = np.zeros_like(c)
    for k in range(len(c)):
        with_k = active.copy()
        with_k[k] = True
        j = int(np.searchsorted(np.flatnonzero(with_k), k))
        sigma[k] = np.sqrt(max(np.linalg.pinv(J[:, with_k].T @ J[:, with_k])[j, j], 0.0) * noise2)
    # P(c ≥ the detection threshold) for a normal of width σ about the unconstrained optimum.
    # For a candidate the fit sets to 0 that optimum is the residual's projection on its slope
    # (≤ 0: the bound is optimal), so its presence is below ½ and falls as σ shrinks.
    free = np.where(active, c, (J.T @ r) / np.maximum((J * J).sum(axis=0), 1e-300))
    presence = norm.cdf((free - DETECTION_FRACTION) / np.maximum(sigma, 1e-300))
    out = {el: {"concentration": 0.0, "uncertainty": 0.0, "presence": 0.0} for el in asked}  # no stable site
    out |= {el: {"concentration": float(ci), "uncertainty": float(si), "presence": float(pi)}
            for el, ci, si, pi in zip(cands, c, sigma, presence)}
    return UnmixResult(out, {"residual_fraction": float(np.linalg.norm(r) / max(np.linalg.norm(y), 1e-300)), **fit})


def unmix_arrays(pristine, doped, candidates, vocabulary, basis: SignatureBasis, *, kind: str = "pdos",
                 method: str = "auto", stretch: float = 0.0) -> dict:
    """:func:`unmix` of many spectra, in the array layout of the model's ``predict_arrays``.

    Parameters
    ----------
    pristine, doped : ndarray (n, B)
        Unit-area spectra on the basis grid, per meV.
    candidates : bool ndarray (n, V)
        Candidate mask over ``vocabulary``; every candidate must be in ``basis.elements`` or ``basis.failed``.
    vocabulary : sequence of str, length V
    basis, kind, method, stretch
        As for :func:`unmix`.

    Returns
    -------
    dict
        ``concentration``, ``sigma`` and ``presence``, each (n, V): atomic fractions, 1σ and
        probabilities, 0 outside the candidates; ``residual_fraction`` (n,), each fit's share of
        ‖Δ‖ left unexplained.
    """
    vocab = list(vocabulary)
    out = {k: np.zeros(np.shape(candidates)) for k in ("concentration", "sigma", "presence")}
    out["residual_fraction"] = np.zeros(len(out["concentration"]))
    for r, mask in enumerate(np.asarray(candidates, bool)):
        cols = np.flatnonzero(mask)
        fit = unmix(pristine[r], doped[r], basis, kind=kind, candidates=[vocab[j] for j in cols], method=method,
                    stretch=stretch)
        for key, name in (("concentration", "concentration"), ("sigma", "uncertainty"), ("presence", "presence")):
            out[key][r, cols] = [fit[vocab[j]][name] for j in cols]
        out["residual_fraction"][r] = fit.fit["residual_fraction"]
    return out


def combine(first: dict, second: dict, *, floor: float = DETECTION_FRACTION) -> dict:
    """Two estimates of the same candidates (a model's and an unmixing's) merged into one.

    Concentrations are averaged with weights 1/σ² (σ floored at ``floor``, an atomic
    fraction: no estimate is sharper than the detection threshold). The two share errors
    (the same spectrum; a model trained on spectra of the same engine), so 1/√(Σ 1/σ²)
    alone is too narrow; half their disagreement is added in quadrature:
    σ² = 1/Σ(1/σ_i²) + ((c₁ − c₂)/2)². Presences combine as independent evidence on an even
    prior, logit p = logit p₁ + logit p₂, and a candidate with p ≤ ½ is reported at 0, as the
    model reports. Measured on unseen configurations of a model's training hosts with a
    basis (``benchmarks/combine.py``, README); on hosts the model never saw the model's
    error is not in its σ and combining is worse than unmixing alone.

    Parameters
    ----------
    first, second : Mapping
        ``{element: {"concentration", "uncertainty", "presence"}}`` (atomic fractions), as
        :func:`unmix` and :meth:`~defectnet.model.network.SpectralModel.predict` return.

    Returns
    -------
    dict
        The same layout, for the elements both hold.
    """
    from scipy.special import expit, logit

    out = {}
    for el in (e for e in first if e in second):
        a, b = first[el], second[el]
        wa, wb = (1.0 / max(x["uncertainty"], floor) ** 2 for x in (a, b))
        c = (wa * a["concentration"] + wb * b["concentration"]) / (wa + wb)
        sigma = np.sqrt(1.0 / (wa + wb) + (0.5 * (a["concentration"] - b["concentration"])) ** 2)
        p = float(expit(sum(logit(np.clip(x["presence"], 1e-6, 1 - 1e-6)) for x in (a, b))))
        out[el] = {"concentration": float(c) if p > 0.5 else 0.0, "uncertainty": float(sigma), "presence": p}
    return out


def curve_and_slope(x: np.ndarray, curve: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Δ(c) and dΔ/dc of one candidate, piecewise linear in c through the origin and ``curve``
    (n, B) at ``x`` (n,) atomic fractions; the last segment goes on beyond the largest."""
    xs = np.concatenate([[0.0], x])
    j = int(np.clip(np.searchsorted(xs, c, side="right") - 1, 0, len(x) - 1))
    lo = curve[j - 1] if j else np.zeros_like(curve[0])
    slope = (curve[j] - lo) / (xs[j + 1] - xs[j])
    return lo + slope * (c - xs[j]), slope


def own_curves(knots, curves, c) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k Δ_k(c_k) (B,) and its Jacobian (B, K): each candidate on its own curve."""
    parts = [curve_and_slope(knots[k], curves[k], c[k]) for k in range(len(c))]
    return sum(v for v, _ in parts), np.stack([g for _, g in parts], axis=1)


def _per_unit(x: np.ndarray, curve: np.ndarray, total: float) -> tuple[np.ndarray, np.ndarray]:
    """Signature per unit concentration Δ(x)/x (B,) at the total dopant fraction, and its
    derivative in the total; linear between the cells, constant outside them."""
    s = curve / x[:, None]
    if total <= x[0] or total >= x[-1]:
        return s[0 if total <= x[0] else -1], np.zeros_like(s[0])
    j = int(np.searchsorted(x, total) - 1)
    ds = (s[j + 1] - s[j]) / (x[j + 1] - x[j])
    return s[j] + ds * (total - x[j]), ds


def _at_total(knots, curves, c) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k c_k s_k(C), C = Σ c, (B,) and its Jacobian (B, K)."""
    parts = [_per_unit(knots[k], curves[k], float(np.sum(c))) for k in range(len(c))]
    s = np.stack([v for v, _ in parts], axis=1)  # (B, K)
    ds = np.stack([g for _, g in parts], axis=1)
    return s @ c, s + (ds @ c)[:, None]


def _correlation_bins(r: np.ndarray) -> float:
    """Integrated autocorrelation time of a residual, in bins: 1 + 2 Σ ρ(lag) up to the first ρ ≤ 0."""
    r = r - r.mean()
    var = r @ r
    if var <= 0:
        return 1.0
    tau = 1.0
    for lag in range(1, len(r) // 2):
        rho = (r[:-lag] @ r[lag:]) / var
        if rho <= 0:
            break
        tau += 2 * rho
    return tau
