"""Relax one candidate host and judge it: the checks of ``defectnet hosts build``.

For each candidate, :func:`evaluate_host`

1. relaxes cell and positions with the MLIP, space group kept (``FixSymmetry`` +
   ``FrechetCellFilter``, :func:`defectnet.phonons.relax.relax`);
2. runs sanity checks: relaxation converged, volume change within ``max_volume_change``, no
   atoms closer than the covalent-radius rule of :func:`candidates.min_distance_ok`, space
   group unchanged (a higher or lower group means the prototype collapsed into something else);
3. checks mechanical stability: the relaxed-ion elastic tensor (:func:`elastic_tensor_gpa`)
   from ``elastic_strain`` finite strains must be positive definite (Born criterion, smallest
   eigenvalue ≥ ``min_elastic_eigenvalue_gpa``, a small negative tolerance for noise and soft
   layers);
4. checks dynamical stability: phonopy force constants and a q-mesh
   (:func:`defectnet.phonons.host.compute_pristine`); stable if no mode lies below
   ``-max_imaginary_mev`` (a small tolerance absorbs the near-Γ acoustic noise of MLIP forces).
   Prototypes are screened first at Γ, exactly and cheaply, from the cell's own force constants
   (:func:`defectnet.phonons.host.gamma_frequencies_mev`): a mode below the same threshold there
   rejects them without the supercell (the supercell would find the same mode: its Γ is exact too).

The settings of all four are a :class:`BuildConfig`. The resumable store, the parallel driver
and the package library are in :mod:`defectnet.hosts.build`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from defectnet.hosts.library import HARD_CHECKS, Host, spacegroup_of
from defectnet.phonons.potentials import DEFAULT_POTENTIAL
from defectnet.settings import Settings

EV_PER_A3_IN_GPA = 160.21766208  # 1 eV/Å³ in GPa


@dataclass(frozen=True)
class BuildConfig(Settings, what="build settings"):
    """How each candidate is relaxed and judged (saved beside the store as ``build_config.json``)."""

    potential: str = DEFAULT_POTENTIAL
    fmax_ev_ang: float = 0.005  # relaxation force tolerance, eV/Å
    relax_steps: int = 400  # BFGS step limit of the cell + positions relaxation
    max_volume_change: float = 0.30  # |V_relaxed / V_start - 1| allowed (the start is a radius-based guess)
    elastic_strain: float = 0.005  # finite strain for the elastic tensor (dimensionless)
    # Born criterion: smallest eigenvalue of C ≥ this (GPa). Slightly negative, not zero: layered
    # hosts have C44 ≈ 0 under MLIPs without dispersion, and forward-difference noise is ~1 GPa
    min_elastic_eigenvalue_gpa: float = -1.0
    # a screening supercell, smaller than the one used for spectra (still holds Γ and zone-boundary q)
    fc_min_width_ang: float = 8.0  # force-constant supercell: smallest perpendicular width, Å
    fc_max_atoms: int = 160  # largest force-constant supercell, atoms
    displacement_ang: float = 0.01  # finite-displacement amplitude, Å
    mesh_length_ang: float = 20.0  # phonopy q-mesh density (length, Å) for the stability check
    imaginary_tol_mev: float = 0.5  # a mode below -tol counts in n_imaginary, meV
    max_imaginary_mev: float = 1.0  # dynamically stable if the lowest mode ≥ -this, meV

def elastic_tensor_gpa(atoms, calc, strain: float = 0.005, *, relax_ions: bool = True) -> np.ndarray:
    """Relaxed-ion elastic tensor C (6×6 Voigt, GPa) from six forward finite strains.

    ASE's stress is (1/V) ∂E/∂ε, so C_ij = ∂σ_i/∂ε_j ≈ (σ_i(ε_j) − σ_i(0))/ε with shear as
    engineering strain; forward differences (7 stress calls rather than 12) are accurate to
    O(ε) ≈ 0.5 %, plenty for the sign of the smallest eigenvalue. Internal coordinates relax
    at each strain (positions only, no symmetry constraint).
    """
    from ase.optimize import BFGS

    def stress(cell):
        work = atoms.copy()
        work.set_cell(cell, scale_atoms=True)
        work.calc = calc
        if relax_ions and len(work) > 1:
            BFGS(work, logfile=None, maxstep=0.05).run(fmax=0.01, steps=40)
        return work.get_stress(voigt=True)

    base = atoms.cell.array.copy()
    s0 = stress(base)
    C = np.zeros((6, 6))
    for j, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = strain if a == b else strain / 2.0
        C[:, j] = (stress(base @ (np.eye(3) + eps)) - s0) / strain
    return 0.5 * (C + C.T) * EV_PER_A3_IN_GPA


def evaluate_host(host_dict: dict, config_dict: dict) -> dict:
    """Relax and check one candidate; never raises (errors become ``status="error"`` records).

    Parameters
    ----------
    host_dict : dict
        ``Host.to_dict()`` of the candidate (plain data, so Dask ships it cheaply).
    config_dict : dict
        ``BuildConfig.to_dict()``.

    Returns
    -------
    dict
        ``{"name", "status": passed|failed|error, "failed_checks", "host", "seconds", "error"}``;
        ``host`` is the relaxed host with full provenance when relaxation ran.
    """
    t0 = time.perf_counter()
    host = Host.from_dict(host_dict)
    cfg = BuildConfig.from_dict(config_dict)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = _evaluate(host, cfg)
    except Exception as exc:  # one bad candidate must not stop a 3,000-host build
        return {
            "name": host.name,
            "status": "error",
            "failed_checks": [],
            "host": host.to_dict(),
            "seconds": round(time.perf_counter() - t0, 2),
            "error": f"{type(exc).__name__}: {str(exc)[:300]}",
        }
    # curated hosts are never charge-balance-gated (MgB2 is a metal on purpose)
    gates = [c for c in HARD_CHECKS if not (host.source == "curated" and c == "charge_balanced")]
    failed = [c for c in gates if built.checks.get(c) is False]  # None: not reached after a failure
    return {
        "name": host.name,
        "status": "passed" if all(built.checks.get(c) for c in gates) else "failed",
        "failed_checks": failed,
        "host": built.to_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
        "error": None,
    }


def _evaluate(host: Host, cfg: BuildConfig) -> Host:
    from defectnet.hosts.candidates import min_distance_ok
    from defectnet.phonons.host import gamma_frequencies_mev, standardize_primitive
    from defectnet.phonons.potentials import get_calculator, potential_info
    from defectnet.phonons.relax import relax

    calc = get_calculator(cfg.potential)
    timings: dict[str, float] = {}
    start, _ = standardize_primitive(host.to_atoms(), 1e-4)
    res = relax(start, calc, fmax=cfg.fmax_ev_ang, steps=cfg.relax_steps, cell=True, symmetry=True)
    timings["relax_s"] = round(res.seconds, 2)
    relaxed = res.atoms
    sg_number, _ = spacegroup_of(relaxed)
    checks: dict[str, bool | None] = {
        "charge_balanced": host.charge_balanced,
        "relaxed": bool(res.converged),
        "volume_change_ok": abs(res.volume_change) <= cfg.max_volume_change,
        "min_distance_ok": min_distance_ok(relaxed, host.oxidation_states),
        "symmetry_kept": sg_number == host.spacegroup_number,
        "mechanically_stable": None,
        "dynamically_stable": None,
    }
    prov: dict = {
        "status": "built",
        "relaxed": True,
        "potential": potential_info(cfg.potential).to_dict(),
        "settings": cfg.to_dict(),
        "volume_change": res.volume_change,
        "relax_steps": res.steps,
        "relax_fmax_ev_ang": res.fmax_ev_ang,
        "energy_ev_per_atom": res.energy_ev / len(relaxed),
        "unrelaxed": {"cell": np.round(host.cell, 5).tolist(), "spacegroup_number": host.spacegroup_number},
    }
    for key in ("score", "mismatch", "scale"):
        if key in host.provenance:
            prov[key] = host.provenance[key]
    # phonons of a structure that fell apart are meaningless and slow: stop at the sanity checks.
    # A prototype failing any hard check is rejected whatever follows, so its remaining checks are
    # skipped (left None, "not reached"); curated hosts get every check, as information.
    gated = host.source != "curated"
    rejected = gated and not all(checks[c] for c in ("charge_balanced", "relaxed", "symmetry_kept"))
    if checks["volume_change_ok"] and checks["min_distance_ok"] and not rejected:
        t0 = time.perf_counter()
        C = elastic_tensor_gpa(relaxed, calc, cfg.elastic_strain)
        timings["elastic_s"] = round(time.perf_counter() - t0, 2)
        eig = np.linalg.eigvalsh(C)
        prov["min_elastic_eigenvalue_gpa"] = float(eig.min())
        prov["bulk_modulus_gpa"] = float((C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[0, 2] + C[1, 2])) / 9.0)
        checks["mechanically_stable"] = bool(eig.min() >= cfg.min_elastic_eigenvalue_gpa)
    if checks["mechanically_stable"] and gated:
        # Γ from the cell itself is exact and ~20x cheaper than the supercell: half the dynamically
        # unstable prototypes (40 sampled, 5-16 atoms) already fail there, and skip the supercell.
        t0 = time.perf_counter()
        gamma_min = float(gamma_frequencies_mev(relaxed, calc, cfg.displacement_ang).min())
        timings["gamma_screen_s"] = round(time.perf_counter() - t0, 2)
        prov["gamma_min_frequency_mev"] = gamma_min
        if gamma_min < -cfg.max_imaginary_mev:
            checks["dynamically_stable"] = False
    if (
        checks["mechanically_stable"] is not None
        and checks["dynamically_stable"] is None
        and (checks["mechanically_stable"] or not gated)
    ):
        relaxed = _phonons(relaxed, cfg, checks, prov, timings)
    prov["checks"] = checks
    prov["timings"] = timings
    return host.with_structure(relaxed, provenance={**host.provenance, **prov})


def _phonons(relaxed, cfg: BuildConfig, checks: dict, prov: dict, timings: dict):
    """The q-mesh phonons of ``relaxed``: ``checks["dynamically_stable"]``, their provenance and time
    recorded in ``prov`` and ``timings``; returns the structure the phonons are of."""
    from defectnet.phonons.host import HostSettings, compute_pristine
    from defectnet.units import UNITS

    settings = HostSettings(
        potential=cfg.potential,
        relax=False,
        displacement_ang=cfg.displacement_ang,
        fc_min_width_ang=cfg.fc_min_width_ang,
        fc_max_atoms=cfg.fc_max_atoms,
        mesh_length_ang=cfg.mesh_length_ang,
        imaginary_tol_mev=cfg.imaginary_tol_mev,
    )
    t0 = time.perf_counter()
    pristine = compute_pristine(relaxed, settings)
    timings["phonons_s"] = round(time.perf_counter() - t0, 2)
    freqs = np.asarray(pristine.phonon.get_mesh_dict()["frequencies"])
    prov.update(
        n_imaginary=int(pristine.n_imaginary),
        min_frequency_mev=float(pristine.min_frequency_mev),
        max_frequency_mev=float(freqs.max() * UNITS.mev_per_thz),
        fc_supercell=pristine.fc_supercell_matrix.tolist(),
        n_displacements=int(pristine.timings.get("n_displacements", 0)),
    )
    checks["dynamically_stable"] = bool(pristine.min_frequency_mev >= -cfg.max_imaginary_mev)
    return pristine.atoms
