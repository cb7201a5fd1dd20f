"""Analysis by synthesis: a host's simulated defect signatures, and the unmixing of a measured one.

DefectNet has to learn, from other hosts, what a dopant does to a host it has never seen; on
never-seen hosts that is its weakness (README, "Against knowing nothing"). When the host is
known, the spectra engine can instead simulate what each candidate does *to this host*: the
signature per unit concentration S_k(E) = ∂g/∂c_k (unit-area density per meV per atomic
fraction), fitted through the origin from a few doped supercells of candidate k alone. A
measured signature Δ = g_doped − g_pristine is then unmixed as Δ ≈ Σ_k c_k S_k with c_k ≥ 0
(non-negative least squares, weighted by the bin widths so that the fit is an integral over
energy, not a sum over bins).

How well signatures add and scale over 0.2–25 %, and how the unmixing compares with the
model on hosts the model never saw, is measured in ``benchmarks/unmix.py`` (README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.grid import EnergyGrid

#: The spectra a basis holds: total PDoS and neutron-weighted GPDoS.
KINDS = ("pdos", "gpdos")


@dataclass(frozen=True)
class BasisConfig:
    """How a host's signature basis is simulated; saved with the basis.

    ``concentrations`` are the atomic fractions of the cell at which each candidate is placed
    alone (the slope is fitted through the origin over them); ``placements`` seeded random
    placements at each. ``simulation`` is a :class:`~defectnet.simulate.SimulationConfig`
    (tier, potential, supercell, broadening, grid); its seed is the first placement's.
    """

    concentrations: tuple[float, ...] = (0.01, 0.05, 0.15)
    placements: int = 1
    simulation: object = None  # SimulationConfig; None = its defaults

    def __post_init__(self):
        from defectnet.simulate import SimulationConfig

        if self.simulation is None:
            object.__setattr__(self, "simulation", SimulationConfig())
        c = tuple(float(x) for x in self.concentrations)
        if not c or any(not 0 < x < 1 for x in c):
            raise DefectnetError(f"basis concentrations must be atomic fractions in (0, 1), got {self.concentrations}")
        if self.placements < 1:
            raise DefectnetError(f"basis placements must be >= 1, got {self.placements}")
        object.__setattr__(self, "concentrations", c)

    def to_dict(self) -> dict:
        return {"concentrations": list(self.concentrations), "placements": self.placements,
                "simulation": self.simulation.to_dict()}


@dataclass
class SignatureBasis:
    """Simulated signatures of a host's candidate dopants.

    Attributes
    ----------
    host : str
    elements : tuple of str, length K
        Candidate dopants (the order of ``signatures`` rows).
    grid : EnergyGrid
    pristine : dict kind -> ndarray (B,)
        The simulated pristine supercell spectrum, unit area, per meV.
    signatures : dict kind -> ndarray (K, B)
        ∂g/∂c per candidate: per meV per atomic fraction (each row integrates to ~0).
    realised : ndarray (K, n)
        The realised atomic fractions the slopes were fitted over.
    scatter : dict kind -> ndarray (K,)
        Relative scatter of the single cells about the fitted slope (rms of ĉ/c − 1 when each
        cell is unmixed alone): placement and nonlinearity, the error a concentration read
        off this basis carries beyond the fit's residual.
    failed : dict element -> str
        Candidates with no signature (a dopant without a stable position on its site), with why.
    config : dict
        :meth:`BasisConfig.to_dict` and the simulation metadata.
    """

    host: str
    elements: tuple
    grid: EnergyGrid
    pristine: dict
    signatures: dict
    realised: np.ndarray
    scatter: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def similarity(self, kind: str = "pdos") -> np.ndarray:
        """(K, K) cosine similarity of the signatures over energy: near 1, two candidates are
        twins that no spectrum tells apart (Ag and Pd in Cu: 0.96), and unmixing can split
        their sum between them arbitrarily."""
        s = self.signatures[kind] * np.sqrt(self.grid.widths)
        n = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-300)
        return n @ n.T

    def save(self, path) -> Path:
        """Write the basis as one ``.npz`` (arrays and a JSON header)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"host": self.host, "elements": list(self.elements), "grid": self.grid.to_dict(), "config": self.config,
                  "failed": self.failed}
        arrays = {f"pristine_{k}": v for k, v in self.pristine.items()}
        arrays |= {f"signatures_{k}": v for k, v in self.signatures.items()}
        arrays |= {f"scatter_{k}": v for k, v in self.scatter.items()}
        np.savez_compressed(path, header=json.dumps(header), realised=self.realised, **arrays)
        return path

    @classmethod
    def load(cls, path) -> SignatureBasis:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                h = json.loads(str(z["header"]))
                return cls(host=h["host"], elements=tuple(h["elements"]), grid=EnergyGrid.from_dict(h["grid"]),
                           pristine={k: z[f"pristine_{k}"] for k in KINDS}, realised=z["realised"],
                           signatures={k: z[f"signatures_{k}"] for k in KINDS},
                           scatter={k: z[f"scatter_{k}"] for k in KINDS if f"scatter_{k}" in z},
                           failed=h.get("failed", {}), config=h["config"])
        except (OSError, KeyError, ValueError) as exc:
            raise DefectnetError(f"not a signature basis ({exc})", source=str(path)) from None


