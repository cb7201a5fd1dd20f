"""Phonon modes and PDoS of a supercell at Γ from force constants and masses."""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from defectnet.units import UNITS


def gamma_modes(fc: np.ndarray, masses, symbols=None):
    """Mode energies (meV) and per-element weights of a supercell at Γ.

    Parameters
    ----------
    fc : (N, N, 3, 3) ndarray
        Force constants, eV/Å².
    masses : (N,) array
        Atomic masses, amu.
    symbols : sequence of str, optional
        Chemical symbols; when given, per-element eigenvector weights are returned.

    Returns
    -------
    freqs_mev : (3N,) ndarray
        ħω in meV, negative for imaginary modes (sign of the eigenvalue kept).
    partials : dict element -> (3N,) ndarray or None
        Σ|e|² of each mode over the element's atoms; the weights of a mode sum to 1.
    """
    n = fc.shape[0]
    dyn = dynamical_matrix(fc, masses)
    if symbols is None:
        lam = eigh(dyn, eigvals_only=True, driver="evr")
        return _to_mev(lam), None
    lam, vec = eigh(dyn, driver="evr")
    amp = (vec**2).reshape(n, 3, 3 * n).sum(axis=1)  # (atom, mode)
    symbols = np.asarray(symbols)
    partials = {el: amp[symbols == el].sum(axis=0) for el in sorted(set(symbols.tolist()))}
    return _to_mev(lam), partials


def dynamical_matrix(fc: np.ndarray, masses) -> np.ndarray:
    """Symmetrised Γ dynamical matrix M^-½ Φ M^-½, (3N, 3N) in eV/Å²/amu, of ``fc`` (N, N, 3, 3) eV/Å²."""
    n = fc.shape[0]
    m = np.repeat(np.asarray(masses, dtype=float), 3)
    dyn = fc.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) / np.sqrt(np.outer(m, m))
    return 0.5 * (dyn + dyn.T)


def _to_mev(lam: np.ndarray) -> np.ndarray:
    return np.sign(lam) * np.sqrt(np.abs(lam)) * UNITS.mev_per_sqrt_ev_a2_amu


def gamma_spectrum(fc, atoms, grid, *, resolution=None, fwhm_mev=None, acoustic_tol_mev: float = 0.5):
    """PDoS (total + partials) of a supercell at Γ as a :class:`~defectnet.spectrum.Spectrum`.

    The three acoustic modes at Γ sit at ≈0 meV; modes below ``-acoustic_tol_mev`` are
    imaginary and counted in ``meta['n_imaginary']``, never folded into the spectrum.
    """
    from defectnet.spectrum import Spectrum

    freqs, partials = gamma_modes(fc, atoms.get_masses(), atoms.get_chemical_symbols())
    # Round-off leaves the acoustic triplet at ±1e-3 meV; keep it (at 0) rather than call it imaginary.
    freqs = np.where(np.abs(freqs) < acoustic_tol_mev, np.abs(freqs), freqs)
    spec = Spectrum.from_modes(freqs, grid, partial_weights=partials, resolution=resolution, fwhm_mev=fwhm_mev)
    spec.meta["n_imaginary"] = int((freqs < 0).sum())
    spec.meta["min_frequency_mev"] = float(freqs.min())
    return spec, freqs
