"""Register a host's simulated signature basis onto a measured pristine spectrum.

Two potentials that both keep a host stable still put its bands at different energies: 7net-l3i5
has BAs's optical band 4-7 % below 7net-0's, MnSe's acoustic band 30 % below (and an experiment
differs from both). A dopant's signature is mostly a redistribution of the host's own modes, so
its sharp features sit on the host's band features; a 5 % shift leaves a 1 meV-broadened
signature orthogonal to itself, and unmixing then explains ~2 % of a measured Δ
(``benchmarks/cross_potential.py``). The remedy is to move the basis to where *this* pristine
spectrum puts the bands: the monotone energy map ``f`` that carries the basis' pristine
cumulative area onto the measured one (quantile matching, which aligns band features whatever
their intensities), applied to every curve as a density, area kept. Above the host's top band,
local modes move by the ratio of the band tops (the potential softens them alike; how far a
dopant's own mode is off is a separate error, :func:`defectnet.unmix.calibrated`). Against a
*measured* pristine that ratio overshoots: every potential puts the host's TO(Γ) 15–33 % low but
most local modes only 1–26 % low (``benchmarks/lvm.py``), so give measured local modes
(``--lvm``) where they are known.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid

#: Cumulative-area levels at which the two pristine spectra are matched; the ends avoid the
#: spectra's empty tails, where quantiles move with noise.
LEVELS = np.linspace(0.005, 0.995, 199)
#: A registration whose band-top ratio leaves this range is refused: it is no longer the same host.
SCALE_RANGE = (0.5, 2.0)


def energy_map(reference, target, grid: EnergyGrid) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(e_ref, e_target)`` (meV, increasing) of the monotone map carrying ``reference``'s
    cumulative area onto ``target``'s: a band at ``e_ref`` in the reference sits at ``e_target``.

    Parameters
    ----------
    reference, target : ndarray (B,)
        Pristine spectra on ``grid`` (per meV, any normalisation, non-negative in the main).
    """
    q_ref, q_tgt = (_quantiles(np.asarray(s, float), grid) for s in (reference, target))
    # local ratios mean nothing inside a gap (the level sits anywhere in it): judge the band top
    ratio = q_tgt[-1] / q_ref[-1]
    if not SCALE_RANGE[0] <= ratio <= SCALE_RANGE[1]:
        raise DefectnetError(f"the pristine spectrum's band top is ×{ratio:.2f} the basis' (registration takes "
                             f"×{SCALE_RANGE[0]}-×{SCALE_RANGE[1]}): is it the same host and unit?")
    e_ref, keep = np.unique(q_ref, return_index=True)
    e_tgt = np.maximum.accumulate(q_tgt[keep])
    return np.concatenate([[0.0], e_ref]), np.concatenate([[0.0], e_tgt])


def warp(e, knots: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``f(e)`` for energies ``e`` (meV): piecewise linear through ``knots``, beyond the last knot
    continued with the ratio of the last knots (local modes move with the band top)."""
    x, y = knots
    e = np.asarray(e, float)
    top = y[-1] + (e - x[-1]) * (y[-1] / x[-1])
    return np.where(e <= x[-1], np.interp(e, x, y), top)


def registered(basis, pristine, kind: str = "gpdos"):
    """``basis`` with every spectrum moved onto the bands of a measured ``pristine`` spectrum.

    Parameters
    ----------
    basis : SignatureBasis
    pristine : ndarray (B,)
        The measured pristine spectrum of the host, of ``kind``, on ``basis.grid``.
    kind : {'gpdos', 'pdos'}
        What ``pristine`` is. The map found from it is applied to both kinds: it is a property
        of energies, not of weights.

    Returns
    -------
    SignatureBasis
        Curves, signatures and pristine spectra pushed forward through the map (each a density,
        its area kept); ``config['registration']`` records the map's knots (meV).
    """
    grid = basis.grid
    if np.shape(pristine) != (grid.n_bins,):
        raise DefectnetError(f"the pristine spectrum has shape {np.shape(pristine)}; the basis needs ({grid.n_bins},)")
    knots = energy_map(basis.pristine[kind], pristine, grid)
    edges = grid.edges
    # density pushed forward: the cumulative area up to f(E) is the basis' up to E
    back = np.interp(edges, warp(edges, knots), edges)

    def move(density):
        d = np.asarray(density, float)
        cum = np.concatenate([np.zeros(d.shape[:-1] + (1,)), np.cumsum(d * grid.widths, axis=-1)], axis=-1)
        at = np.apply_along_axis(lambda c: np.interp(back, edges, c), -1, cum)
        return np.diff(at, axis=-1) / grid.widths

    step = max(1, len(LEVELS) // 20)
    config = dict(basis.config, registration={"kind": kind, "knots_mev": [knots[0][::step].round(3).tolist(),
                                                                          knots[1][::step].round(3).tolist()]})
    return replace(basis, pristine={k: move(v) for k, v in basis.pristine.items()},
                   signatures={k: move(v) for k, v in basis.signatures.items()},
                   curves={k: move(v) for k, v in basis.curves.items()}, config=config)


def _quantiles(spectrum, grid: EnergyGrid) -> np.ndarray:
    """Energies (meV) below which :data:`LEVELS` of the spectrum's positive area lie."""
    s = np.clip(spectrum, 0.0, None)
    if not np.any(s > 0):
        raise DefectnetError("the spectrum has no positive area: nothing to register against")
    cum = np.concatenate([[0.0], np.cumsum(s * grid.widths)])
    cum /= cum[-1]
    return np.interp(LEVELS, cum, grid.edges)