def signature_basis(host, candidates, config: BasisConfig = BasisConfig(), *, pristine_host=None,
                    checkpoint=None, progress: bool = True) -> SignatureBasis:
    """Simulate the signature per unit concentration of each candidate dopant in ``host``.

    Parameters
    ----------
    host : str, path or ase.Atoms
        As for :func:`~defectnet.simulate.simulate_spectra`.
    candidates : list of str
        ``"Si"`` (site chosen as the simulator does) or ``"Si@Ga"``.
    config : BasisConfig
    pristine_host : PristineHost, optional
        A host already relaxed with force constants; its patch cache is filled and reused,
        so each (site, dopant) patch is computed once for all concentrations.
    checkpoint : path, optional
        A file each finished cell is written to as it completes (atomically); run again with
        the same arguments after a crash and finished cells are read back, not recomputed.
        Cells of another configuration are ignored.

    Returns
    -------
    SignatureBasis
        Candidates whose dopant has no stable position on its site are listed in ``failed``
        and have no signature.
    """
    from defectnet.doping import parse_dopants
    from defectnet.phonons.host import compute_pristine
    from defectnet.phonons.patches import UnstablePatch
    from defectnet.simulate import resolve_host, simulate_spectra

    sim = config.simulation
    specs = [parse_dopants(f"{c}:{config.concentrations[0]}")[0] for c in candidates]
    if len({s.element for s in specs}) != len(specs):
        raise DefectnetError(f"candidates repeat an element: {list(candidates)}")
    atoms, name = resolve_host(host)
    stamp = json.dumps({"host": name, "config": config.to_dict()}, sort_keys=True)
    cells = _read_cells(checkpoint, stamp)
    jobs = [(s, c, p) for s in specs for c in config.concentrations for p in range(config.placements)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="signature basis", unit="cell")
    for spec, c, p in jobs:
        key = f"{spec.element}@{spec.site}|{c!r}|{p}"
        if key in cells or f"{spec.element}@{spec.site}|failed" in cells:
            continue
        if pristine_host is None:
            pristine_host = compute_pristine(atoms, sim.host, grid=sim.grid, progress=progress, **sim.broadening())
        try:
            res = simulate_spectra(pristine_host.atoms, [replace(spec, fraction=c)],
                                   replace(sim, seed=sim.seed + p), pristine_host=pristine_host, progress=False)
        except UnstablePatch as exc:
            cells[f"{spec.element}@{spec.site}|failed"] = str(exc)
        else:
            cells["pristine"] = {"pdos": res.pristine.values, "gpdos": res.pristine_gpdos.values}
            cells[key] = {"pdos": res.doped.values - res.pristine.values,
                          "gpdos": res.doped_gpdos.values - res.pristine_gpdos.values,
                          "realised": res.meta["concentrations"][spec.element]}
        _write_cells(checkpoint, stamp, cells)
    failed = {s.element: cells[f"{s.element}@{s.site}|failed"] for s in specs if f"{s.element}@{s.site}|failed" in cells}
    if len(failed) == len(specs):
        raise DefectnetError(f"no candidate has a stable position in {name}: " + "; ".join(failed.values()))
    kept = [s for s in specs if s.element not in failed]
    keys = [[f"{s.element}@{s.site}|{c!r}|{p}" for c in config.concentrations for p in range(config.placements)]
            for s in kept]
    x = np.array([[cells[k]["realised"] for k in row] for row in keys])  # (K, n)
    w = sim.grid.widths
    signatures, scatter = {}, {}
    for kind in KINDS:
        d = np.array([[cells[k][kind] for k in row] for row in keys])  # (K, n, B)
        sig = np.einsum("kn,knb->kb", x, d) / (x * x).sum(axis=1, keepdims=True)  # slope through the origin
        signatures[kind] = sig
        alone = np.einsum("knb,kb->kn", d * w, sig) / ((sig * sig) @ w)[:, None]  # each cell unmixed alone
        scatter[kind] = np.sqrt(np.mean((alone / x - 1) ** 2, axis=1))
    return SignatureBasis(host=name, elements=tuple(s.element for s in kept), grid=sim.grid, pristine=cells["pristine"],
                          signatures=signatures, realised=x, scatter=scatter, failed=failed,
                          config={**config.to_dict(), "candidates": list(candidates)})


