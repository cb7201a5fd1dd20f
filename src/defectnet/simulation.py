"""What a simulation of doped spectra is: its settings and its result.

:class:`SimulationConfig` fixes everything that determines a pristine/doped pair of spectra
(tier, potential, supercell size, broadening, grid, placement); :class:`SimulationResult`
holds the pair with the structures and the metadata to reproduce it. The engine that makes
them is :class:`defectnet.host.Host`; :func:`defectnet.simulate.simulate_spectra` is its front door.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from defectnet.doping import DEFAULT_SUPERCELL_ATOMS
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.output import json_default
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import HostSettings
from defectnet.settings import Settings

DEFAULT_TIER = "patch"


@dataclass(frozen=True)
class SimulationConfig(Settings, what="simulation config"):
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
    # A placement whose lowest Γ mode lies below -max_imaginary_mev (meV) is placed again with
    # the next seed, up to placement_attempts placements in all (the dataset's samples are placed so)
    placement_attempts: int = 3
    max_imaginary_mev: float = 5.0

    def __post_init__(self):
        from defectnet.phonons.potentials import canonical_name
        from defectnet.phonons.tiers import get_tier

        get_tier(self.tier)
        if self.placement_attempts < 1:
            raise DefectnetError(f"placement_attempts must be >= 1, got {self.placement_attempts}")
        object.__setattr__(self, "potential", canonical_name(self.potential))
        if self.host.potential != self.potential:
            object.__setattr__(self, "host", replace(self.host, potential=self.potential))

    @classmethod
    def from_dict(cls, d, *, key: str | None = ""):
        """The config :meth:`to_dict` wrote (e.g. the ``simulation`` of a saved basis); errors name
        the dotted key (``config key 'host.fmax_ev_ang': ...``)."""
        return super().from_dict(d, key=key)

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
        (out / "meta.json").write_text(json.dumps(self.meta, indent=2, default=json_default))
        (out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        plot_comparison(self, out / "spectra.png")
        return out


def resolve_host(host) -> tuple[Atoms, str]:
    """Turn a library name, a structure file or an ``ase.Atoms`` into (atoms, name)."""
    if isinstance(host, Atoms):
        return host.copy(), host.get_chemical_formula(mode="metal")
    from defectnet.hosts import load_host

    h = load_host(str(host))
    return h.to_atoms(), h.name


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
