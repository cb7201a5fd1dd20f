"""The forward model of a host's doped spectra, and unmixing corrected by it.

A signature basis (:mod:`defectnet.unmix`) adds each candidate's own curve, but a mix of
several dopants at 10–30 % gives less signal than that sum, so unmixing reads such mixes low
(README, "Mixes read low"). :class:`Synthesizer` computes any mix exactly for the tier: the
host's patches placed in its supercell, no force call. :func:`refine` synthesises the mix at
the current concentrations, steps by the basis' least squares on the residual, and repeats
(``benchmarks/refine.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defectnet.unmix import (KINDS, MIN_FRACTION, SignatureBasis, UnmixResult, fit_weights, own_curves,
                             residual_summary, unmix, unmix_result)


@dataclass
class Synthesizer:
    """The forward model of one host: the defect signature of any mix of its candidates.

    What a basis linearises, computed exactly for the tier by the host's engine
    (:meth:`defectnet.host.Host.synthesize`): the dopants placed (seeded) in the host's supercell
    as every doped spectrum of the host is, the tier's doped force constants (patches from the
    host's cache: no force call once they are computed) and one Γ-point diagonalisation, ~1–4 s per call.

    Parameters
    ----------
    host : PristineHost or Host
        Relaxed host with force constants; its ``patch_cache`` holds the candidates' patches.
    sites : dict element -> str
        The host site symbol each candidate substitutes (``{"Si": "Ga"}``; None: chosen as the simulator does).
    simulation : SimulationConfig
        Tier, potential, supercell, broadening, grid and placement of the spectra to synthesise.
    supercell_matrix : ndarray (3, 3), optional
        Default: :func:`~defectnet.doping.choose_supercell` of ``simulation.supercell_atoms``.
    """

    host: object
    sites: dict
    simulation: object
    supercell_matrix: np.ndarray | None = None

    def __post_init__(self):
        from defectnet.host import Host

        if not isinstance(self.host, Host):
            self.host = Host(self.host.atoms, self.host.atoms.get_chemical_formula(mode="metal"), self.simulation,
                             pristine=self.host, supercell_matrix=self.supercell_matrix)

    @classmethod
    def from_basis(cls, basis: SignatureBasis) -> Synthesizer:
        """The forward model a basis was simulated with (its ``synthesis``: host and patches)."""
        from defectnet.host import Host

        host = Host.from_basis(basis)
        return cls(host, dict(basis.synthesis["sites"]), host.config)

    @property
    def pristine(self) -> dict:
        """{kind: (B,)} the pristine supercell's spectra, per meV."""
        return {kind: self.host.pristine_spectrum(kind).values for kind in KINDS}

    def signature(self, concentrations: dict, kind: str = "gpdos", seed: int = 0) -> np.ndarray:
        """Δ = doped − pristine (B,) per meV, for ``{element: atomic fraction}`` (placed with ``seed``)."""
        return self.host.synthesize(concentrations, sites=self.sites, kind=kind, seed=seed)


