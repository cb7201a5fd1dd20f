"""The instrument: its resolution on top of the basis' own broadening, and counting noise."""

from __future__ import annotations

import numpy as np


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


def broaden(values, kernel, widths) -> np.ndarray:
    """``values`` (..., B) per meV through the broadening ``kernel``.

    Parameters
    ----------
    values : ndarray (..., B)
        Spectra on the basis grid, per meV.
    kernel : ndarray (B, B)
        :func:`broadening_kernel`'s K (shares_new = shares @ K).
    widths : ndarray (B,)
        The grid's bin widths, meV.

    Returns
    -------
    ndarray (..., B)
        Per meV.
    """
    return (np.asarray(values, float) * widths) @ kernel / widths


def broadened_basis(basis, kernel, resolution: str):
    """``basis`` as if simulated at the instrument's resolution (``defectnet basis --resolution``): its pristine,
    signatures and curves through ``kernel``."""
    from dataclasses import replace

    widths = basis.grid.widths
    sim = {**(basis.config.get("simulation") or {}), "resolution": resolution}
    return replace(basis, pristine={k: broaden(v, kernel, widths) for k, v in basis.pristine.items()},
                   signatures={k: broaden(v, kernel, widths) for k, v in basis.signatures.items()},
                   curves={k: broaden(v, kernel, widths) for k, v in basis.curves.items()},
                   config={**basis.config, "simulation": sim})
