"""Simulate pristine and doped PDoS of a host: the spectra engine's front door.

``simulate_spectra(host, "Ge:0.01,Sn:0.004")`` relaxes the host with the MLIP, computes
its force constants, builds a near-cubic doped supercell (433–500 atoms by default) and
returns the pristine and doped spectra of that supercell on the fixed energy grid. Both
spectra come from the same supercell at Γ, so their difference is the defect signature
alone, not a difference of q-point sampling. It is :meth:`defectnet.host.Host.simulate` for
one call; keep a :class:`~defectnet.host.Host` to simulate a host more than once.
"""

from __future__ import annotations

# The config and result of a simulation live in defectnet.simulation; imported from here too.
from defectnet.simulation import DEFAULT_TIER, SimulationConfig, SimulationResult, resolve_host  # noqa: F401


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
        Tier, potential, supercell size, broadening, grid, seed and placement.
    pristine_host : PristineHost, optional
        A host already relaxed with force constants (skips that step; must match ``config``).
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    SimulationResult
    """
    from defectnet.doping import parse_dopants
    from defectnet.host import Host

    specs = parse_dopants(dopants) if isinstance(dopants, str) else list(dopants)  # a bad spec fails before the host is read
    return Host.load(host, config, pristine=pristine_host, progress=progress).simulate(specs)