def refine(pristine, doped, basis: SignatureBasis, synthesizer: Synthesizer, *, kind: str = "gpdos",
           candidates=None, iterations: int = 3, seed: int = 0, errors=None, start=None,
           absent=()) -> UnmixResult:
    """:func:`unmix`, then corrected against the forward model itself (weighted by measured errors when given).

    A mix of several dopants at 10–30 % gives less signal than the sum of the basis' curves, so
    :func:`unmix` reads it low. Each iteration synthesises the mix and moves the concentrations by
    the bounded least-squares step of the basis' Jacobian on the residual (defect correction: the
    basis only points the way). The iterate whose synthesis is closest to the signature is kept.

    Parameters
    ----------
    pristine, doped, basis, kind, candidates
        As for :func:`unmix`.
    synthesizer : Synthesizer
        The host's forward model, with the settings the basis was simulated with.
    iterations : int
        Syntheses after the start (each ~1–4 s); 0 gives the start's concentrations.
    seed : int
        Placement seed of every synthesis (one, so iterates differ by concentrations only).
    errors : ndarray (B,), optional
        The measured 1σ of Δ in each bin, per meV, as for :func:`unmix`: the start, every step and
        the choice of the iterate kept weigh each bin by 1/σ (χ²), and the 1σ is the covariance
        with these errors, widened as :func:`~defectnet.unmix.error_inflation` says.
    start : dict element -> atomic fraction, optional
        Where to start instead of :func:`unmix`'s answer (e.g. the conditioned network's); a
        candidate it does not name starts at 0. Unmixing's answer is synthesised too, and the
        iterations go on from whichever of the two the forward model finds closer.
    absent : sequence of str
        Candidates held at 0 throughout (e.g. those the network found absent).

    Returns
    -------
    UnmixResult
        As :func:`unmix`, the 1σ from the kept iterate's residual (or, with ``errors``, its covariance);
        ``fit`` also has ``start`` (the concentrations started from), ``started_from`` (``unmixing``
        or ``given``), ``unmixed``, ``iteration`` (the one kept) and ``history`` (per iteration, 0 =
        the start: ``residual_fraction`` of its synthesis, ‖r‖/‖Δ‖ unweighted, and ``concentrations``).
    """
    from scipy.optimize import lsq_linear

    unmixed = unmix(pristine, doped, basis, kind=kind, candidates=candidates, errors=errors)
    asked = list(basis.elements if candidates is None else candidates)
    cands = [c for c in asked if c not in basis.failed]
    sw, root = fit_weights(errors, basis.grid), np.sqrt(basis.grid.widths)
    delta = np.asarray(doped, float) - np.asarray(pristine, float)
    y = delta * sw
    cols = [basis.elements.index(c) for c in cands]
    knots, curves = basis.realised[cols], basis.curves[kind][cols] * sw

    def residual(c):
        return y - synthesizer.signature(dict(zip(cands, c)), kind=kind, seed=seed) * sw

    held = set(absent)
    free = np.array([el not in held for el in cands], bool)
    c, r, began = _closer_start(residual, [unmixed[el]["concentration"] for el in cands],
                                None if start is None else [float(start.get(el, 0.0)) for el in cands], free)
    first = dict(zip(cands, map(float, c)))
    best, history = (r @ r, 0, c, r), []
    for it in range(iterations + 1):
        if it:
            _, J = own_curves(knots, curves, c)
            step = np.zeros_like(c)
            if free.any():
                step[free] = lsq_linear(J[:, free], r, bounds=(-c[free], 1.0 - c[free])).x
            c = np.clip(c + step, 0.0, 1.0)
            c[c < MIN_FRACTION] = 0.0
            r = residual(c)
        history.append({"residual_fraction": float(np.linalg.norm(r * root / sw) / max(np.linalg.norm(delta * root),
                                                                                        1e-300)),
                        "concentrations": dict(zip(cands, map(float, c)))})
        if r @ r < best[0]:
            best = (r @ r, it, c, r)
    _, it, c, r = best
    _, J = own_curves(knots, curves, c)
    fit = {"model": "refined", "iteration": it, "start": first, "started_from": began,
           "unmixed": {el: unmixed[el]["concentration"] for el in cands},
           "history": history, "unstable": {el: basis.failed[el] for el in asked if el in basis.failed},
           **residual_summary(r, delta * root, sw, basis.grid, errors is not None)}
    return unmix_result(asked, cands, c, J, r, y, curves, fit, measured=errors is not None)


def _closer_start(residual, unmixed, given, free) -> tuple[np.ndarray, np.ndarray, str]:
    """(c, residual, ``unmixing`` or ``given``): of the unmixed concentrations and the ``given`` ones
    (None: none given), each with the held candidates (``free`` False) at 0, the one whose
    synthesis is closer to the signature."""
    c = np.clip(unmixed, 0.0, 1.0) * free
    r = residual(c)
    if given is not None:
        c1 = np.clip(given, 0.0, 1.0) * free
        r1 = residual(c1)
        if r1 @ r1 < r @ r:
            return c1, r1, "given"
    return c, r, "unmixing"
