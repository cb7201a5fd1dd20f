"""A host's signature basis: each candidate dopant's simulated defect signature, and how it is built.

:class:`SignatureBasis` is what :func:`defectnet.unmix.unmix` reads a measured signature
against: per candidate, the signature Δ_k(c) = g_doped − g_pristine at a few concentrations
(:class:`BasisConfig`), one doped supercell each, simulated by the host's engine
(:meth:`defectnet.host.Host.basis`, which calls :func:`build_basis`). A basis run keeps each
finished cell in a checkpoint file, so a crash loses only the cell in flight.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from defectnet.errors import DefectnetError, exception_reason
from defectnet.grid import EnergyGrid

#: The spectra a basis holds: total PDoS and neutron-weighted GPDoS.
KINDS = ("pdos", "gpdos")
#: Each basis kind as a spectrum names it (``Spectrum.kind``, ``predict --kind``, a checkpoint's
#: ``spectrum_mode``): the one mapping between the two names that files already use for the total
#: PDoS, ``pdos`` in a basis (its arrays, ``limits --kind``) and ``total`` in a spectrum.
SPECTRUM_KINDS = {"pdos": "total", "gpdos": "gpdos"}


def basis_kind(kind: str) -> str:
    """The basis' name (:data:`KINDS`) of a spectrum kind: ``gpdos``, or ``pdos`` for the total."""
    return "gpdos" if kind == "gpdos" else "pdos"


@dataclass(frozen=True)
class BasisConfig:
    """How a host's signature basis is simulated; saved with the basis.

    ``concentrations`` are the atomic fractions of the cell at which each candidate is placed
    alone (the slope is fitted through the origin over them); ``placements`` seeded random
    placements at each. ``simulation`` is a :class:`~defectnet.simulation.SimulationConfig`
    (tier, potential, supercell, broadening, grid); its seed is the first placement's.
    """

    concentrations: tuple[float, ...] = (0.01, 0.05, 0.15)
    placements: int = 1
    simulation: object = None  # SimulationConfig; None = its defaults

    def __post_init__(self):
        from defectnet.simulation import SimulationConfig

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
        Mean ∂g/∂c per candidate, the slope through the origin: per meV per atomic fraction
        (each row integrates to ~0). Used to start the unmixing and to compare candidates.
    curves : dict kind -> ndarray (K, n, B)
        Δ_k at the ``realised`` concentrations (mean over placements), per meV.
    realised : ndarray (K, n)
        The realised atomic fractions of ``curves``, increasing along n.
    failed : dict element -> str
        Candidates with no signature (a dopant without a stable position on its site), with why.
    config : dict
        :meth:`BasisConfig.to_dict` and the simulation metadata.
    synthesis : dict
        What :meth:`defectnet.synthesis.Synthesizer.from_basis` needs to simulate any mix of the candidates (empty
        if the basis was not made with it): ``pristine`` (the relaxed host with its force
        constants) and ``patches`` (one per candidate site), as blobs; ``sites`` {element:
        site symbol or None}; ``supercell_matrix`` (3, 3).
    """

    host: str
    elements: tuple
    grid: EnergyGrid
    pristine: dict
    signatures: dict
    curves: dict
    realised: np.ndarray
    failed: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    synthesis: dict = field(default_factory=dict)

    @property
    def sites(self) -> dict:
        """{element: host site symbol, or None for :func:`~defectnet.doping.auto_site`} each candidate
        was simulated on: the synthesis record's, else the ``El@Site`` candidates it was made of.

        A :class:`~defectnet.synthesis.Synthesizer` of the basis must place each element there: a
        store's basis puts its dopants where the samples were placed, which ``auto_site`` often is
        not (C, Si, Ge, Sn in BAs; Ag in KI)."""
        recorded = (self.synthesis or {}).get("sites")
        if recorded:
            return {el: recorded.get(el) for el in self.elements}
        asked = {c.partition("@")[0]: c.partition("@")[2] or None for c in self.config.get("candidates") or ()}
        return {el: asked.get(el) for el in self.elements}

    def similarity(self, kind: str = "pdos") -> np.ndarray:
        """(K, K) cosine similarity of the signatures over energy: near 1, two candidates are
        twins that no spectrum tells apart (Ag and Pd in Cu: 0.96), and unmixing can split
        their sum between them arbitrarily."""
        s = self.signatures[kind] * np.sqrt(self.grid.widths)
        n = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-300)
        return n @ n.T

    def alike(self, kind: str = "pdos", among=None) -> list[tuple[str, str, float]]:
        """Pairs of candidates (``among`` a subset, default all) with their signatures' cosine
        similarity, most alike first."""
        sim = self.similarity(kind)
        idx = [i for i, el in enumerate(self.elements) if among is None or el in among]
        pairs = [(self.elements[i], self.elements[j], float(sim[i, j])) for n, i in enumerate(idx) for j in idx[n + 1:]]
        return sorted(pairs, key=lambda t: -t[2])

    def save(self, path, dtype=np.float64) -> Path:
        """Write the basis as one ``.npz`` (arrays and a JSON header); ``float32`` halves a
        committed basis (spectra keep 7 significant digits)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"host": self.host, "elements": list(self.elements), "grid": self.grid.to_dict(), "config": self.config,
                  "failed": self.failed}
        arrays = {f"pristine_{k}": np.asarray(v, dtype) for k, v in self.pristine.items()}
        arrays |= {f"signatures_{k}": np.asarray(v, dtype) for k, v in self.signatures.items()}
        arrays |= {f"curves_{k}": np.asarray(v, dtype) for k, v in self.curves.items()}
        if self.synthesis:
            syn = self.synthesis
            header["synthesis"] = {"sites": syn["sites"], "supercell_matrix": np.asarray(syn["supercell_matrix"]).tolist(),
                                   "n_patches": len(syn["patches"])}
            arrays["synthesis_pristine"] = np.frombuffer(syn["pristine"], np.uint8)
            arrays |= {f"synthesis_patch_{i}": np.frombuffer(b, np.uint8) for i, b in enumerate(syn["patches"])}
        np.savez_compressed(path, header=json.dumps(header), realised=self.realised, **arrays)
        return path

    @classmethod
    def load(cls, path) -> SignatureBasis:
        path = Path(path)
        expected = "expected .npz written by defectnet basis"
        if not path.is_file():
            raise DefectnetError(f"{'is a directory' if path.is_dir() else 'file not found'}; {expected}", source=str(path))
        if not zipfile.is_zipfile(path):  # an image, a text file ...: numpy would talk of pickles
            raise DefectnetError(f"not a signature basis file ({expected})", source=str(path))
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # closed even when numpy fails
                h = json.loads(str(z["header"]))
                return cls(host=h["host"], elements=tuple(h["elements"]), grid=EnergyGrid.from_dict(h["grid"]),
                           pristine={k: z[f"pristine_{k}"].astype(float) for k in KINDS}, realised=z["realised"],
                           signatures={k: z[f"signatures_{k}"].astype(float) for k in KINDS},
                           curves={k: z[f"curves_{k}"].astype(float) for k in KINDS},
                           failed=h.get("failed", {}), config=h["config"], synthesis=_read_synthesis(h, z))
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise DefectnetError(f"not a signature basis file ({expected}; {exception_reason(exc)})",
                                 source=str(path)) from None


