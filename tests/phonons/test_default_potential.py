"""The default potential (SevenNet-0) on silicon: a known value, not just an invariant."""

import pytest
from ase.build import bulk

from defectnet.phonons.host import HostSettings, compute_pristine


@pytest.fixture(scope="module")
def si_host():
    return compute_pristine(bulk("Si", "diamond", a=5.431), HostSettings(), fwhm_mev=1.0)


def test_si_optical_peak_with_default_potential(si_host):
    # Experiment: Γ optical 15.5–15.7 THz (64–65 meV, Raman 520 cm⁻¹), the TO peak of the
    # DOS near 58–60 meV. Universal MLIPs soften Si (ARCHITECTURE.md): SevenNet-0 gives a DOS
    # peak of 46.0 meV and Γ optical 12.49 THz (51.7 meV), measured here on 2026-11-22 with
    # this fixture (q-mesh DOS, 1 meV FWHM). The accepted window is 40–66 meV.
    peak = si_host.spectrum.peak_mev(30.0, 80.0)
    assert 40.0 < peak < 66.0


def test_si_host_is_dynamically_stable_and_relaxed(si_host):
    assert si_host.n_imaginary == 0
    a = si_host.atoms.cell.lengths()[0] * 2**0.5  # fcc primitive → cubic lattice constant
    assert 5.35 < a < 5.55  # experiment 5.431 Å; PBE-trained MLIPs ~5.44–5.47 Å
    assert si_host.relax_summary["fmax_ev_ang"] < 0.01
