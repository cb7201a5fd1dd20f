"""Force-constant patches: the change a dopant makes to the force constants around it.

A patch is computed once per (host, primitive site, dopant element) in the host's small
force-constant supercell (~50–130 atoms; or a wider cell, ``TierSettings.patch_cell_width_ang``): substitute one dopant, relax, displace the atoms
within the cutoff, and keep δΦ = Φ_doped − Φ_pristine for those columns. Each pair (s, c)
of a displaced atom c and any atom s is unfolded out of the small periodic cell onto the
shortest image(s) of the *pair*, shared equally among images of equal length (phonopy's
convention for force constants), so every column keeps all of its δΦ and its sum rule,
including couplings beyond the largest sphere the small cell holds around the dopant.
Dropping the pairs at or beyond half the cell width instead (they are ~8 % of ‖δΦ‖ for Si:B
with SevenNet-0) lost a third of the defect signature: S = 0.59 instead of 0.81. Transplanted onto every dopant of a large
supercell (433–500 atoms), patches turn a doped spectrum into an eigenproblem: no force
call in the large cell. Dopant–dopant interactions beyond additivity are what it misses;
the tier benchmark measures that at high concentration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from ase import Atoms

from defectnet.elements import mass_amu
from defectnet.errors import DefectnetError
from defectnet.phonons.potentials import resolve_calculator
from defectnet.phonons.symmetry import HostSymmetry

#: Version of how a patch is made. 2: every pair unfolded onto all its shortest images (1
#: dropped pairs at half the cell width or more: a third of Si:B's defect signature with SevenNet-0).
#: 3: a dopant left on a saddle point by the symmetric relaxation follows its soft mode down
#: (up to ``TierSettings.soft_mode_follows`` times: a patch that one follow made stable is unchanged).
PATCH_ALGORITHM = 3

#: Largest atomic displacement of the nudge along a soft mode before relaxing again, Å.
SOFT_MODE_NUDGE_ANG = 0.1


class UnstablePatch(DefectnetError):
    """A dopant has no stable position near its site: its own cell keeps an imaginary mode."""


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


#: Largest cell a patch is computed in when ``TierSettings.patch_cell_width_ang`` asks for more
#: than the host's force-constant cell (a wurtzite cell 16.5 Å wide has ~430 atoms).
PATCH_CELL_MAX_ATOMS = 500


def small_cell(host, settings, calc) -> tuple[Atoms, np.ndarray]:
    """The perfect cell a patch is computed in and its own force constants (N, N, 3, 3), eV/Å².

    The host's force-constant cell by default. When ``settings.patch_cell_width_ang`` is wider,
    a diagonal multiple of the conventional cell (it keeps the point group, so phonopy needs
    few displacements) or else the most compact near-cubic supercell, with its force constants
    computed directly, not interpolated: δΦ must not pick up the pristine couplings that the
    host cell's interpolation lacks.
    """
    from defectnet.doping import min_width_ang
    from defectnet.phonons.host import to_ase_atoms

    small = to_ase_atoms(host.phonon.supercell)
    width = settings.patch_cell_width_ang
    if min_width_ang(small.cell.array) >= width:
        return small, np.array(host.phonon.force_constants)
    cache = host.patch_cells
    key = (width, settings.displacement_ang, settings.plusminus)
    if key not in cache:

        from ase.build import make_supercell

        from defectnet.phonons.host import choose_fc_supercell, standardize_primitive

        prim, conv = standardize_primitive(host.atoms, host.settings.symprec)
        if not np.allclose(prim.cell.array, host.atoms.cell.array, atol=1e-4):
            conv = np.eye(3, dtype=int)  # host.atoms is not spglib's standard cell: no conventional multiple
        P = choose_fc_supercell(host.atoms, conv, replace(host.settings, fc_min_width_ang=width,
                                                                   fc_max_atoms=PATCH_CELL_MAX_ATOMS))
        cell = make_supercell(host.atoms, P)  # its masses are the host's
        cols, _ = cheapest_columns(cell, np.arange(len(cell)), calc, settings, progress=False)
        cache[key] = cell, np.ascontiguousarray(cols.transpose(1, 0, 2, 3))
    return cache[key]


def get_patch(host, site: int, element: str, calc, settings, *, progress: bool = False,
              stage=None) -> tuple[Patch, int]:
    """The patch for ``element`` on primitive site ``site`` of ``host`` (cached on the host).

    Returns the patch and the number of force calls spent now (0 when cached). ``stage``,
    if given, is called as ``with stage("relax"):`` / ``with stage("displace"):`` around
    each relaxation and each set of displacements (a timer).
    """
    from contextlib import nullcontext

    stage = stage or (lambda name: nullcontext())
    from defectnet.doping import min_width_ang
    from defectnet.phonons.forceconstants import neighbours_within, primitive_site_indices

    cache, disk = host.patch_cache, host.disk_cache
    key = (site, element, settings)
    if key not in cache and disk is not None:
        stored = disk.load_patch(site, element, settings)
        if stored is not None:
            cache[key] = stored
    if key in cache:
        return cache[key], 0
    rep, rotation = HostSymmetry(host.atoms, host.settings.symprec).equivalent_site(site)
    if rotation is not None:  # a symmetry-equivalent site's patch, turned: no force call of its own
        base, calls = get_patch(host, rep, element, calc, settings, progress=progress, stage=stage)
        cache[key] = turned(base, rotation, site)
        return cache[key], calls

    calc = resolve_calculator(calc)  # the first force call of this host's patches
    small, fc0 = small_cell(host, settings, calc)
    d = int(np.flatnonzero(primitive_site_indices(host, small) == site)[0])
    doped = small.copy()
    symbols = doped.get_chemical_symbols()
    symbols[d] = element
    doped.set_chemical_symbols(symbols)
    doped.set_masses([mass_amu(s) for s in symbols])
    radius = 0.5 * min_width_ang(small.cell.array) - 1e-3  # images of the sphere are unique
    cutoff = min(settings.cutoff_ang, radius)
    cluster = neighbours_within(small, [d], cutoff)
    cluster = np.concatenate([[d], cluster[cluster != d]])
    # An isolated dopant keeps its site symmetry; keeping it lets phonopy use it below.
    relaxed, delta, calls = relaxed_delta(small, fc0, doped, cluster, calc, settings, progress, stage,
                                           what=f"{element} on site {site} of {host.atoms.get_chemical_formula()}")
    rel, cluster_u, unfolded = unfold(small, cluster, small.positions[d], delta)
    rel_all, sphere, disp = relaxation_field(small, relaxed, small.positions[d], radius)
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
    if disk is not None:
        disk.save_patch(patch, settings)
    return patch, calls


def turned(patch: Patch, rotation: np.ndarray, site: int) -> Patch:
    """``patch`` carried to primitive site ``site`` by a space-group rotation R (3, 3), x' = R x + t:
    relative positions r → R r, force-constant blocks δΦ → R δΦ Rᵀ, relaxations d → R d."""
    R = np.asarray(rotation, float)
    return replace(patch, site=site, rel_ang=patch.rel_ang @ R.T, sphere_rel_ang=patch.sphere_rel_ang @ R.T,
                   displacement_ang=patch.displacement_ang @ R.T,
                   delta=np.einsum("ia,csab,jb->csij", R, patch.delta, R), force_calls=0)


def relaxed_delta(small: Atoms, fc0: np.ndarray, doped: Atoms, displaced, calc, settings, progress, stage, *,
                   what: str) -> tuple[Atoms, np.ndarray, int]:
    """Relax ``doped`` (symmetry kept), displace ``displaced`` and follow any soft mode down.

    Returns the relaxed cell, δΦ (n_c, N, 3, 3) = Φ_doped[s, c] − Φ_pristine[s, c] in eV/Å² of the
    ``displaced`` columns against the perfect cell's ``fc0`` (N, N, 3, 3), and the force calls spent.
    ``what`` names the defect in the error raised when a soft mode remains.
    """
    from defectnet.phonons.relax import relax

    if settings.relax:
        with stage("relax"):
            doped = relax(doped, calc, fmax=settings.fmax_ev_ang, steps=settings.relax_steps, cell=False,
                          symmetry=True).atoms
    with stage("displace"):
        cols, calls = cheapest_columns(doped, displaced, calc, settings, progress)
    tol = settings.soft_mode_tol_mev
    mode = _soft_mode(fc0, cols, displaced, doped.get_masses(), tol) if tol > 0 else None
    follows = settings.soft_mode_follows if settings.relax else 0
    while mode is not None and follows > 0:
        # The site-symmetric relaxation stopped on a saddle point (an off-centre dopant: O on Sb
        # in GaSb has a T2 mode at -4.5 meV with SevenNet-0). Transplanted many times, such a
        # patch makes the doped cell unstable; follow the mode down, without symmetry. The soft
        # mode is often degenerate and eigh picks any direction in its subspace (it differs
        # between BLAS builds); one direction can lead to a lower-symmetry saddle, so follow again.
        follows -= 1
        nudged = doped.copy()
        nudged.positions += SOFT_MODE_NUDGE_ANG * mode
        with stage("relax"):
            doped = relax(nudged, calc, fmax=settings.fmax_ev_ang, steps=settings.relax_steps, cell=False,
                          symmetry=False).atoms
        with stage("displace"):
            cols, more = cheapest_columns(doped, displaced, calc, settings, progress)
        calls += more
        mode = _soft_mode(fc0, cols, displaced, doped.get_masses(), tol)
    if mode is not None:
        how = "after relaxation" if settings.relax else "unrelaxed"
        raise UnstablePatch(f"{what}: a mode below -{tol:g} meV remains in its {len(small)}-atom cell {how} "
                            "(try --tier local)")
    return doped, cols - fc0[:, displaced].transpose(1, 0, 2, 3), calls


def _shortest(small: Atoms, v: np.ndarray) -> np.ndarray:
    """Minimum-image vectors (..., 3) in ``small`` (exact below half its smallest width), Å."""
    f = v @ np.linalg.inv(small.cell.array)
    return (f - np.rint(f)) @ small.cell.array


def unfold(small: Atoms, displaced: np.ndarray, origin_ang: np.ndarray, delta: np.ndarray,
            centre_ang: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """δΦ of the ``displaced`` columns (n_c, N, 3, 3) unfolded out of the periodic ``small`` cell.

    Each pair (s, c) goes onto the shortest image(s) of the pair vector, shared equally among
    equally short ones. Positions are relative to ``origin_ang`` (3,) Å; the displaced atoms are
    found by minimum image from ``centre_ang`` (default: the origin), which must hold them all
    within half the cell's width. Returns ``rel_ang`` (n_s, 3) Å, the displaced atoms' indices
    (n_c,) into it and the unfolded δΦ (n_c, n_s, 3, 3) eV/Å².
    """
    n, nc = len(small), len(displaced)
    if centre_ang is None:
        rel_c = _shortest(small, small.positions[displaced] - origin_ang)  # (n_c, 3)
    else:
        rel_c = _shortest(small, small.positions[displaced] - centre_ang) + (centre_ang - origin_ang)
    vec = (small.positions[None, :, :] - small.positions[displaced][:, None, :]).reshape(-1, 3)
    image, pair_idx, weight = _shortest_images(vec, small.cell.array)
    c_idx, s_idx = np.divmod(pair_idx, n)
    target = rel_c[c_idx] + image  # position of s seen from c (each shortest image), relative to the origin
    keys = np.rint(target / 1e-3).astype(np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    rel = np.zeros((len(uniq), 3))
    rel[inverse] = target
    self_keys = {tuple(k): u for u, k in enumerate(uniq)}
    displaced_u = np.array([self_keys[tuple(np.rint(r / 1e-3).astype(np.int64))] for r in rel_c])
    # A pair of two displaced atoms comes from both columns. On the displaced copy of s its two
    # estimates are averaged (insert_columns); any other image is placed once from each end
    # (s seen from c, c seen from s), so each of those placements carries half the weight.
    pos_in_cluster = np.full(n, -1)
    pos_in_cluster[displaced] = np.arange(nc)
    j = pos_in_cluster[s_idx]
    weight = np.where((j >= 0) & (inverse != displaced_u[np.maximum(j, 0)]), 0.5 * weight, weight)
    unfolded = np.zeros((nc, len(uniq), 3, 3))
    np.add.at(unfolded, (c_idx, inverse), weight[:, None, None] * delta[c_idx, s_idx])
    return rel, displaced_u, unfolded


def relaxation_field(small: Atoms, relaxed: Atoms, origin_ang: np.ndarray, radius_ang: float,
                      centre_ang: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions relative to ``origin_ang`` (N, 3) Å, the indices within ``radius_ang`` of the centre
    (default: the origin) and every atom's relaxation displacement (N, 3) Å."""
    if centre_ang is None:
        rel_all = _shortest(small, small.positions - origin_ang)
        sphere = np.flatnonzero(np.linalg.norm(rel_all, axis=1) <= radius_ang)
    else:
        around = _shortest(small, small.positions - centre_ang)
        sphere = np.flatnonzero(np.linalg.norm(around, axis=1) <= radius_ang)
        rel_all = around + (centre_ang - origin_ang)
    return rel_all, sphere, _shortest(small, relaxed.positions - small.positions)


