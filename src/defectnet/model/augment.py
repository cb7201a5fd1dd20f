"""Training-time augmentation of spectrum batches.

:class:`Augment` perturbs a batch of pristine/doped spectrum pairs (torch tensors (B, G),
unit area on an :class:`~defectnet.grid.EnergyGrid`) with an energy-scale stretch, extra
Gaussian broadening, a smooth residual background and counting noise. Energies and widths
are in meV. All randomness comes from one numpy Generator, so a seeded run is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid
from defectnet.settings import Settings


@dataclass(frozen=True)
class Augment(Settings, what="augment"):
    """Random perturbations of a batch of spectra, applied identically to a pristine/doped pair.

    Attributes
    ----------
    noise : float
        Relative counting noise: each bin of the *doped* spectrum gets N(0, noise² ⟨q⟩ q)
        on its per-bin probability q (Poisson-like), then is clipped at 0 and renormalised.
    extra_fwhm_mev : (float, float)
        Extra Gaussian broadening FWHM drawn uniformly in this range (meV), the same for
        both spectra of a pair (one instrument). (0, 0) = off.
    stretch : float
        Energy-scale factor drawn uniformly in [1 − stretch, 1 + stretch], the same for both
        spectra (a potential that softens all modes alike). 0 = off.
    background : float
        Residual background after an imperfect subtraction (multiphonon, container): each
        spectrum of the pair gets its own smooth b(E) ∝ (E/E_c)² exp(−E/E_c), E_c drawn
        in [0.2, 1] × the spectrum's mean energy, carrying up to ``background`` of the area
        (uniform in [0, background]). 0 = off.
    probability : float
        Chance that each perturbation is applied to a batch.
    """

    noise: float = 0.0
    extra_fwhm_mev: tuple = (0.0, 0.0)
    stretch: float = 0.0
    background: float = 0.0
    probability: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "extra_fwhm_mev", tuple(float(x) for x in self.extra_fwhm_mev))
        if (self.noise < 0 or self.stretch < 0 or not 0 <= self.background < 1 or not 0 <= self.probability <= 1
                or min(self.extra_fwhm_mev) < 0):
            raise DefectnetError(f"invalid augmentation settings {self}")

    @property
    def active(self) -> bool:
        return self.noise > 0 or self.stretch > 0 or self.background > 0 or max(self.extra_fwhm_mev) > 0

    def __call__(self, pristine, doped, grid: EnergyGrid, rng: np.random.Generator):
        """Perturbed copies of ``pristine`` and ``doped`` (torch tensors (B, G), unit area).

        Randomness comes from ``rng`` only (one numpy Generator), so a seeded run is repeatable.
        """
        import torch

        if not self.active:
            return pristine, doped
        w = torch.as_tensor(grid.widths, dtype=pristine.dtype)
        p, d = pristine * w, doped * w  # per-bin probabilities
        if self.stretch > 0 and rng.random() < self.probability:
            s = rng.uniform(1 - self.stretch, 1 + self.stretch, size=len(p))
            p, d = _stretch(p, grid, s), _stretch(d, grid, s)
        lo, hi = self.extra_fwhm_mev
        if hi > 0 and rng.random() < self.probability:
            k = torch.as_tensor(_broadening_matrix(grid, float(rng.uniform(lo, hi))), dtype=p.dtype)
            p, d = p @ k, d @ k
        if self.background > 0 and rng.random() < self.probability:
            p, d = (_add_background(q / q.sum(1, keepdim=True), grid, self.background, rng) for q in (p, d))
        if self.noise > 0 and rng.random() < self.probability:
            z = torch.as_tensor(rng.standard_normal(d.shape), dtype=d.dtype)
            d = (d + self.noise * torch.sqrt(d.clamp_min(0) / d.shape[1]) * z).clamp_min(0)
        p = p / p.sum(1, keepdim=True)
        d = d / d.sum(1, keepdim=True)
        return p / w, d / w


def _add_background(q, grid: EnergyGrid, share: float, rng: np.random.Generator):
    """Per-bin probabilities q (B, G) plus a smooth multiphonon-like background of area ≤ ``share`` each."""
    import torch

    c = torch.as_tensor(grid.centers, dtype=q.dtype)
    mean_e = (q * c).sum(1, keepdim=True)  # (B, 1) meV
    e_c = mean_e * torch.as_tensor(rng.uniform(0.2, 1.0, size=(len(q), 1)), dtype=q.dtype)
    x = c[None, :] / e_c
    b = x**2 * torch.exp(-x) * torch.as_tensor(grid.widths, dtype=q.dtype)
    b = b / b.sum(1, keepdim=True)
    a = torch.as_tensor(rng.uniform(0.0, share, size=(len(q), 1)), dtype=q.dtype)
    return (1 - a) * q + a * b


def _stretch(q, grid: EnergyGrid, scale: np.ndarray):
    """Per-bin probabilities q (B, G) after E → scale·E, by interpolating the cumulative sum."""
    import torch

    edges = torch.as_tensor(grid.edges, dtype=q.dtype)
    cdf = torch.cat([torch.zeros(len(q), 1, dtype=q.dtype), torch.cumsum(q, 1)], 1)  # (B, G+1)
    x = edges[None, :] / torch.as_tensor(scale, dtype=q.dtype)[:, None]  # where new edges come from
    i = torch.searchsorted(edges.contiguous(), x.contiguous()).clamp(1, len(edges) - 1)
    x0, x1 = edges[i - 1], edges[i]
    t = ((x - x0) / (x1 - x0)).clamp(0, 1)
    new = torch.gather(cdf, 1, i - 1) * (1 - t) + torch.gather(cdf, 1, i) * t
    return torch.diff(new, dim=1).clamp_min(0)


def _broadening_matrix(grid: EnergyGrid, fwhm_mev: float) -> np.ndarray:
    """(G, G) matrix K with q_new = q @ K: each bin spread as a Gaussian of FWHM ``fwhm_mev`` (area kept)."""
    from scipy.special import ndtr

    s = max(fwhm_mev, 1e-6) / 2.3548
    c, edges = grid.centers, grid.edges
    k = np.diff(ndtr((edges[None, :] - c[:, None]) / s), axis=1)
    return k / k.sum(1, keepdims=True)