def basis_files(folder) -> list[Path]:
    """The finished bases in ``folder``, sorted: its ``*.npz`` but the hidden checkpoints
    (``.<host>.cells.npz``) of bases still being built."""
    return sorted(p for p in Path(folder).glob("*.npz") if not p.name.startswith("."))


def _read_synthesis(header: dict, z) -> dict:
    syn = header.get("synthesis")
    if not syn:
        return {}
    return {"sites": syn["sites"], "supercell_matrix": np.array(syn["supercell_matrix"]),
            "pristine": z["synthesis_pristine"].tobytes(),
            "patches": [z[f"synthesis_patch_{i}"].tobytes() for i in range(syn["n_patches"])]}


#: A basis cell fills at most this share of its candidate's site sublattice.
MAX_SITE_SHARE = 0.8


def site_knots(concentrations, site_fraction: float) -> tuple[float, ...]:
    """The concentrations (atomic fractions, ascending) a candidate's basis cells can hold on its site.

    A site that makes up ``site_fraction`` of the crystal (the Zn sublattice of ZnAl2S4: 1/7) cannot
    take 15 at.%: the largest concentration becomes :data:`MAX_SITE_SHARE` × ``site_fraction`` and
    each smaller one at most half the next, so the knots stay distinct and span what the site holds.
    Concentrations the site holds are kept as they are.
    """
    out = list(map(float, concentrations))
    if max(out) <= site_fraction:  # the site holds them all
        return tuple(out)
    top = MAX_SITE_SHARE * float(site_fraction)
    for i in reversed(range(len(out))):
        out[i] = min(out[i], top)
        top = out[i] / 2
    return tuple(out)


