"""The fixed energy grid every spectrum, dataset and model checkpoint shares.

Why this grid (the default, :data:`DEFAULT_GRID`): 640 bins on 0–500 meV, uniform in
``asinh(E / 25 meV)``. Bins are 0.15 meV wide at 0, 0.2 meV at 20 meV, 0.63 meV at 100
meV and 2.8 meV at 450 meV. That keeps ~130 bins below 20 meV, enough to resolve heavy
hosts whose whole PDoS lies there (PbTe, CdTe, Bi₂Te₃), and still holds the local modes of
light dopants (H, Li, B, C, N, O reach 100–450 meV) in a 640-long vector. The bin width
grows with E as the resolution of INS spectrometers does (TOSCA-type ΔE/E ≈ 1–1.5 %), so
a bin is about half a resolution width everywhere: no bins are wasted at high energy and
none are too coarse at low energy. A uniform grid with the same low-energy resolution
would need ~3,300 bins.

Spectra on the grid are bin-integrated densities: ``values[i]`` is the mean density (per
meV) in bin i, and the area is ``sum(values * widths)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.settings import Settings, setting


def _asinh_forward(e, e0):
    return np.arcsinh(np.asarray(e, dtype=float) / e0)


def _asinh_inverse(u, e0):
    return e0 * np.sinh(u)


def _linear_forward(e, e0):
    return np.asarray(e, dtype=float)


def _linear_inverse(u, e0):
    return np.asarray(u, dtype=float)


#: The fields in meV, hashed into :attr:`EnergyGrid.grid_id` as floats.
ENERGY_KEYS = ("e_min_mev", "e_max_mev", "e0_mev")

#: Grid kinds: name -> (warp E -> u, inverse u -> E); bins are uniform in u.
GRID_KINDS = {
    "asinh": (_asinh_forward, _asinh_inverse),
    "linear": (_linear_forward, _linear_inverse),
}


@dataclass(frozen=True)
class EnergyGrid(Settings, what="energy-grid"):
    """A binned energy axis in meV.

    Parameters
    ----------
    kind : {'asinh', 'linear'}
        Warp in which bins are uniform.
    e_min_mev, e_max_mev : float
        Range covered by the bin edges, meV.
    n_bins : int
        Number of bins.
    e0_mev : float
        Knee of the asinh warp (meV): below it bins are ~uniform, above they grow ∝ E.

    An energy read from a dict keeps its type (``exact``: 400 stays 400, not 400.0), so
    :meth:`is_id` still knows the id that files written before ids were canonical give a grid
    saved with an int.
    """

    kind: str = "asinh"
    e_min_mev: float = setting(0.0, exact=True)
    e_max_mev: float = setting(500.0, exact=True)
    n_bins: int = 640
    e0_mev: float = setting(25.0, exact=True)

    def __post_init__(self):
        if self.kind not in GRID_KINDS:
            raise DefectnetError(f"unknown grid kind {self.kind!r}; expected one of {sorted(GRID_KINDS)}")
        if not (self.e_max_mev > self.e_min_mev >= 0.0) or self.n_bins < 2 or self.e0_mev <= 0:
            raise DefectnetError(f"invalid energy grid {self}")

    @cached_property
    def edges(self) -> np.ndarray:
        """Bin edges, shape (n_bins + 1,), meV."""
        fwd, inv = GRID_KINDS[self.kind]
        u = np.linspace(fwd(self.e_min_mev, self.e0_mev), fwd(self.e_max_mev, self.e0_mev), self.n_bins + 1)
        edges = inv(u, self.e0_mev)
        edges[0], edges[-1] = self.e_min_mev, self.e_max_mev
        return edges

    @cached_property
    def centers(self) -> np.ndarray:
        """Bin centres (midpoint in the warped coordinate), shape (n_bins,), meV."""
        fwd, inv = GRID_KINDS[self.kind]
        u = fwd(self.edges, self.e0_mev)
        return inv(0.5 * (u[1:] + u[:-1]), self.e0_mev)

    @cached_property
    def widths(self) -> np.ndarray:
        """Bin widths, shape (n_bins,), meV."""
        return np.diff(self.edges)

    @property
    def grid_id(self) -> str:
        """Short stable identifier recorded in datasets and checkpoints; equal grids have equal ids.

        The energies are hashed as floats (``0`` as ``0.0``): the form the default grid has always
        been saved in, so its id, ``asinh-0-500meV-640-d92f65f9``, is the one committed data record.
        """
        d = self.to_dict()
        return self._id({**d, **{k: float(d[k]) for k in ENERGY_KEYS}})

    def is_id(self, grid_id: str) -> bool:
        """Whether ``grid_id`` names this grid.

        Parameters
        ----------
        grid_id : str
            An id a file records for this grid.

        Returns
        -------
        bool
            It is :attr:`grid_id`, or the id a file written before ids were canonical gives a grid
            saved with an integer energy (its energies hashed as saved).
        """
        return grid_id in (self.grid_id, self._id(self.to_dict()))

    def _id(self, d: dict) -> str:
        digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.kind}-{self.e_min_mev:g}-{self.e_max_mev:g}meV-{self.n_bins}-{digest}"


DEFAULT_GRID = EnergyGrid()
