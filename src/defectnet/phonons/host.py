"""Pristine host: relax with the MLIP, phonopy force constants, q-mesh PDoS."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from defectnet.elements import mass_amu
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.phonons.potentials import DEFAULT_POTENTIAL, get_calculator, potential_info
from defectnet.settings import Settings, setting
from defectnet.units import UNITS


@dataclass(frozen=True)
class HostSettings(Settings, what="host settings"):
    """How a pristine host is relaxed and its force constants computed (every number >= 0)."""

    potential: str = DEFAULT_POTENTIAL
    fmax_ev_ang: float = setting(0.005, lo=0.0)  # relaxation force tolerance, eV/Å
    relax_steps: int = setting(300, lo=0)
    relax: bool = True
    displacement_ang: float = setting(0.01, lo=0.0)  # finite-displacement amplitude, Å
    fc_min_width_ang: float = setting(9.5, lo=0.0)  # force-constant supercell: smallest perpendicular width, Å
    fc_max_atoms: int = setting(256, lo=0)
    mesh_length_ang: float = setting(40.0, lo=0.0)  # phonopy q-mesh density for the host DOS (length, Å)
    imaginary_tol_mev: float = setting(0.5, lo=0.0)  # a mode below -tol counts as imaginary, meV
    symprec: float = setting(1e-4, lo=0.0)


@dataclass
class PristineHost:
    """A relaxed host with force constants; the starting point of every doped spectrum."""

    atoms: Atoms  # relaxed primitive cell
    phonon: object  # phonopy.Phonopy holding force constants (unit cell = primitive)
    settings: HostSettings
    spectrum: object | None = None  # q-mesh PDoS (Spectrum) on the grid
    n_imaginary: int = 0  # q-mesh modes below -imaginary_tol_mev
    min_frequency_mev: float = 0.0
    relax_summary: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    # (site, element, TierSettings) -> Patch: computed or read patches (defectnet.phonons.patches)
    patch_cache: dict = field(default_factory=dict, repr=False)
    # (width, displacement, plusminus) -> (cell, force constants): wider cells patches are computed in
    patch_cells: dict = field(default_factory=dict, repr=False)
    # (canonical cluster key, TierSettings, cell width step) -> ClusterPatch (defectnet.phonons.clusters); memory only
    cluster_cache: dict = field(default_factory=dict, repr=False)
    disk_cache: object | None = field(default=None, repr=False)  # HostCache, where patches are kept on disk

    @property
    def potential(self) -> dict:
        return potential_info(self.settings.potential).to_dict()

    @property
    def fc_supercell_matrix(self) -> np.ndarray:
        return np.array(self.phonon.supercell_matrix, dtype=int)


def to_phonopy_atoms(atoms: Atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(),
        masses=atoms.get_masses(),
    )


def to_ase_atoms(cell) -> Atoms:
    return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, masses=cell.masses, pbc=True)


def standardize_primitive(atoms: Atoms, symprec: float = 1e-4) -> tuple[Atoms, np.ndarray]:
    """spglib's standard primitive cell and the integer matrix M with conventional = M @ primitive."""
    import spglib

    numbers = atoms.get_atomic_numbers()
    cell = (atoms.cell.array, atoms.get_scaled_positions(), numbers)
    prim = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False, symprec=symprec)
    conv = spglib.standardize_cell(cell, to_primitive=False, no_idealize=False, symprec=symprec)
    if prim is None or conv is None:
        raise DefectnetError("could not determine the symmetry of the host structure (spglib failed)")
    from ase.data import chemical_symbols

    symbols = [chemical_symbols[z] for z in prim[2]]
    primitive = Atoms(symbols, cell=prim[0], scaled_positions=prim[1], pbc=True)
    primitive.set_masses([mass_amu(s) for s in symbols])  # one mass table everywhere
    M = np.rint(conv[0] @ np.linalg.inv(prim[0])).astype(int)
    if not np.allclose(M @ prim[0], conv[0], atol=1e-6):
        M = np.eye(3, dtype=int)
    return primitive, M