def build_basis(host, candidates, config: BasisConfig, *, checkpoint=None, progress: bool = False,
                synthesis: bool = True, workers: int = 1) -> SignatureBasis:
    """Simulate each candidate's signature in ``host`` (a :class:`~defectnet.host.Host`) cell by cell.

    Each cell places one candidate alone with :meth:`~defectnet.host.Host.place` (seed
    ``config.simulation.seed + placement``), the routine every doped spectrum of the host uses.
    ``checkpoint``, ``synthesis``, ``workers``: as for :func:`defectnet.unmix.signature_basis`.
    """
    from defectnet.doping import auto_site, parse_dopants
    from defectnet.phonons.patches import UnstablePatch

    sim = config.simulation
    specs = [parse_dopants(f"{c}:{config.concentrations[0]}")[0] for c in candidates]
    if len({s.element for s in specs}) != len(specs):
        raise DefectnetError(f"candidates repeat an element: {list(candidates)}")
    symbols = host.structure.get_chemical_symbols()  # the primitive cell: the same fractions, nothing computed
    knots = {s.element: dict(zip(config.concentrations, site_knots(config.concentrations, symbols.count(
        s.site or auto_site(s.element, sorted(set(symbols)))) / len(symbols)))) for s in specs}
    stamp = json.dumps({"host": host.name, "config": config.to_dict()}, sort_keys=True)
    cells = _read_cells(checkpoint, stamp)
    pending = [s for s in specs if not any(k.startswith(f"{s.element}@{s.site}|") for k in cells)]
    for element, why in host.compute_patches(pending, workers).items():  # the costly part, in parallel
        spec = next(s for s in pending if s.element == element)
        cells[f"{element}@{spec.site}|failed"] = why
    jobs = [(s, c, p) for s in specs for c in config.concentrations for p in range(config.placements)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="signature basis", unit="cell")
    for spec, c, p in jobs:
        key = f"{spec.element}@{spec.site}|{c!r}|{p}"
        if key in cells or f"{spec.element}@{spec.site}|failed" in cells:
            continue
        try:
            placed = host.place([replace(spec, fraction=knots[spec.element][c])], seed=sim.seed + p)
        except UnstablePatch as exc:
            cells[f"{spec.element}@{spec.site}|failed"] = str(exc)
        else:
            cells["pristine"] = {kind: host.pristine_spectrum(kind).values for kind in KINDS}
            cells[key] = {kind: placed.spectrum(kind).values - cells["pristine"][kind] for kind in KINDS}
            cells[key]["realised"] = placed.substitution.concentrations[spec.element]
        _write_cells(checkpoint, stamp, cells)
    failed = {s.element: cells[f"{s.element}@{s.site}|failed"] for s in specs if f"{s.element}@{s.site}|failed" in cells}
    if len(failed) == len(specs):
        raise DefectnetError(f"no candidate has a stable position in {host.name}: " + "; ".join(failed.values()))
    kept = [s for s in specs if s.element not in failed]
    keys = [[[f"{s.element}@{s.site}|{c!r}|{p}" for p in range(config.placements)] for c in config.concentrations]
            for s in kept]
    x = np.array([[np.mean([cells[k]["realised"] for k in ps]) for ps in row] for row in keys])  # (K, n)
    order = np.argsort(x, axis=1)
    x = np.take_along_axis(x, order, axis=1)
    if np.any(np.diff(x, axis=1) <= 0):
        raise DefectnetError(f"basis concentrations {config.concentrations} give the same dopant count in the "
                             f"supercell ({x.min():.4f}…): choose fractions further apart or a larger supercell")
    curves, signatures = {}, {}
    for kind in KINDS:
        d = np.array([[np.mean([cells[k][kind] for k in ps], axis=0) for ps in row] for row in keys])  # (K, n, B)
        curves[kind] = np.take_along_axis(d, order[:, :, None], axis=1)
        signatures[kind] = np.einsum("kn,knb->kb", x, curves[kind]) / (x * x).sum(axis=1, keepdims=True)
    # nothing computed (every cell from the checkpoint): no host at hand to keep
    kept_synthesis = host.synthesis_record({s.element: s.site for s in kept}) if synthesis and host.computed else {}
    return SignatureBasis(host=host.name, elements=tuple(s.element for s in kept), grid=sim.grid,
                          pristine=cells["pristine"], signatures=signatures, curves=curves, realised=x, failed=failed,
                          config={**config.to_dict(), "candidates": list(candidates)}, synthesis=kept_synthesis)


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