def _read_cells(path, stamp: str) -> dict:
    """Finished cells of a :func:`signature_basis` run from its checkpoint (empty if none or another run's)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["stamp"]) != stamp:
                return {}
            cells = json.loads(str(z["scalars"]))
            for name in z.files:
                if "/" in name:
                    key, kind = name.rsplit("/", 1)
                    cells.setdefault(key, {})[kind] = z[name]
            return cells
    except (OSError, KeyError, ValueError):  # a checkpoint cut short: start again
        return {}


def _write_cells(path, stamp: str, cells: dict) -> None:
    if path is None:
        return
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scalars = {k: v for k, v in cells.items() if isinstance(v, str)}
    scalars |= {k: {"realised": v["realised"]} for k, v in cells.items() if isinstance(v, dict) and "realised" in v}
    arrays = {f"{k}/{kind}": v[kind] for k, v in cells.items() if isinstance(v, dict) for kind in KINDS}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, stamp=stamp, scalars=json.dumps(scalars), **arrays)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint whole


def unmix(pristine, doped, basis: SignatureBasis, *, kind: str = "pdos", candidates=None) -> dict:
    """Concentrations of the basis' candidates in a measured signature, by non-negative least squares.

    Parameters
    ----------
    pristine, doped : ndarray (B,)
        Unit-area spectra on the basis grid, per meV (measured, or simulated).
    basis : SignatureBasis
    kind : {'pdos', 'gpdos'}
        Which spectra ``pristine`` and ``doped`` are.
    candidates : list of str, optional
        A subset of ``basis.elements`` (default: all).

    Returns
    -------
    dict
        ``{element: {"concentration": atomic fraction, "uncertainty": 1σ}}`` and under
        ``"_fit"`` the fit's ``residual_fraction`` (‖Δ − Σ c S‖ / ‖Δ‖, 0 = explained) and
        ``unstable`` ({element: why}: candidates with no stable site, reported as 0). The 1σ
        adds in quadrature the least-squares standard error, with the residual as the noise
        level, and the basis' relative ``scatter`` times the concentration.
    """
    from scipy.optimize import nnls

    if kind not in KINDS:
        raise DefectnetError(f"kind must be one of {KINDS}, got {kind!r}")
    asked = list(basis.elements if candidates is None else candidates)
    cands = [c for c in asked if c not in basis.failed]
    missing = [c for c in cands if c not in basis.elements]
    if missing:
        raise DefectnetError(f"candidates {missing} are not in the basis of {basis.host} ({', '.join(basis.elements)})")
    p, d = np.asarray(pristine, float), np.asarray(doped, float)
    if p.shape != (basis.grid.n_bins,) or d.shape != p.shape:
        raise DefectnetError(f"spectra have shapes {p.shape} and {d.shape}; the basis needs ({basis.grid.n_bins},) "
                             f"on grid {basis.grid.grid_id}")
    sw = np.sqrt(basis.grid.widths)
    A = basis.signatures[kind][[basis.elements.index(c) for c in cands]].T * sw[:, None]  # (B, K)
    y = (d - p) * sw
    c, rnorm = nnls(A, y)
    active = c > 0
    sigma = np.zeros_like(c)
    dof = max(int(np.count_nonzero(basis.pristine[kind] > 0)) - int(active.sum()), 1)
    if active.any():
        cov = np.linalg.pinv(A[:, active].T @ A[:, active]) * rnorm ** 2 / dof
        sigma[active] = np.sqrt(np.clip(np.diag(cov), 0, None))
    if kind in basis.scatter:  # placement and nonlinearity, relative to the concentration
        rel = basis.scatter[kind][[basis.elements.index(el) for el in cands]]
        sigma = np.hypot(sigma, rel * c)
    out = {el: {"concentration": 0.0, "uncertainty": 0.0} for el in asked}  # no stable site: absent
    out |= {el: {"concentration": float(ci), "uncertainty": float(si)} for el, ci, si in zip(cands, c, sigma)}
    out["_fit"] = {"residual_fraction": float(rnorm / max(np.linalg.norm(y), 1e-300)),
                   "unstable": {el: basis.failed[el] for el in asked if el in basis.failed}}
    return out