def choose_fc_supercell(primitive: Atoms, conv_matrix: np.ndarray, s: HostSettings) -> np.ndarray:
    """Force-constant supercell: a diagonal multiple of the conventional cell, ≥ the width.

    It keeps the full point group, so phonopy needs the fewest displacements (1 for Si, a
    handful for wurtzite), which outweighs the few extra atoms over a near-cubic shape.
    When that cell would exceed ``fc_max_atoms``, the near-cubic shape is used instead.
    """
    from defectnet.doping import min_width_ang, supercell_for_width

    conv_cell = conv_matrix @ primitive.cell.array
    reps = [1, 1, 1]
    while min_width_ang(np.diag(reps) @ conv_cell) < s.fc_min_width_ang:
        # grow the axis whose own face-to-face spacing is smallest
        spacing = [abs(np.linalg.det(conv_cell)) / np.linalg.norm(np.cross(conv_cell[i - 2], conv_cell[i - 1])) * reps[i]
                   for i in range(3)]
        reps[int(np.argmin(spacing))] += 1
    P = np.diag(reps) @ conv_matrix
    if len(primitive) * round(abs(np.linalg.det(P))) <= s.fc_max_atoms:
        return P
    return supercell_for_width(primitive, s.fc_min_width_ang, max_atoms=s.fc_max_atoms)


def fc_cell_atoms(atoms: Atoms, settings: HostSettings = HostSettings()) -> int:
    """Atoms in the force-constant supercell :func:`compute_pristine` would use for ``atoms``.

    No force call: it sets the cost of a host's phonons and of each of its patches, so a
    generation run can take the cheapest hosts first.
    """
    primitive, conv_matrix = standardize_primitive(atoms, settings.symprec)
    P = choose_fc_supercell(primitive, conv_matrix, settings)
    return len(primitive) * round(abs(np.linalg.det(P)))


def compute_forces(cells, calc) -> np.ndarray:
    """Forces (eV/Å) on each of a sequence of ASE/phonopy cells, shape (n_cells, n_atoms, 3)."""
    out = []
    for cell in cells:
        atoms = cell if isinstance(cell, Atoms) else to_ase_atoms(cell)
        atoms.calc = calc
        out.append(atoms.get_forces().copy())
    return np.array(out)


def displaced_force_constants(atoms: Atoms, calc, supercell_matrix, *, displacement_ang: float,
                              symprec: float = 1e-5, plusminus="auto", progress: str | None = None):
    """A phonopy ``Phonopy`` of ``atoms`` whose force constants come from finite displacements.

    ``supercell_matrix`` (3, 3) int, ``displacement_ang`` in Å, forces from ``calc``;
    ``progress`` names a progress bar over the displaced cells (None: no bar). The force
    constants are produced, not symmetrised: callers choose how to enforce the sum rules.
    """
    from phonopy import Phonopy

    phonon = Phonopy(to_phonopy_atoms(atoms), supercell_matrix=supercell_matrix, primitive_matrix="P",
                     symprec=symprec)
    phonon.generate_displacements(distance=displacement_ang, is_plusminus=plusminus)
    cells = phonon.supercells_with_displacements
    if progress:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc=progress, unit="calc", leave=False)
    phonon.forces = compute_forces(cells, calc)
    phonon.produce_force_constants()
    return phonon


