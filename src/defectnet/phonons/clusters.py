"""Cluster patches: dopants closer than the patch cutoff are patched together.

The ``patch`` tier adds one single-dopant patch per dopant, so two dopants within the cutoff
of each other miss their coupling and their joint relaxation. Here the dopants of a doped
cell are grouped into **clusters** — connected components of the graph that links two
dopants within ``TierSettings.cutoff_ang`` of each other (minimum-image distances) — and a
cluster of 2 … ``ClusterSettings.max_dopants`` dopants gets one patch, computed in a perfect
host cell with the whole cluster substituted and relaxed together, every atom within the
cutoff of any member displaced, and δΦ unfolded and transplanted exactly as single patches
are (:mod:`defectnet.phonons.patches`). Isolated dopants keep their single patches.

**Equivalence.** A cluster patch is cached by the cluster's canonical geometry: its members'
species and positions up to the host's **space group** (spglib on the relaxed primitive
cell; every lattice translation, and each point operation with its fractional translation).
These are exactly the operations that map the host crystal onto itself, so two clusters
related by one have the same force constants up to that rotation, and one computed patch
serves both (rotated on transplanting: δΦ → Rᵀ δΦ R). Point operations of the *lattice* that
are not symmetries of the crystal (inversion in zincblende) are not used: they map the host
onto another crystal. The key is the smallest, over operations and choices of the anchor
member, of (anchor's primitive site, sorted (element, primitive site, primitive-cell
translation from the anchor's cell)) — integers, so no rounding of positions enters it; it
depends on the host, so caches are per host.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from ase import Atoms

from defectnet.elements import mass_amu
from defectnet.errors import DefectnetError
from defectnet.phonons.symmetry import HostSymmetry
from defectnet.settings import Settings

@dataclass(frozen=True)
class ClusterSettings(Settings, what="cluster settings"):
    """How the ``cluster`` tier groups dopants (the cutoff is ``TierSettings.cutoff_ang``)."""

    # a cluster of more dopants than this falls back to single patches (its patch cell and force
    # calls grow with it; at 25 % most dopants percolate into one cluster)
    max_dopants: int = 4
    # the width of a cluster's patch cell, Å, is rounded up to a multiple of this, so clusters of
    # similar extent share one perfect cell (and its force constants)
    cell_width_step_ang: float = 1.0


class ClusterDoesNotFit(DefectnetError):
    """A cluster and its neighbourhood do not fit in a patch cell of at most ``PATCH_CELL_MAX_ATOMS``."""


@dataclass(frozen=True)
class Cluster:
    """Dopants of a supercell linked by distances within the cutoff."""

    indices: np.ndarray  # (k,) supercell indices of the members, sorted
    positions_ang: np.ndarray  # (k, 3) their positions, unwrapped along the links (minimum image), Å


def dopant_clusters(atoms: Atoms, dopants, cutoff_ang: float) -> list[Cluster]:
    """The dopants of ``atoms`` grouped into clusters (connected components; isolated dopants alone).

    Two dopants are linked when their minimum-image distance is below ``cutoff_ang`` (Å): then
    one lies in the other's displaced neighbourhood. Clusters are ordered by their first member.
    """
    from ase.geometry import get_distances
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    dopants = np.sort(np.asarray(dopants, dtype=int))
    if len(dopants) == 0:
        return []
    vec, dist = get_distances(atoms.positions[dopants], cell=atoms.cell, pbc=atoms.pbc)  # (k, k, 3), (k, k)
    linked = (dist < cutoff_ang) & ~np.eye(len(dopants), dtype=bool)
    n, label = connected_components(linked, directed=False)
    out = []
    for c in range(n):
        members = np.flatnonzero(label == c)
        sub = linked[np.ix_(members, members)]
        order, pred = breadth_first_order(sub, 0, directed=False, return_predecessors=True)
        pos = np.zeros((len(members), 3))
        pos[0] = atoms.positions[dopants[members[0]]]
        for i in order[1:]:  # each member placed from the one it was reached by: one consistent image
            pos[i] = pos[pred[i]] + vec[members[pred[i]], members[i]]
        out.append(Cluster(indices=dopants[members], positions_ang=pos))
    return sorted(out, key=lambda c: c.indices[0])


@dataclass(frozen=True)
class CanonicalCluster:
    """A cluster's geometry up to the host's space group, and the operation that takes it there."""

    key: tuple  # (anchor site, ((element, site, n1, n2, n3), ...)): each member's primitive site and cell from the anchor
    anchor_site: int  # primitive site of the canonical anchor member
    elements: tuple  # (k,) members' elements in key order (the anchor's vector is zero)
    vectors_ang: np.ndarray  # (k, 3) canonical members relative to the anchor, Å
    anchor: int  # which actual member is the anchor (index into the cluster's members)
    rotation: np.ndarray  # (3, 3) Cartesian R of the operation taking the actual cluster to the canonical one


def canonical_cluster(symmetry: HostSymmetry, positions_ang, elements) -> CanonicalCluster:
    """The canonical form of the cluster of ``elements`` (k,) at lattice ``positions_ang`` (k, 3) Å.

    Two clusters related by an operation of the host's space group (a translation, a rotation
    with its fractional translation, and any relabelling of members) get the same key.
    """
    pos = np.asarray(positions_ang, float)
    q = np.einsum("nij,kj->nki", symmetry.rotations, pos) + symmetry.translations_ang[:, None, :]  # (n_ops, k, 3)
    sites, cells = symmetry.lattice_coordinates(q)  # (n_ops, k), (n_ops, k, 3): exact integers, no rounding
    best = None
    for op in range(len(q)):
        for j in range(len(pos)):
            n = cells[op] - cells[op, j]
            members = sorted((elements[i], int(sites[op, i]), *map(int, n[i])) for i in range(len(pos)))
            key = (int(sites[op, j]), tuple(members))
            if best is None or key < best[0]:
                best = (key, op, j)
    key, op, j = best
    order = sorted(range(len(pos)), key=lambda i: (elements[i], int(sites[op, i]), *cells[op, i] - cells[op, j]))
    v = q[op] - q[op, j]
    return CanonicalCluster(key=key, anchor_site=key[0], elements=tuple(elements[i] for i in order),
                            vectors_ang=v[order], anchor=j, rotation=symmetry.rotations[op])


@dataclass(frozen=True)
class ClusterPatch:
    """δΦ of a cluster in its canonical orientation, relative to its canonical anchor member."""

    key: tuple  # CanonicalCluster.key
    elements: tuple  # (k,) members' elements
    members_rel_ang: np.ndarray  # (k, 3) members relative to the anchor, Å
    rel_ang: np.ndarray  # (n_s, 3) touched atoms relative to the anchor, Å
    cluster: np.ndarray  # (n_c,) indices into rel_ang of the displaced atoms
    delta: np.ndarray  # (n_c, n_s, 3, 3) δΦ[s, c], eV/Å²
    sphere_rel_ang: np.ndarray  # (n_p, 3) atoms of the patch cell's sphere around the cluster, Å
    displacement_ang: np.ndarray  # (n_p, 3) their relaxation displacements, Å
    cell_atoms: int  # atoms in the cell it was computed in
    force_calls: int


def get_cluster_patch(host, canon: CanonicalCluster, calc, settings, cluster_settings: ClusterSettings = ClusterSettings(),
                      *, progress: bool = False, stage=None) -> tuple[ClusterPatch, int]:
    """The patch of the cluster ``canon`` in ``host`` (cached on the host by its canonical key, and on
    disk when the host has a :class:`~defectnet.phonons.cache.HostCache`).

    The cluster is substituted in the host's patch cell, or in a wider diagonal multiple of the
    conventional cell when its extent plus the cutoff does not fit within half the width;
    relaxed together (the cluster's own symmetry kept, soft modes followed as for single
    patches); every atom within ``settings.cutoff_ang`` of a member displaced. Returns the patch
    and the force calls spent now (0 when cached).

    Raises
    ------
    ClusterDoesNotFit
        When no cell of at most ``PATCH_CELL_MAX_ATOMS`` atoms holds the cluster and its neighbourhood.
    """
    from contextlib import nullcontext

    from defectnet.doping import min_width_ang
    from defectnet.phonons.forceconstants import neighbours_within, primitive_site_indices
    from defectnet.phonons.potentials import resolve_calculator
    from defectnet.phonons.patches import (
        PATCH_CELL_MAX_ATOMS,
        LatticeIndex,
        relaxation_field,
        relaxed_delta,
        small_cell,
        unfold,
    )

    stage = stage or (lambda name: nullcontext())
    cache, disk = host.cluster_cache, host.disk_cache
    step = cluster_settings.cell_width_step_ang
    key = (canon.key, settings, step)
    if key not in cache and disk is not None and (stored := disk.load_cluster(canon.key, settings, step)):
        cache[key] = stored  # computed by an earlier command or run on this host
    if key in cache:
        return cache[key], 0

    centre = canon.vectors_ang.mean(axis=0)
    need = float(np.linalg.norm(canon.vectors_ang - centre, axis=1).max()) + settings.cutoff_ang
    calc = resolve_calculator(calc)  # the first force call of this cluster
    small, fc0 = small_cell(host, settings, calc)
    if 0.5 * min_width_ang(small.cell.array) - 1e-3 < need:
        width = float(np.ceil((2 * need + 2e-3) / step) * step)
        small, fc0 = small_cell(host, replace(settings, patch_cell_width_ang=max(width, settings.patch_cell_width_ang)),
                                 calc)
    radius = 0.5 * min_width_ang(small.cell.array) - 1e-3
    what = f"{'-'.join(canon.elements)} cluster in {host.atoms.get_chemical_formula()}"
    if radius < need:
        raise ClusterDoesNotFit(f"{what}: it and its {settings.cutoff_ang:g} Å neighbourhood span {2 * need:.1f} Å, "
                                f"wider than a patch cell of at most {PATCH_CELL_MAX_ATOMS} atoms")
    a = int(np.flatnonzero(primitive_site_indices(host, small) == canon.anchor_site)[0])
    origin = small.positions[a]
    members = LatticeIndex(small)(origin + canon.vectors_ang)
    doped = small.copy()
    symbols = doped.get_chemical_symbols()
    for i, el in zip(members, canon.elements):
        symbols[i] = el
    doped.set_chemical_symbols(symbols)
    doped.set_masses([mass_amu(s) for s in symbols])
    displaced = neighbours_within(small, members, settings.cutoff_ang)
    displaced = np.concatenate([members, displaced[~np.isin(displaced, members)]])
    relaxed, delta, calls = relaxed_delta(small, fc0, doped, displaced, calc, settings, progress, stage, what=what)
    rel, displaced_u, unfolded = unfold(small, displaced, origin, delta, centre_ang=origin + centre)
    rel_all, sphere, disp = relaxation_field(small, relaxed, origin, radius, centre_ang=origin + centre)
    patch = ClusterPatch(key=canon.key, elements=canon.elements, members_rel_ang=canon.vectors_ang, rel_ang=rel,
                         cluster=displaced_u, delta=unfolded, sphere_rel_ang=rel_all[sphere],
                         displacement_ang=disp[sphere], cell_atoms=len(small), force_calls=calls)
    cache[key] = patch
    if disk is not None:
        disk.save_cluster(patch, settings, step)
    return patch, calls


def oriented(patch: ClusterPatch, rotation: np.ndarray) -> ClusterPatch:
    """``patch`` carried back from the canonical orientation by the inverse of ``rotation`` R (3, 3):
    positions r → Rᵀ r and blocks δΦ → Rᵀ δΦ R."""
    R = np.asarray(rotation, float)
    return replace(patch, members_rel_ang=patch.members_rel_ang @ R, rel_ang=patch.rel_ang @ R,
                   sphere_rel_ang=patch.sphere_rel_ang @ R, displacement_ang=patch.displacement_ang @ R,
                   delta=np.einsum("ai,csab,bj->csij", R, patch.delta, R))


def cluster_statistics(primitive: Atoms, supercell: Atoms, dopants, fractions, cutoff_ang: float, *,
                       samples: int = 10, seed: int = 0, max_dopants: int = ClusterSettings.max_dopants,
                       symprec: float = 1e-4) -> list[dict]:
    """How many dopants sit in clusters, and how often a cluster patch would be found in the cache.

    For each total fraction in ``fractions``, ``samples`` placements (``default_rng([seed, k])``)
    of the ``dopants`` — (element, site element, share of the total) — in the pristine
    ``supercell`` built from ``primitive``; no force call. Returns one dict per fraction:
    ``in_clusters`` (share of dopants with another within ``cutoff_ang`` Å), ``in_patched_clusters``
    (of those, in clusters of at most ``max_dopants``), ``mean_cluster_size``, ``largest_cluster``,
    ``lookups`` (clusters of 2…max_dopants met, each a cache lookup), ``distinct_keys`` and
    ``hit_rate`` = 1 − distinct/lookups (a cache filled over the samples in turn, empty at the start).
    """
    from defectnet.doping import DopantSpec, substitute

    symmetry = HostSymmetry(primitive, symprec)
    out = []
    for frac in fractions:
        n_dop = in_cl = in_patched = lookups = 0
        sizes, keys = [], set()
        for k in range(samples):
            specs = [DopantSpec(el, site, frac * share) for el, site, share in dopants]
            doped, sub = substitute(supercell, specs, np.random.default_rng([seed, k]))
            symbols = doped.get_chemical_symbols()
            for g in dopant_clusters(doped, sub.dopant_indices, cutoff_ang):
                size = len(g.indices)
                n_dop += size
                if size == 1:
                    continue
                in_cl += size
                sizes.append(size)
                if size <= max_dopants:
                    in_patched += size
                    lookups += 1
                    keys.add(canonical_cluster(symmetry, g.positions_ang, [symbols[i] for i in g.indices]).key)
        out.append({
            "fraction": float(frac), "samples": samples, "n_dopants": n_dop,
            "in_clusters": in_cl / n_dop, "in_patched_clusters": in_patched / n_dop,
            "mean_cluster_size": float(np.mean(sizes)) if sizes else 0.0,
            "largest_cluster": int(max(sizes, default=1)), "lookups": lookups, "distinct_keys": len(keys),
            "hit_rate": 1 - len(keys) / lookups if lookups else None,
        })
    return out
