"""Force constants of doped supercells: the shared mechanics of the fidelity tiers.

Every tier (:mod:`defectnet.phonons.tiers`) returns the full force-constant matrix Φ of the
doped supercell, shape (N, N, 3, 3) in eV/Å², with Φ[j, i][β, α] = -∂F_jβ/∂u_iα. This module
holds what they share: their settings, the doped system they start from, finite-difference
columns, the sum rules, and the host's force constants on any supercell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from defectnet.errors import DefectnetError
from defectnet.settings import Settings, setting


@dataclass(frozen=True)
class TierSettings(Settings, what="tier settings"):
    """Settings shared by the tiers (lengths in Å, forces in eV/Å; every number >= 0)."""

    # local/patch: atoms within this distance of a dopant are displaced. 4.6 Å holds the third
    # shell of diamond/zincblende (4.5 Å in Si) and stays below the half-width of a 9.5 Å
    # force-constant cell; against 4.0 Å it raises the patch fidelity S at 216 atoms from 0.61
    # to 0.68 (Si:B) and 0.82 to 0.89 (Si:Ge) with the same 28 force calls (phonopy route)
    cutoff_ang: float = setting(4.6, lo=0.0)
    # patch: compute patches in a host cell at least this wide (Å); 0 = the host's force-constant
    # cell. The cutoff is capped at half the width: 17 Å (216 atoms of zincblende) holds an 8 Å
    # cluster, which lifts GaAs:Zn from S = 0.20 to 0.81 (benchmarks/patch_range.py) at ~3× the calls
    patch_cell_width_ang: float = setting(0.0, lo=0.0)
    displacement_ang: float = setting(0.01, lo=0.0)
    plusminus: bool = True  # central differences: cancel residual forces and the cubic term
    relax: bool = True  # relax positions (cell fixed) before displacing
    fmax_ev_ang: float = setting(0.01, lo=0.0)  # the published protocol's force tolerance
    relax_steps: int = setting(200, lo=0)
    # patch: a patch whose own cell has a mode below -tol (meV) sits on a saddle point; it is
    # relaxed again along that mode without symmetry (0: never check)
    soft_mode_tol_mev: float = setting(1.0, lo=0.0)
    # patch: times a remaining soft mode is followed before the patch is declared unstable. One
    # follow costs the cluster's columns without symmetry (~174 force calls in a 64-atom cell
    # against 28 for the symmetric patch); a degenerate soft mode can need a second or third
    soft_mode_follows: int = setting(3, lo=0)


@dataclass
class DopedSystem:
    """A doped supercell ready for a tier: structure, dopant sites and pristine force constants."""

    atoms: Atoms  # doped supercell, unrelaxed (exact host lattice positions), dopant masses
    dopant_indices: np.ndarray  # (n_dopants,) supercell indices of substituted atoms
    pristine_fc: np.ndarray  # (N, N, 3, 3) host force constants interpolated onto this supercell
    host: object  # PristineHost (for the patch tier's small cell)
    calc: object | None = None  # ASE calculator, or a DeferredCalculator (loaded at the first force call)
    progress: bool = False


@dataclass
class TierResult:
    fc: np.ndarray  # (N, N, 3, 3) eV/Å²
    atoms: Atoms  # structure the force constants belong to (relaxed where the tier relaxes)
    info: dict = field(default_factory=dict)  # force calls, timings, cluster sizes


def neighbours_within(atoms: Atoms, centres, cutoff: float) -> np.ndarray:
    """Indices of all atoms within ``cutoff`` Å (minimum image) of any of ``centres``, sorted."""
    from ase.neighborlist import neighbor_list

    centres = np.asarray(centres, dtype=int)
    if cutoff <= 0:
        return np.unique(centres)
    i, j = neighbor_list("ij", atoms, cutoff, self_interaction=False)
    mask = np.isin(i, centres)
    return np.unique(np.concatenate([centres, j[mask]]))


def finite_difference_columns(atoms: Atoms, indices, calc, h: float, plusminus: bool = True, progress: bool = False):
    """Columns Φ[:, i] (N, 3, 3) for each displaced atom i, by finite differences of forces.

    Returns
    -------
    cols : (len(indices), N, 3, 3) ndarray, cols[k, j, β, α] = Φ[j, i_k][β, α]
    n_calls : int, number of force evaluations
    """
    work = atoms.copy()
    work.calc = calc
    f0 = None if plusminus else work.get_forces().copy()
    n = len(work)
    cols = np.zeros((len(indices), n, 3, 3))
    iterator = enumerate(indices)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(indices), desc="displacing atoms", unit="atom", leave=False)
    base = work.positions.copy()
    for k, i in iterator:
        for alpha in range(3):
            pos = base.copy()
            pos[i, alpha] += h
            work.positions = pos
            fp = work.get_forces().copy()
            if plusminus:
                pos[i, alpha] -= 2 * h
                work.positions = pos
                fm = work.get_forces().copy()
                cols[k, :, :, alpha] = -(fp - fm) / (2 * h)
            else:
                cols[k, :, :, alpha] = -(fp - f0) / h
    work.positions = base
    return cols, len(indices) * 3 * (2 if plusminus else 1) + (0 if plusminus else 1)


def restore_sum_rules(fc: np.ndarray, rows=None) -> np.ndarray:
    """Make Φ symmetric and translation invariant (in place), changing it as little as possible.

    Two steps. (1) Symmetrise Φ[i, j] = Φ[j, i]ᵀ over ``rows`` and set their self-terms
    Φ[i, i] = -Σ_{j≠i} Φ[i, j]: a local change of the force constants belongs on the
    self-terms of the atoms it touched. (2) The symmetrised self-term leaves a tiny
    antisymmetric row sum; remove it by the projection Φ ← PΦP (P projects out the three
    uniform translations), the nearest symmetric matrix with exact acoustic sum rules, so
    the three acoustic modes at Γ are exactly zero. ``rows`` limits step 1 to the atoms
    whose blocks changed (default: all).
    """
    n = fc.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows)
    sub = fc[np.ix_(rows, rows)]
    fc[np.ix_(rows, rows)] = 0.5 * (sub + sub.transpose(1, 0, 3, 2))
    for i in rows:
        self_term = fc[i, i] - fc[i].sum(axis=0)
        fc[i, i] = 0.5 * (self_term + self_term.T)
    # P Φ P for P = 1 - (1/N) Σ_α t_α t_αᵀ acting on each Cartesian block.
    row_mean = fc.mean(axis=1, keepdims=True)  # (N, 1, 3, 3)
    col_mean = fc.mean(axis=0, keepdims=True)  # (1, N, 3, 3)
    fc -= row_mean + col_mean - fc.mean(axis=(0, 1), keepdims=True)
    return fc


def insert_columns(fc: np.ndarray, idx: np.ndarray, cols: np.ndarray) -> None:
    """Put computed columns Φ[:, idx] (and the transposed rows) into ``fc``; symmetrise the block."""
    fc[:, idx] = cols.transpose(1, 0, 2, 3)
    fc[idx, :] = cols.transpose(0, 1, 3, 2)  # Φ[i, j] = Φ[j, i]ᵀ
    block = cols[:, idx]  # (k, k', β, α) = Φ[idx_k', idx_k]... average both computed estimates
    fc[np.ix_(idx, idx)] = 0.5 * (block.transpose(1, 0, 2, 3) + block.transpose(0, 1, 3, 2))


def primitive_site_indices(host, supercell: Atoms) -> np.ndarray:
    """For each supercell atom, the index of the primitive-cell atom it is a lattice translation of."""
    prim = host.atoms
    frac = supercell.positions @ np.linalg.inv(prim.cell.array)  # in primitive-cell coordinates
    pfrac = prim.get_scaled_positions()
    d = frac[:, None, :] - pfrac[None, :, :]
    d -= np.rint(d)
    dist = np.linalg.norm(d @ prim.cell.array, axis=2)
    site = dist.argmin(axis=1)
    if dist[np.arange(len(site)), site].max() > 1e-3:
        raise DefectnetError("supercell atoms are not on host lattice sites; build doped cells from the pristine supercell")
    return site


def pristine_supercell(host, supercell_matrix) -> tuple[Atoms, np.ndarray]:
    """The host's supercell ``supercell_matrix @ primitive`` and its force constants (N, N, 3, 3).

    Force constants are Fourier-interpolated from the host's force-constant supercell by
    phonopy (``Phonopy.ph2ph``), so any supercell shape reuses the one host calculation.
    """
    from phonopy.harmonic.force_constants import compact_fc_to_full_fc

    from defectnet.phonons.host import to_ase_atoms

    ph = host.phonon.ph2ph(np.asarray(supercell_matrix, dtype=int))
    fc = np.array(ph.force_constants)
    if fc.shape[0] != fc.shape[1]:
        fc = compact_fc_to_full_fc(ph.primitive, fc)
    return to_ase_atoms(ph.supercell), fc