def compute_pristine(
    atoms: Atoms,
    settings: HostSettings = HostSettings(),
    *,
    grid: EnergyGrid = DEFAULT_GRID,
    resolution=None,
    fwhm_mev: float = 1.0,
    progress: bool = False,
) -> PristineHost:
    """Relax a host, compute its force constants with phonopy and its q-mesh PDoS.

    Parameters
    ----------
    atoms : ase.Atoms
        Any cell of the host (reduced to spglib's standard primitive cell first).
    settings : HostSettings
        Potential, tolerances, supercell and mesh settings.
    grid, resolution, fwhm_mev
        Energy grid and broadening of the returned host PDoS (``resolution`` wins over ``fwhm_mev``).
    """
    from defectnet.phonons.relax import relax

    timings = {}
    calc = get_calculator(settings.potential)
    primitive, conv_matrix = standardize_primitive(atoms, settings.symprec)
    relax_summary = {}
    if settings.relax:
        res = relax(primitive, calc, fmax=settings.fmax_ev_ang, steps=settings.relax_steps, cell=True, symmetry=True)
        primitive, relax_summary = res.atoms, res.summary()
        timings["relax_s"] = res.seconds

    t0 = time.perf_counter()
    P = choose_fc_supercell(primitive, conv_matrix, settings)
    phonon = displaced_force_constants(primitive, calc, P, displacement_ang=settings.displacement_ang,
                                       symprec=settings.symprec, progress="host displacements" if progress else None)
    phonon.symmetrize_force_constants()
    timings["force_constants_s"] = time.perf_counter() - t0
    timings["n_displacements"] = len(phonon.displacements)

    host = PristineHost(atoms=primitive, phonon=phonon, settings=settings, relax_summary=relax_summary, timings=timings)
    return with_mesh_spectrum(host, grid=grid, resolution=resolution, fwhm_mev=fwhm_mev)


def with_mesh_spectrum(host: PristineHost, *, grid: EnergyGrid = DEFAULT_GRID, resolution=None,
                       fwhm_mev: float = 1.0) -> PristineHost:
    """``host`` with its q-mesh PDoS on ``grid`` and its count of imaginary modes set (in place)."""
    from defectnet.spectrum import Spectrum

    t0 = time.perf_counter()
    settings = host.settings
    freqs, weights, partials = mesh_modes(host, settings.mesh_length_ang)
    host.min_frequency_mev = float(freqs.min())
    host.n_imaginary = int((freqs < -settings.imaginary_tol_mev).sum())
    host.spectrum = Spectrum.from_modes(
        freqs, grid, weights=weights, partial_weights=partials, resolution=resolution,
        fwhm_mev=None if resolution is not None else fwhm_mev,
    )
    host.timings["mesh_dos_s"] = time.perf_counter() - t0
    return host


def gamma_frequencies_mev(atoms: Atoms, calc, displacement_ang: float = 0.01, symprec: float = 1e-4) -> np.ndarray:
    """Phonon energies at Γ (meV, shape (3 n_atoms,), imaginary as negative) from the cell itself.

    Displacing an atom of the unit cell displaces all its images, so the 1×1×1 force constants
    are the lattice sums that make up the dynamical matrix at Γ: exact at Γ (in the harmonic
    limit) at the cost of a few force calls on the small cell, not on a supercell. A cheap
    necessary condition for dynamical stability (:mod:`defectnet.hosts.checks` screens with it).
    """
    phonon = displaced_force_constants(atoms, calc, np.eye(3, dtype=int), displacement_ang=displacement_ang,
                                       symprec=symprec)
    phonon.symmetrize_force_constants()
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    return np.asarray(phonon.get_qpoints_dict()["frequencies"][0]) * UNITS.mev_per_thz


def mesh_modes(host: PristineHost, mesh_length_ang: float):
    """Mode energies (meV), q-point weights and per-element weights on a q-mesh.

    Returns
    -------
    freqs_mev : (n_modes,) ndarray
    weights : (n_modes,) ndarray, q-point multiplicity of each mode
    partials : dict element -> (n_modes,) ndarray, Σ|e|² over that element's atoms (sums to 1 per mode)
    """
    ph = host.phonon
    ph.run_mesh(mesh_length_ang, with_eigenvectors=True, is_mesh_symmetry=True)
    mesh = ph.get_mesh_dict()
    freqs = mesh["frequencies"] * UNITS.mev_per_thz  # (nq, nb)
    evecs = mesh["eigenvectors"]  # (nq, nb, nb): column = mode
    nq, nb = freqs.shape
    w = np.repeat(mesh["weights"].astype(float), nb)
    amp = (np.abs(evecs) ** 2).reshape(nq, nb // 3, 3, nb).sum(axis=2)  # (nq, atom, mode)
    symbols = np.array(host.atoms.get_chemical_symbols())
    partials = {el: amp[:, symbols == el, :].sum(axis=1).ravel() for el in sorted(set(symbols))}
    return freqs.ravel(), w, partials
