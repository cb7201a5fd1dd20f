"""The fidelity tiers: strategies that turn a doped supercell into its force constants.

Each :class:`Tier` in :data:`TIERS` returns the full force-constant matrix Φ (N, N, 3, 3),
eV/Å², of a :class:`~defectnet.phonons.forceconstants.DopedSystem`, and says what it needs,
so that callers ask the strategy instead of testing tier names:

- ``full``  : relax the doped cell, phonopy finite displacements of every atom (the published protocol).
- ``local`` : relax, displace only dopants and neighbours within a cutoff; all other rows are the
  pristine host's (Fourier-interpolated onto the supercell); acoustic sum rule restored.
- ``patch`` : like ``local`` but the rows around a dopant are computed once per (host site, dopant
  element) in the small force-constant supercell and transplanted onto every dopant of the large
  cell as a change δΦ from the pristine; no calculation in the large cell at all.
- ``cluster``: ``patch``, except that dopants within the cutoff of each other are patched together:
  one patch per cluster, computed with the whole cluster relaxed and its neighbourhood displaced,
  cached by its geometry up to the host's space group (:mod:`defectnet.phonons.clusters`).
- ``mass``  : pristine force constants, dopant masses only (the isotope-disorder limit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms

from defectnet.errors import DefectnetError
from defectnet.phonons.clusters import ClusterSettings
from defectnet.phonons.forceconstants import (
    DopedSystem,
    TierResult,
    TierSettings,
    finite_difference_columns,
    insert_columns,
    neighbours_within,
    primitive_site_indices,
    restore_sum_rules,
)
from defectnet.phonons.patches import apply_patches, get_patch
from defectnet.phonons.potentials import resolve_calculator


@dataclass(frozen=True)
class Tier:
    """One fidelity tier: how the doped force constants are made, and what that needs."""

    name: str
    force_constants: Callable[[DopedSystem, TierSettings], TierResult]
    needs_calculator: bool = True  # False: no force call, so no MLIP is loaded
    uses_patches: bool = False  # True: per-(host site, dopant) patches, kept in the host's patch cache

    def __call__(self, system: DopedSystem, settings: TierSettings) -> TierResult:
        return self.force_constants(system, settings)


def relax_positions(atoms: Atoms, calc, s: TierSettings) -> tuple[Atoms, dict]:
    """``atoms`` with positions relaxed in a fixed cell (as given when ``s.relax`` is off), and a summary."""
    from defectnet.phonons.relax import relax

    if not s.relax:
        return atoms, {}
    res = relax(atoms, calc, fmax=s.fmax_ev_ang, steps=s.relax_steps, cell=False, symmetry=False)
    return res.atoms, {"relax": res.summary()}


def tier_mass(system: DopedSystem, s: TierSettings) -> TierResult:
    return TierResult(fc=system.pristine_fc.copy(), atoms=system.atoms, info={"force_calls": 0})


def tier_local(system: DopedSystem, s: TierSettings) -> TierResult:
    t0 = time.perf_counter()
    calc = resolve_calculator(system.calc)
    atoms, info = relax_positions(system.atoms, calc, s)
    t1 = time.perf_counter()
    idx = neighbours_within(atoms, system.dopant_indices, s.cutoff_ang)
    cols, calls = finite_difference_columns(atoms, idx, calc, s.displacement_ang, s.plusminus, system.progress)
    fc = system.pristine_fc.copy()
    insert_columns(fc, idx, cols)
    restore_sum_rules(fc)
    info.update(n_displaced_atoms=int(len(idx)), force_calls=calls, relax_s=t1 - t0, displace_s=time.perf_counter() - t1)
    return TierResult(fc=fc, atoms=atoms, info=info)


def tier_full(system: DopedSystem, s: TierSettings) -> TierResult:
    from defectnet.phonons.host import displaced_force_constants

    t0 = time.perf_counter()
    calc = resolve_calculator(system.calc)
    atoms, info = relax_positions(system.atoms, calc, s)
    t1 = time.perf_counter()
    ph = displaced_force_constants(atoms, calc, np.eye(3, dtype=int), displacement_ang=s.displacement_ang,
                                   plusminus=s.plusminus,
                                   progress="displacements (full)" if system.progress else None)
    fc = np.array(ph.force_constants)
    restore_sum_rules(fc)
    info.update(force_calls=len(ph.displacements), relax_s=t1 - t0, displace_s=time.perf_counter() - t1)
    return TierResult(fc=fc, atoms=atoms, info=info)


def tier_patch(system: DopedSystem, s: TierSettings) -> TierResult:
    t0 = time.perf_counter()
    host = system.host
    symbols = system.atoms.get_chemical_symbols()
    site_of = primitive_site_indices(host, system.atoms)
    patches, calls = {}, 0
    for d in system.dopant_indices:
        key = (int(site_of[d]), symbols[d])
        if key not in patches:
            patches[key], n = get_patch(host, key[0], key[1], system.calc, s, progress=system.progress)
            calls += n
    fc = system.pristine_fc.copy()
    touched = apply_patches(fc, system.atoms, system.dopant_indices, site_of, patches)
    restore_sum_rules(fc, rows=touched)
    info = {"force_calls": calls, "n_patches": len(patches), "seconds": time.perf_counter() - t0}
    return TierResult(fc=fc, atoms=system.atoms, info=info)


def tier_cluster(system: DopedSystem, s: TierSettings, cluster: ClusterSettings = ClusterSettings()) -> TierResult:
    """Single patches for isolated dopants, one patch per cluster of dopants within ``s.cutoff_ang``.

    A cluster of more than ``cluster.max_dopants`` members, or one that fits in no patch cell,
    falls back to single patches; ``info["fallbacks"]`` records each with its reason. With no
    two dopants within the cutoff the result is the ``patch`` tier's, bit for bit.
    """
    from defectnet.phonons.clusters import (
        ClusterDoesNotFit,
        HostSymmetry,
        canonical_cluster,
        dopant_clusters,
        get_cluster_patch,
        oriented,
    )
    from defectnet.phonons.patches import LatticeIndex, add_prepared_patch, prepared_patch

    t0 = time.perf_counter()
    host = system.host
    symbols = system.atoms.get_chemical_symbols()
    site_of = primitive_site_indices(host, system.atoms)
    groups = dopant_clusters(system.atoms, system.dopant_indices, s.cutoff_ang)
    symmetry = HostSymmetry(host.atoms, host.settings.symprec) if any(len(g.indices) > 1 for g in groups) else None
    single, joint, fallbacks, calls = set(), [], [], 0
    for g in groups:
        if len(g.indices) == 1:
            single.add(int(g.indices[0]))
            continue
        if len(g.indices) > cluster.max_dopants:
            fallbacks.append(f"{len(g.indices)} dopants, more than max_dopants={cluster.max_dopants}")
            single.update(int(i) for i in g.indices)
            continue
        canon = canonical_cluster(symmetry, g.positions_ang, [symbols[i] for i in g.indices])
        try:
            patch, n = get_cluster_patch(host, canon, system.calc, s, cluster, progress=system.progress)
        except ClusterDoesNotFit as err:
            fallbacks.append(str(err))
            single.update(int(i) for i in g.indices)
            continue
        calls += n
        joint.append((g, canon, patch))
    dopants = [int(d) for d in system.dopant_indices if int(d) in single]  # the patch tier's order
    patches = {}
    for d in dopants:
        key = (int(site_of[d]), symbols[d])
        if key not in patches:
            patches[key], n = get_patch(host, key[0], key[1], system.calc, s, progress=system.progress)
            calls += n
    fc = system.pristine_fc.copy()
    touched = [apply_patches(fc, system.atoms, dopants, site_of, patches)]
    lookup = LatticeIndex(system.atoms) if joint else None
    for g, canon, patch in joint:
        p = oriented(patch, canon.rotation)
        anchor = g.positions_ang[canon.anchor]
        members = lookup(anchor + p.members_rel_ang)
        if sorted(members.tolist()) != sorted(g.indices.tolist()) or \
                [symbols[i] for i in members] != list(p.elements):
            raise DefectnetError(f"cluster patch {'-'.join(p.elements)} does not land on its cluster's dopants")
        J = lookup(anchor + p.rel_ang)
        add_prepared_patch(fc, J, prepared_patch(p))
        touched.append(J)
    touched = np.unique(np.concatenate(touched))
    restore_sum_rules(fc, rows=touched)
    info = {"force_calls": calls, "n_patches": len(patches), "n_clusters": len(joint),
            "cluster_sizes": [len(g.indices) for g, _, _ in joint],
            "n_cluster_patches": len({c.key for _, c, _ in joint}), "fallbacks": fallbacks,
            "seconds": time.perf_counter() - t0}
    return TierResult(fc=fc, atoms=system.atoms, info=info)


#: Tier registry: name -> strategy.
TIERS: dict[str, Tier] = {t.name: t for t in (
    Tier("full", tier_full),
    Tier("local", tier_local),
    Tier("patch", tier_patch, uses_patches=True),
    # not uses_patches: generation does not compute or store cluster patches yet (they are made in the tier)
    Tier("cluster", tier_cluster),
    Tier("mass", tier_mass, needs_calculator=False),
)}


def get_tier(name: str) -> Tier:
    """The :class:`Tier` called ``name``; a one-line error naming the known ones otherwise."""
    try:
        return TIERS[name]
    except KeyError:
        raise DefectnetError(f"unknown tier {name!r}; expected one of {', '.join(TIERS)}") from None
