"""The host's space group in Cartesian form: what cluster patches are keyed by, and what carries a
dopant patch computed on one primitive site to the sites equivalent to it."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from defectnet.errors import DefectnetError


class HostSymmetry:
    """The host's space group in Cartesian form, and the primitive site of any lattice position.

    ``rotations`` (n_ops, 3, 3) and ``translations_ang`` (n_ops, 3) act as x' = R x + t on
    Cartesian positions (Å) in the frame of ``primitive`` (and of every supercell built from it).
    """

    def __init__(self, primitive: Atoms, symprec: float = 1e-4):
        import spglib

        self.primitive = primitive
        A = primitive.cell.array  # rows are lattice vectors: x = f @ A
        cell = (A, primitive.get_scaled_positions(), primitive.numbers)
        sym = spglib.get_symmetry(cell, symprec=symprec)
        if sym is None:
            raise DefectnetError("could not determine the symmetry of the host structure (spglib failed)")
        # f' = W f + w (column vectors)  =>  x' = Aᵀ W A⁻ᵀ x + Aᵀ w
        self.rotations = np.einsum("ji,njk,kl->nil", A, sym["rotations"].astype(float), np.linalg.inv(A).T)
        self.translations_ang = sym["translations"] @ A
        self._inv = np.linalg.inv(A)
        self._frac = primitive.get_scaled_positions()

    def lattice_coordinates(self, positions_ang) -> tuple[np.ndarray, np.ndarray]:
        """Primitive site (...,) and primitive-cell translation (..., 3) int of each lattice position
        (..., 3) Å, so that x = (n + f_site) @ A exactly; an error if a position is off the lattice."""
        frac = np.asarray(positions_ang, float) @ self._inv
        d = frac[..., None, :] - self._frac  # (..., n_prim, 3)
        off = d - np.rint(d)
        dist = np.linalg.norm(off @ self.primitive.cell.array, axis=-1)
        site = dist.argmin(axis=-1)
        if np.take_along_axis(dist, site[..., None], -1).max(initial=0.0) > 1e-3:
            raise DefectnetError("a cluster member is not on a host lattice site")
        return site, np.rint(frac - self._frac[site]).astype(np.int64)

    def equivalent_site(self, site: int) -> tuple[int, np.ndarray | None]:
        """(representative, R): the lowest-indexed primitive site that a space-group operation
        x' = R x + t carries onto ``site``, and that operation's R (3, 3); (site, None) when no
        lower site is equivalent."""
        numbers, pos = self.primitive.numbers, self.primitive.positions
        for j in range(site):
            if numbers[j] != numbers[site]:
                continue
            images = pos[j] @ self.rotations.transpose(0, 2, 1) + self.translations_ang  # (n_ops, 3)
            hit = np.flatnonzero(self.lattice_coordinates(images)[0] == site)
            if len(hit):
                return j, self.rotations[hit[0]]
        return site, None
