"""Simulate pristine and doped PDoS of a host: the spectra engine's front door.

``simulate_spectra(host, "Ge:0.01,Sn:0.004")`` relaxes the host with the MLIP, computes
its force constants, builds a near-cubic doped supercell (433–500 atoms by default) and
returns the pristine and doped spectra of that supercell on the fixed energy grid. Both
spectra come from the same supercell at Γ, so their difference is the defect signature
alone, not a difference of q-point sampling.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from defectnet.doping import DEFAULT_SUPERCELL_ATOMS, choose_supercell, parse_dopants, substitute
from defectnet.elements import atomic_fractions
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import HostSettings
from defectnet.provenance import library_versions

DEFAULT_TIER = "patch"


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated pair of spectra; saved next to every output."""

    tier: str = DEFAULT_TIER
    potential: str = "sevennet"
    supercell_atoms: tuple[int, int] | int = DEFAULT_SUPERCELL_ATOMS
    fwhm_mev: float = 1.0  # Gaussian broadening, meV (ignored when ``resolution`` is set)
    resolution: str | None = None  # instrument preset, e.g. "tosca"
    seed: int = 0
    grid: EnergyGrid = DEFAULT_GRID
    host: HostSettings = HostSettings()
    tier_settings: TierSettings = TierSettings()

    def __post_init__(self):
        from defectnet.phonons.tiers import get_tier
        from defectnet.phonons.potentials import canonical_name

        get_tier(self.tier)
        object.__setattr__(self, "potential", canonical_name(self.potential))
        if self.host.potential != self.potential:
            object.__setattr__(self, "host", replace(self.host, potential=self.potential))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid"] = self.grid.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SimulationConfig:
        """The config :meth:`to_dict` wrote (e.g. the ``simulation`` of a saved basis)."""
        from defectnet.data.validate import parse_settings

        d = dict(d)
        d["grid"] = EnergyGrid.from_dict(d["grid"])
        d["host"] = parse_settings("host", d["host"], HostSettings)
        d["tier_settings"] = parse_settings("tier_settings", d["tier_settings"], TierSettings)
        if isinstance(d["supercell_atoms"], list):
            d["supercell_atoms"] = tuple(d["supercell_atoms"])
        return cls(**d)

    def broadening(self) -> dict:
        return {"resolution": self.resolution} if self.resolution else {"fwhm_mev": self.fwhm_mev}