def _soft_mode(fc0: np.ndarray, cols: np.ndarray, cluster, masses, tol_mev: float) -> np.ndarray | None:
    """The displacement pattern (N, 3) of the softest imaginary mode of a patch's own cell, or None.

    ``fc0`` (N, N, 3, 3) are the perfect cell's force constants and ``cols`` (n_c, N, 3, 3) the
    doped cell's columns Φ[s, c] of the ``cluster`` atoms (eV/Å²); ``masses`` (N,) amu. Rigid
    translations are projected out first, so acoustic-sum-rule noise is never mistaken for an
    instability. The pattern is scaled to a largest atomic displacement of 1 (Å, unitless).
    """
    from scipy.linalg import eigh

    from defectnet.phonons.dos import dynamical_matrix
    from defectnet.units import UNITS

    cluster = np.asarray(cluster)
    fc = fc0.copy()
    col = cols.transpose(1, 0, 2, 3)  # (N, n_c, 3, 3): Φ[s, c]
    fc[:, cluster] = col
    fc[cluster, :] = col.transpose(1, 0, 3, 2)
    cc = col[cluster]
    fc[np.ix_(cluster, cluster)] = 0.5 * (cc + cc.transpose(1, 0, 3, 2))
    n = len(fc)
    m = np.repeat(np.asarray(masses, dtype=float), 3)
    t = np.zeros((3 * n, 3))
    for a in range(3):
        t[a::3, a] = np.sqrt(m[a::3])
    t, _ = np.linalg.qr(t)
    proj = np.eye(3 * n) - t @ t.T
    lam, vec = eigh(proj @ dynamical_matrix(fc, masses) @ proj, subset_by_index=[0, 0], driver="evr")
    if np.sqrt(max(-lam[0], 0.0)) * UNITS.mev_per_sqrt_ev_a2_amu <= tol_mev:
        return None
    u = (vec[:, 0] / np.sqrt(m)).reshape(n, 3)
    return u / np.linalg.norm(u, axis=1).max()


