"""Structure relaxation with any ASE calculator."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class RelaxResult:
    atoms: Atoms
    converged: bool
    steps: int
    fmax_ev_ang: float  # largest residual force, eV/Å
    energy_ev: float
    volume_change: float  # V_final / V_initial - 1
    seconds: float

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("atoms")
        return d


def relax(
    atoms: Atoms,
    calc,
    *,
    fmax: float = 0.005,
    steps: int = 300,
    cell: bool = True,
    symmetry: bool = True,
) -> RelaxResult:
    """Relax positions (and the cell) of ``atoms`` with ``calc``.

    Parameters
    ----------
    fmax : float
        Force tolerance, eV/Å (tight by default: phonons need a true minimum).
    cell : bool
        Relax the cell too (``FrechetCellFilter``); keep it fixed for doped supercells.
    symmetry : bool
        Keep the space group (``FixSymmetry``) so a high-symmetry host stays on its saddle-free
        symmetric minimum and phonopy can use its symmetry.
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    t0 = time.perf_counter()
    work = atoms.copy()
    work.calc = calc
    if symmetry:
        work.set_constraint(FixSymmetry(work, symprec=1e-4))
    target = FrechetCellFilter(work) if cell else work
    opt = BFGS(target, logfile=None, maxstep=0.1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    forces = work.get_forces()
    energy = float(work.get_potential_energy())
    work.set_constraint()
    out = Atoms(work.get_chemical_symbols(), positions=work.positions, cell=work.cell, pbc=True)
    out.set_masses(atoms.get_masses())
    return RelaxResult(
        atoms=out,
        converged=converged,
        steps=int(opt.nsteps),
        fmax_ev_ang=float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0,
        energy_ev=energy,
        volume_change=float(out.get_volume() / atoms.get_volume() - 1.0),
        seconds=time.perf_counter() - t0,
    )
