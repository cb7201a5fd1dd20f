"""The forward model of a host's doped spectra, and unmixing corrected by it.

A signature basis (:mod:`defectnet.unmix`) adds each candidate's own curve, but a mix of
several dopants at 10–30 % gives less signal than that sum, so unmixing reads such mixes low
(README, "Mixes read low"). :class:`Synthesizer` computes any mix exactly for the tier: the
host's patches placed in its supercell, no force call. :func:`refine` synthesises the mix at
the current concentrations, steps by the basis' least squares on the residual, and repeats
(``benchmarks/refine.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.unmix import MIN_FRACTION, SignatureBasis, _own_curves, _report, unmix


@dataclass
class Synthesizer:
    """The forward model of one host: the defect signature of any mix of its candidates.

    What a basis linearises, computed exactly for the tier: the dopants placed (seeded) in the
    host's supercell, the tier's doped force constants (patches from the host's cache: no force
    call once they are computed) and one Γ-point diagonalisation, ~1–4 s per call.

    Parameters
    ----------
    host : PristineHost
        Relaxed host with force constants; its ``patch_cache`` holds the candidates' patches.
    sites : dict element -> str
        The host site symbol each candidate substitutes (``{"Si": "Ga"}``).
    simulation : SimulationConfig
        Tier, potential, supercell, broadening and grid of the spectra to synthesise.
    supercell_matrix : ndarray (3, 3), optional
        Default: :func:`~defectnet.doping.choose_supercell` of ``simulation.supercell_atoms``.
    max_imaginary_mev : float
        A placement whose lowest Γ mode is below −this is placed again (up to
        ``placement_attempts`` times), as the dataset's samples are.
    """

    host: object
    sites: dict
    simulation: object
    supercell_matrix: np.ndarray | None = None
    max_imaginary_mev: float = 5.0
    placement_attempts: int = 3
    _cell: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        from defectnet.doping import choose_supercell
        from defectnet.elements import atomic_fractions
        from defectnet.phonons.dos import gamma_spectrum
        from defectnet.phonons.forceconstants import pristine_supercell
        from defectnet.phonons.potentials import get_calculator
        from defectnet.phonons.tiers import get_tier

        sim = self.simulation
        P = choose_supercell(self.host.atoms, sim.supercell_atoms) if self.supercell_matrix is None \
            else np.asarray(self.supercell_matrix)
        sc, fc0 = pristine_supercell(self.host, P)
        pristine, _ = gamma_spectrum(fc0, sc, sim.grid, **sim.broadening())
        self._cell.update(atoms=sc, fc0=fc0, calc=get_calculator(sim.potential) if get_tier(sim.tier).needs_calculator else None,
                          pristine={"pdos": pristine.values,
                                    "gpdos": pristine.neutron_weighted(atomic_fractions(sc.get_chemical_symbols())).values})

    @classmethod
    def from_basis(cls, basis: SignatureBasis) -> Synthesizer:
        """The forward model a basis was simulated with (its ``synthesis``: host and patches)."""
        from defectnet.data.blobs import cache_patches, unpack_pristine
        from defectnet.simulate import SimulationConfig

        if not basis.synthesis:
            raise DefectnetError(f"the basis of {basis.host} holds no host and patches to synthesise mixes with: "
                                 "make it again with `defectnet basis` (this version keeps them)")
        sim = SimulationConfig.from_dict(basis.config["simulation"])
        host, P = unpack_pristine(basis.synthesis["pristine"], sim.host)
        cache_patches(host, basis.synthesis["patches"], sim.tier_settings)
        return cls(host, dict(basis.synthesis["sites"]), sim, supercell_matrix=P)

    @property
    def pristine(self) -> dict:
        """{kind: (B,)} the pristine supercell's spectra, per meV."""
        return self._cell["pristine"]

    def signature(self, concentrations: dict, kind: str = "gpdos", seed: int = 0) -> np.ndarray:
        """Δ = doped − pristine (B,) per meV, for ``{element: atomic fraction}`` (placed with ``seed``)."""
        from defectnet.doping import DopantSpec
        from defectnet.elements import atomic_fractions

        sc, sim = self._cell["atoms"], self.simulation
        specs = [DopantSpec(el, self.sites[el], float(c)) for el, c in concentrations.items() if c * len(sc) >= 0.5]
        if not specs:  # less than half an atom of every candidate: the pristine cell
            return np.zeros_like(self.pristine[kind])
        doped, res, _, _ = placed_spectrum(sc, specs, seed, fc0=self._cell["fc0"], host=self.host,
                                           calc=self._cell["calc"], tier=sim.tier, tier_settings=sim.tier_settings,
                                           grid=sim.grid, broadening=sim.broadening(),
                                           attempts=self.placement_attempts, max_imaginary_mev=self.max_imaginary_mev)
        if kind == "gpdos":
            doped = doped.neutron_weighted(atomic_fractions(res.atoms.get_chemical_symbols()))
        return doped.values - self.pristine[kind]