def _shortest_images(vec: np.ndarray, cell: np.ndarray, tol: float = 1e-3):
    """All shortest periodic images of each vector, with weight 1/multiplicity.

    Returns ``images`` (m, 3), ``owner`` (m,) index into ``vec`` and ``weight`` (m,); images
    within ``tol`` Å of the shortest length count as equally short (phonopy's convention).
    """
    frac = vec @ np.linalg.inv(cell)
    frac -= np.rint(frac)
    shifts = np.array(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij")).reshape(3, -1).T
    cand = (frac[:, None, :] + shifts[None, :, :]) @ cell  # (n_vec, 125, 3)
    length = np.linalg.norm(cand, axis=2)
    short = length <= length.min(axis=1, keepdims=True) + tol
    owner, k = np.nonzero(short)
    return cand[owner, k], owner, 1.0 / short.sum(axis=1)[owner]


def cheapest_columns(atoms: Atoms, cluster, calc, settings, progress):
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
    """Find the atom of an unrelaxed supercell at a given position (periodic), fast.

    A k-d tree on fractional coordinates (periodic box), then a Cartesian check: a position
    counts as a site within ``tol_ang``. (Rounding the coordinates to a grid instead fails for
    sites that sit on a rounding boundary — rutile's did — whatever the grid.)
    """

    def __init__(self, atoms: Atoms, tol_ang: float = 1e-3):
        from scipy.spatial import cKDTree

        self.cell = atoms.cell.array
        self.inv = np.linalg.inv(self.cell)
        self.frac = self._wrap(atoms.positions)
        self.tree = cKDTree(self.frac, boxsize=1.0)
        self.tol = tol_ang

    def _wrap(self, positions) -> np.ndarray:
        f = np.mod(np.asarray(positions, float) @ self.inv, 1.0)
        return np.where(f >= 1.0, 0.0, f)  # mod of -1e-17 is 1.0, outside the tree's box

    def __call__(self, positions) -> np.ndarray:
        frac = self._wrap(positions)
        _, idx = self.tree.query(frac)
        d = frac - self.frac[idx]
        d -= np.rint(d)
        if np.linalg.norm(d @ self.cell, axis=1).max(initial=0.0) > self.tol:
            from defectnet.errors import DefectnetError

            raise DefectnetError("a patch atom does not fall on a supercell lattice site")
        return idx


def prepared_patch(p) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A patch's columns δΦ[s, c] (n_s, n_c, 3, 3) with the displaced block symmetrised, the mask (n_s,)
    of the atoms not displaced, their rows δΦ[c, s] (n_c, n_s_other, 3, 3), eV/Å², and the displaced
    atoms' indices (n_c,) into the patch's atoms."""
    cols = p.delta.transpose(1, 0, 2, 3).copy()  # (n_s, n_c, 3, 3): δΦ[s, c]
    cc = cols[p.cluster]
    cols[p.cluster] = 0.5 * (cc + cc.transpose(1, 0, 3, 2))  # both estimates of a cluster pair
    other = np.ones(len(cols), bool)
    other[p.cluster] = False
    return cols, other, np.ascontiguousarray(cols[other].transpose(1, 0, 3, 2)), p.cluster


def add_prepared_patch(fc: np.ndarray, J: np.ndarray, prepared) -> None:
    """Add a prepared patch (:func:`prepared_patch`) whose atoms sit at supercell indices ``J`` (n_s,) to ``fc``."""
    cols, other, rows, cluster = prepared
    Jc = J[cluster]
    # only the displaced atoms' columns and rows change: add them, not a dense n_s × n_s block
    if len(np.unique(J)) == len(J):
        fc[np.ix_(J, Jc)] += cols
        fc[np.ix_(Jc, J[other])] += rows
    else:  # the cell is smaller than the patch: images of one atom fold onto it, accumulate
        np.add.at(fc, (J[:, None], Jc[None, :]), cols)
        np.add.at(fc, (Jc[:, None], J[other][None, :]), rows)


def apply_patches(fc: np.ndarray, atoms: Atoms, dopants, site_of, patches: dict) -> np.ndarray:
    """Add every dopant's patch to ``fc`` (N, N, 3, 3) in place; return the atoms whose rows changed."""
    lookup = LatticeIndex(atoms)
    symbols = atoms.get_chemical_symbols()
    prepared = {}  # patch key -> (columns δΦ[s, c], cluster block symmetrised; non-cluster mask; their rows)
    touched = []
    for d in dopants:
        key = (int(site_of[d]), symbols[d])
        p = patches[key]
        if key not in prepared:
            prepared[key] = prepared_patch(p)
        J = lookup(atoms.positions[d] + p.rel_ang)
        add_prepared_patch(fc, J, prepared[key])
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
