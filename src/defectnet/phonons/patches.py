"""Force-constant patches: the change a dopant makes to the force constants around it.

A patch is computed once per (host, primitive site, dopant element) in the host's small
force-constant supercell (~50–130 atoms): substitute one dopant, relax, displace the atoms
within the cutoff, and keep δΦ = Φ_doped − Φ_pristine for those columns. Each pair (s, c)
of a displaced atom c and any atom s is unfolded out of the small periodic cell by the
shortest image of the *pair*, so a displaced atom near the cutoff keeps all its couplings,
including those to atoms beyond the largest sphere the small cell holds around the dopant. Transplanted onto every dopant of a large
supercell (433–500 atoms), patches turn a doped spectrum into an eigenproblem: no force
call in the large cell. Dopant–dopant interactions beyond additivity are what it misses;
the tier benchmark measures that at high concentration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from defectnet.elements import mass_amu


@dataclass(frozen=True)
class Patch:
    site: int  # primitive-cell atom index the dopant replaces
    element: str
    rel_ang: np.ndarray  # (n_s, 3) positions of the touched atoms relative to the dopant, Å
    cluster: np.ndarray  # (n_c,) indices into rel_ang of the displaced atoms (the dopant first)
    delta: np.ndarray  # (n_c, n_s, 3, 3) δΦ[s, c] = Φ_doped[s, c] − Φ_pristine[s, c], eV/Å²
    sphere_rel_ang: np.ndarray  # (n_p, 3) atoms within half the small cell's width of the dopant, Å
    displacement_ang: np.ndarray  # (n_p, 3) their relaxation displacements, Å
    force_calls: int


def _small_cell(host) -> tuple[Atoms, np.ndarray]:
    from defectnet.phonons.host import to_ase_atoms

    sc = host.phonon.supercell
    return to_ase_atoms(sc), np.array(host.phonon.force_constants)


def get_patch(host, site: int, element: str, calc, settings, *, progress: bool = False) -> tuple[Patch, int]:
    """The patch for ``element`` on primitive site ``site`` of ``host`` (cached on the host).

    Returns the patch and the number of force calls spent now (0 when cached).
    """
    from defectnet.doping import min_width_ang
    from defectnet.phonons.forceconstants import neighbours_within, primitive_site_indices

    cache = host.__dict__.setdefault("patch_cache", {})
    key = (site, element, settings)
    if key in cache:
        return cache[key], 0

    from defectnet.phonons.relax import relax

    small, fc0 = _small_cell(host)
    d = int(np.flatnonzero(primitive_site_indices(host, small) == site)[0])
    doped = small.copy()
    symbols = doped.get_chemical_symbols()
    symbols[d] = element
    doped.set_chemical_symbols(symbols)
    doped.set_masses([mass_amu(s) for s in symbols])
    if settings.relax:
        # An isolated dopant keeps its site symmetry; keeping it lets phonopy use it below.
        doped = relax(doped, calc, fmax=settings.fmax_ev_ang, steps=settings.relax_steps, cell=False, symmetry=True).atoms

    radius = 0.5 * min_width_ang(small.cell.array) - 1e-3  # images of the sphere are unique
    cutoff = min(settings.cutoff_ang, radius)
    cluster = neighbours_within(small, [d], cutoff)
    cluster = np.concatenate([[d], cluster[cluster != d]])
    cols, calls = _cheapest_columns(doped, cluster, calc, settings, progress)
    delta = cols - fc0[:, cluster].transpose(1, 0, 2, 3)
    relaxed = doped

    inv = np.linalg.inv(small.cell.array)

    def shortest(v):  # minimum-image vectors (exact below half the smallest width)
        f = v @ inv
        return (f - np.rint(f)) @ small.cell.array

    n, nc = len(small), len(cluster)
    rel_c = shortest(small.positions[cluster] - small.positions[d])  # (n_c, 3)
    pair = shortest((small.positions[None, :, :] - small.positions[cluster][:, None, :]).reshape(-1, 3)).reshape(nc, n, 3)
    ok = np.linalg.norm(pair, axis=2) < radius  # pairs with one unambiguous image
    target = rel_c[:, None, :] + pair  # (n_c, n, 3) position of s seen from c, relative to the dopant
    keys = np.rint(target[ok] / 1e-3).astype(np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    rel = np.zeros((len(uniq), 3))
    rel[inverse.ravel()] = target[ok]
    unfolded = np.zeros((nc, len(uniq), 3, 3))
    k_idx = np.nonzero(ok)[0]
    unfolded[k_idx, inverse.ravel()] = delta[k_idx, np.nonzero(ok)[1]]
    self_keys = {tuple(k): u for u, k in enumerate(uniq)}
    cluster_u = np.array([self_keys[tuple(np.rint(r / 1e-3).astype(np.int64))] for r in rel_c])

    rel_all = shortest(small.positions - small.positions[d])
    sphere = np.flatnonzero(np.linalg.norm(rel_all, axis=1) <= radius)
    disp = shortest(relaxed.positions - small.positions)
    patch = Patch(
        site=site,
        element=element,
        rel_ang=rel,
        cluster=cluster_u,
        delta=unfolded,
        sphere_rel_ang=rel_all[sphere],
        displacement_ang=disp[sphere],
        force_calls=calls,
    )
    cache[key] = patch
    return patch, calls


def _cheapest_columns(atoms: Atoms, cluster, calc, settings, progress):
    """Force-constant columns of ``cluster`` by the cheaper of two routes.

    Displacing each cluster atom along x, y, z costs 3–6 force calls per atom; phonopy's
    symmetry-reduced displacements of the whole doped cell give every column and cost
    fewer calls whenever the dopant site keeps much symmetry (28 instead of 102 for a
    substituent in 64-atom Si). Count both (phonopy's count is cheap) and run the cheaper.
    """
    from phonopy import Phonopy

    from defectnet.phonons.forceconstants import finite_difference_columns
    from defectnet.phonons.host import compute_forces, to_phonopy_atoms

    n_local = len(cluster) * 3 * (2 if settings.plusminus else 1)
    ph = Phonopy(to_phonopy_atoms(atoms), supercell_matrix=np.eye(3, dtype=int), primitive_matrix="P", symprec=1e-4)
    ph.generate_displacements(distance=settings.displacement_ang, is_plusminus=settings.plusminus)
    if len(ph.displacements) >= n_local:
        return finite_difference_columns(atoms, cluster, calc, settings.displacement_ang, settings.plusminus, progress)
    cells = ph.supercells_with_displacements
    if progress:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc="patch displacements", unit="calc", leave=False)
    ph.forces = compute_forces(cells, calc)
    ph.produce_force_constants()
    fc = np.array(ph.force_constants)
    return fc[:, cluster].transpose(1, 0, 2, 3), len(ph.displacements)


class LatticeIndex:
    """Find the atom of an unrelaxed supercell at a given position (periodic), fast."""

    def __init__(self, atoms: Atoms, resolution: int = 20000):
        self.inv = np.linalg.inv(atoms.cell.array)
        self.k = resolution
        keys = self._keys(atoms.positions)
        self.table = {tuple(k): i for i, k in enumerate(keys)}
        if len(self.table) != len(atoms):
            raise ValueError("supercell atoms coincide at the lookup resolution")

    def _keys(self, positions):
        frac = positions @ self.inv
        return np.mod(np.rint(frac * self.k).astype(np.int64), self.k)

    def __call__(self, positions) -> np.ndarray:
        try:
            return np.array([self.table[tuple(k)] for k in self._keys(positions)])
        except KeyError:
            from defectnet.errors import DefectnetError

            raise DefectnetError("a patch atom does not fall on a supercell lattice site") from None


def apply_patches(fc: np.ndarray, atoms: Atoms, dopants, site_of, patches: dict) -> np.ndarray:
    """Add every dopant's patch to ``fc`` (N, N, 3, 3) in place; return the atoms whose rows changed."""
    from defectnet.phonons.forceconstants import _insert_columns

    lookup = LatticeIndex(atoms)
    symbols = atoms.get_chemical_symbols()
    touched = []
    for d in dopants:
        p = patches[(int(site_of[d]), symbols[d])]
        J = lookup(atoms.positions[d] + p.rel_ang)
        block = np.zeros((len(J), len(J), 3, 3))
        _insert_columns(block, p.cluster, p.delta)
        np.add.at(fc, (J[:, None], J[None, :]), block)
        touched.append(J)
    return np.unique(np.concatenate(touched)) if touched else np.array([], dtype=int)


def displaced_positions(atoms: Atoms, dopants, site_of, patches: dict) -> np.ndarray:
    """Positions with each dopant's relaxation field superposed (for writing the doped CIF)."""
    lookup = LatticeIndex(atoms)
    symbols = atoms.get_chemical_symbols()
    pos = atoms.positions.copy()
    for d in dopants:
        p = patches[(int(site_of[d]), symbols[d])]
        J = lookup(atoms.positions[d] + p.sphere_rel_ang)
        np.add.at(pos, J, p.displacement_ang)
    return pos