def placed_spectrum(sc, specs, seed: int, *, fc0, host, calc, tier: str, tier_settings, grid, broadening: dict,
                    attempts: int = 3, max_imaginary_mev: float = 5.0, timer=None, check=None):
    """Dopants ``specs`` placed in supercell ``sc`` and its Γ-point spectrum, as the dataset places them.

    Attempt 0 places with ``default_rng(seed)`` (what every stored sample used), attempt a with
    ``default_rng([seed, a])``; placing stops at the first whose lowest Γ mode is ≥
    −``max_imaginary_mev`` (meV), or after ``attempts``.

    Parameters
    ----------
    sc : ase.Atoms
        The pristine supercell; ``fc0`` its force constants, ``host`` the relaxed host (patch cache), ``calc``
        the potential (None for the mass tier).
    timer : callable, optional
        ``timer(stage)`` gives a context manager around each stage (``substitute``, ``tier``, ``diagonalise``).
    check : callable, optional
        Called after each tier call (a generation task's timeout probe).

    Returns
    -------
    (Spectrum, TierResult, Substitution, int)
        The doped spectrum (unit area, per meV, not yet neutron-weighted), the tier's result, the
        substitution and the number of attempts made.
    """
    from contextlib import nullcontext

    from defectnet.doping import substitute
    from defectnet.phonons.dos import gamma_spectrum
    from defectnet.phonons.forceconstants import DopedSystem
    from defectnet.phonons.tiers import get_tier

    stage = timer or (lambda name: nullcontext())
    for attempt in range(attempts):
        with stage("substitute"):
            atoms, sub = substitute(sc, specs, np.random.default_rng(seed if attempt == 0 else [seed, attempt]))
        with stage("tier"):
            res = get_tier(tier)(DopedSystem(atoms, sub.dopant_indices, fc0, host, calc, False), tier_settings)
        if check is not None:
            check()
        with stage("diagonalise"):
            doped, _ = gamma_spectrum(res.fc, res.atoms, grid, **broadening)
        if doped.meta["min_frequency_mev"] >= -max_imaginary_mev:
            break
    return doped, res, sub, attempt + 1


def refine(pristine, doped, basis: SignatureBasis, synthesizer: Synthesizer, *, kind: str = "gpdos",
           candidates=None, iterations: int = 3, seed: int = 0) -> dict:
    """:func:`unmix`, then corrected against the forward model itself.

    The basis adds each candidate's own curve, but a mix of several dopants at 10–30 % gives
    less signal than that sum (measured on fresh hosts, README), so :func:`unmix` reads such
    mixes low. Each iteration synthesises the mix at the current concentrations and moves them
    by the bounded least-squares step that the basis' Jacobian gives for the residual (defect
    correction: the basis only has to point the way). The iterate whose synthesis is closest to
    the signature is kept (a placement's noise can make later ones worse).

    Parameters
    ----------
    pristine, doped, basis, kind, candidates
        As for :func:`unmix`.
    synthesizer : Synthesizer
        The host's forward model, with the settings the basis was simulated with.
    iterations : int
        Syntheses after the start (each ~1–4 s); 0 gives :func:`unmix`'s concentrations.
    seed : int
        Placement seed of every synthesis (the same one, so that iterates differ by the
        concentrations, not by the placement).

    Returns
    -------
    dict
        As :func:`unmix`, the 1σ from the kept iterate's residual; ``_fit`` also has ``start``
        (the unmixed concentrations), ``iteration`` (the one kept) and ``history`` (per
        iteration, 0 = the start: ``residual_fraction`` of its synthesis and ``concentrations``).
    """
    from scipy.optimize import lsq_linear

    start = unmix(pristine, doped, basis, kind=kind, candidates=candidates)
    asked = list(basis.elements if candidates is None else candidates)
    cands = [c for c in asked if c not in basis.failed]
    sw = np.sqrt(basis.grid.widths)
    y = (np.asarray(doped, float) - np.asarray(pristine, float)) * sw
    cols = [basis.elements.index(c) for c in cands]
    knots, curves = basis.realised[cols], basis.curves[kind][cols] * sw

    def residual(c):
        return y - synthesizer.signature(dict(zip(cands, c)), kind=kind, seed=seed) * sw

    c = np.array([start[el]["concentration"] for el in cands])
    r = residual(c)
    best, history = (r @ r, 0, c, r), []
    for it in range(iterations + 1):
        if it:
            _, J = _own_curves(knots, curves, c)
            c = np.clip(c + lsq_linear(J, r, bounds=(-c, 1.0 - c)).x, 0.0, 1.0)
            c[c < MIN_FRACTION] = 0.0
            r = residual(c)
        history.append({"residual_fraction": float(np.linalg.norm(r) / max(np.linalg.norm(y), 1e-300)),
                        "concentrations": dict(zip(cands, map(float, c)))})
        if r @ r < best[0]:
            best = (r @ r, it, c, r)
    _, it, c, r = best
    _, J = _own_curves(knots, curves, c)
    return _report(asked, cands, c, J, r, y, curves,
                   {"model": "refined", "iteration": it, "start": {el: start[el]["concentration"] for el in cands},
                    "history": history, "unstable": {el: basis.failed[el] for el in asked if el in basis.failed}})