@dataclass
class SimulationResult:
    """Spectra and structures of one simulation, with everything needed to reproduce it."""

    pristine: object  # Spectrum: pristine supercell at Γ (total + partials)
    doped: object  # Spectrum: doped supercell at Γ
    pristine_gpdos: object
    doped_gpdos: object
    host_spectrum: object  # Spectrum: the host's converged q-mesh PDoS
    host_atoms: Atoms  # relaxed primitive cell
    doped_atoms: Atoms
    config: SimulationConfig
    meta: dict = field(default_factory=dict)

    def write(self, out: str | Path) -> Path:
        """Write CIFs, ``pristine.csv``, ``doped.csv``, ``meta.json``, ``config.json`` and a PNG."""
        from ase.io import write

        from defectnet.io import write_spectrum

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write(out / "host_relaxed.cif", self.host_atoms)
        write(out / "doped.cif", self.doped_atoms)
        write_spectrum(self.pristine, out / "pristine.csv", extra_columns={"gpdos": self.pristine_gpdos.values})
        write_spectrum(self.doped, out / "doped.csv", extra_columns={"gpdos": self.doped_gpdos.values})
        write_spectrum(self.host_spectrum, out / "host_qmesh.csv")
        (out / "meta.json").write_text(json.dumps(self.meta, indent=2, default=_json_default))
        (out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        plot_comparison(self, out / "spectra.png")
        return out


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def simulate_spectra(
    host,
    dopants,
    config: SimulationConfig = SimulationConfig(),
    *,
    pristine_host=None,
    progress: bool = True,
) -> SimulationResult:
    """Pristine and doped PDoS/GPDoS of ``host`` with ``dopants``.

    Parameters
    ----------
    host : str, path or ase.Atoms
        A library name (``"Si"``, ``"GaN-wurtzite"``), a CIF/POSCAR path, or a structure.
    dopants : str or list of DopantSpec
        ``"Si@Ga:0.02,Zn@Ga:0.005"``: element, optional host site, atomic fraction of the cell.
    config : SimulationConfig
        Tier, potential, supercell size, broadening, grid, seed.
    pristine_host : PristineHost, optional
        A host already relaxed with force constants (skips that step; must match ``config``).
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    SimulationResult
    """
    from defectnet.phonons.dos import gamma_spectrum
    from defectnet.phonons.forceconstants import DopedSystem, pristine_supercell
    from defectnet.phonons.tiers import get_tier
    from defectnet.phonons.cache import cached_pristine
    from defectnet.phonons.potentials import get_calculator, potential_info

    t_start = time.perf_counter()
    specs = parse_dopants(dopants) if isinstance(dopants, str) else list(dopants)
    atoms, host_name = resolve_host(host)
    stage = _Stages(progress)

    if pristine_host is None:
        stage("relaxing host and computing its force constants")
        pristine_host = cached_pristine(atoms, config.host, grid=config.grid, progress=progress, **config.broadening())
    P = choose_supercell(pristine_host.atoms, config.supercell_atoms)
    stage(f"building a {len(pristine_host.atoms) * round(abs(np.linalg.det(P)))}-atom supercell")
    sc_atoms, fc0 = pristine_supercell(pristine_host, P)
    rng = np.random.default_rng(config.seed)
    doped_atoms, sub = substitute(sc_atoms, specs, rng)
    dopant_idx = sub.dopant_indices

    stage(f"tier '{config.tier}': doped force constants")
    t0 = time.perf_counter()
    calc = get_calculator(config.potential) if get_tier(config.tier).needs_calculator else None
    system = DopedSystem(doped_atoms, dopant_idx, fc0, pristine_host, calc, progress)
    result = get_tier(config.tier)(system, config.tier_settings)
    t_tier = time.perf_counter() - t0

    stage("diagonalising and broadening")
    t0 = time.perf_counter()
    pristine, _ = gamma_spectrum(fc0, sc_atoms, config.grid, **config.broadening())
    doped, _ = gamma_spectrum(result.fc, result.atoms, config.grid, **config.broadening())
    t_dos = time.perf_counter() - t0
    n = len(sc_atoms)
    host_fractions = atomic_fractions(sc_atoms.get_chemical_symbols())
    doped_fractions = atomic_fractions(doped_atoms.get_chemical_symbols())
    out_atoms = result.atoms
    if get_tier(config.tier).uses_patches:
        out_atoms = _patch_relaxed(result, system, pristine_host)
    stage.close()

    import defectnet

    meta = {
        "host": host_name,
        "host_formula": pristine_host.atoms.get_chemical_formula(mode="metal"),
        "potential": potential_info(config.potential).to_dict(),
        "tier": config.tier,
        "supercell_matrix": P.tolist(),
        "supercell_atoms": n,
        "dopants": sub.to_dict(),
        "concentrations": sub.concentrations,  # per dopant element, atomic fraction
        "host_n_imaginary_qmesh": pristine_host.n_imaginary,
        "host_min_frequency_mev": pristine_host.min_frequency_mev,
        "doped_n_imaginary": doped.meta.get("n_imaginary", 0),
        "doped_min_frequency_mev": doped.meta.get("min_frequency_mev"),
        "tier_info": result.info,
        "timings_s": {**pristine_host.timings, "tier": t_tier, "dos": t_dos, "total": time.perf_counter() - t_start},
        "grid_id": config.grid.grid_id,
        "seed": config.seed,
        "versions": library_versions(),
        "defectnet_version": defectnet.__version__,
    }
    return SimulationResult(
        pristine=pristine,
        doped=doped,
        pristine_gpdos=pristine.neutron_weighted(host_fractions),
        doped_gpdos=doped.neutron_weighted(doped_fractions),
        host_spectrum=pristine_host.spectrum,
        host_atoms=pristine_host.atoms,
        doped_atoms=out_atoms,
        config=config,
        meta=meta,
    )


def resolve_host(host) -> tuple[Atoms, str]:
    """Turn a library name, a structure file or an ``ase.Atoms`` into (atoms, name)."""
    if isinstance(host, Atoms):
        return host.copy(), host.get_chemical_formula(mode="metal")
    from defectnet.hosts import load_host

    h = load_host(str(host))
    return h.to_atoms(), h.name


def _patch_relaxed(result, system, host) -> Atoms:
    from defectnet.phonons.forceconstants import primitive_site_indices
    from defectnet.phonons.patches import displaced_positions

    patches = {(k[0], k[1]): v for k, v in host.patch_cache.items()}
    site_of = primitive_site_indices(host, system.atoms)
    atoms = system.atoms.copy()
    try:
        atoms.positions = displaced_positions(system.atoms, system.dopant_indices, site_of, patches)
    except (KeyError, DefectnetError):
        pass  # keep lattice positions if a patch is not at hand
    return atoms


class _Stages:
    """A one-line progress display of the stages of a simulation (stderr)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.t0 = time.perf_counter()

    def __call__(self, text: str):
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", leave=False)
        self.bar.set_description_str(text)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def plot_comparison(result: SimulationResult, path: Path) -> None:
    """PNG: pristine vs doped PDoS (top) and the defect signature Δ = doped − pristine (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = result.pristine.centers_mev
    # the doped extent too: a light dopant's local modes lie above the host band (Si in GaAs)
    top = max(max(np.max(e[s.values > 1e-4 * s.values.max()]) for s in (result.pristine, result.doped)), 10.0) * 1.1
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=[2, 1])
    ax1.plot(e, result.pristine.values, label="pristine", lw=1.2)
    ax1.plot(e, result.doped.values, label="doped", lw=1.2)
    ax1.plot(e, result.doped_gpdos.values, label="doped GPDoS (neutron-weighted)", lw=0.8, ls="--")
    conc = ", ".join(f"{el} {100 * c:.2f}%" for el, c in result.meta["concentrations"].items())
    ax1.set_title(f"{result.meta['host']}: {conc} ({result.config.tier} tier, {result.meta['potential']['model']})")
    ax1.set_ylabel("PDoS (1/meV)")
    ax1.legend()
    ax2.plot(e, result.doped.values - result.pristine.values, color="k", lw=1)
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.set_xlabel("energy (meV)")
    ax2.set_ylabel("doped − pristine")
    ax2.set_xlim(0, top)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
