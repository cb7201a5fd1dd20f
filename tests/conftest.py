"""Fixtures shared across test modules: fcc Cu under EMT (108-atom cells, nearest-neighbour patches; no MLIP)."""

import pytest


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    """The engine's disk cache is off unless a test sets ``$DEFECTNET_CACHE`` itself: force-call
    counts and timings must not depend on what an earlier test (or the user's cache) computed."""
    monkeypatch.setenv("DEFECTNET_CACHE", "off")

#: The candidates of :func:`cu_basis`.
CU_CANDIDATES = ("Ag", "Ni", "Pd", "Al")


@pytest.fixture(scope="session")
def cu_sim():
    """The patch tier in a 108-atom fcc Cu supercell under EMT (placement seed 100)."""
    from defectnet.phonons.forceconstants import TierSettings
    from defectnet.phonons.host import HostSettings
    from defectnet.simulate import SimulationConfig

    host = HostSettings(potential="emt", fc_min_width_ang=6.5, mesh_length_ang=15.0)
    return SimulationConfig(tier="patch", potential="emt", supercell_atoms=108, host=host,
                            tier_settings=TierSettings(cutoff_ang=2.6), seed=100)


@pytest.fixture(scope="session")
def cu(cu_sim):
    """Relaxed fcc Cu with its force constants (PristineHost)."""
    from ase.build import bulk

    from defectnet.phonons.host import compute_pristine

    return compute_pristine(bulk("Cu", "fcc", a=3.6), cu_sim.host, grid=cu_sim.grid, progress=False, fwhm_mev=1.0)


@pytest.fixture(scope="session")
def cu_basis(cu, cu_sim):
    """Signature basis of Ag, Ni, Pd and Al in Cu at 2 and 8 of 108 atoms, with its synthesis (host and patches)."""
    from defectnet.unmix import BasisConfig, signature_basis

    return signature_basis(cu.atoms, list(CU_CANDIDATES), BasisConfig(concentrations=(2 / 108, 8 / 108),
                                                                      simulation=cu_sim),
                           pristine_host=cu, progress=False)
