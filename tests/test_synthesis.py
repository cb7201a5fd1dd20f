"""The forward model (Synthesizer, the placement routine) on fcc Cu under EMT (tests/conftest.py)."""

from dataclasses import replace

import numpy as np
import pytest

from defectnet.doping import DopantSpec
from defectnet.errors import DefectnetError
from defectnet.simulate import simulate_spectra
from defectnet.host import placed_spectrum
from defectnet.synthesis import Synthesizer
from defectnet.unmix import SignatureBasis


def test_synthesizer_is_simulate_spectra_for_the_same_placement(cu, cu_sim):
    syn = Synthesizer(cu, {"Ag": "Cu", "Ni": "Cu"}, cu_sim)
    res = simulate_spectra(cu.atoms, [DopantSpec("Ag", "Cu", 8 / 108), DopantSpec("Ni", "Cu", 3 / 108)], cu_sim,
                           pristine_host=cu, progress=False)
    delta = syn.signature({"Ag": 8 / 108, "Ni": 3 / 108}, kind="gpdos", seed=cu_sim.seed)
    np.testing.assert_allclose(delta, res.doped_gpdos.values - res.pristine_gpdos.values, atol=1e-9)
    np.testing.assert_allclose(syn.pristine["pdos"], res.pristine.values, atol=1e-12)
    assert np.all(syn.signature({"Ag": 0.2 / 108}) == 0)  # under half an atom: nothing placed


def test_a_saved_basis_keeps_its_forward_model(cu, cu_sim, cu_basis, tmp_path):
    assert cu_basis.synthesis and len(cu_basis.synthesis["patches"]) == len(cu_basis.elements)
    again = SignatureBasis.load(cu_basis.save(tmp_path / "b.npz"))
    syn = Synthesizer.from_basis(again)
    mix = {"Ag": 6 / 108, "Pd": 4 / 108}
    np.testing.assert_allclose(syn.signature(mix, seed=3),
                               Synthesizer(cu, {"Ag": None, "Pd": None}, cu_sim).signature(mix, seed=3), atol=1e-9)
    with pytest.raises(DefectnetError, match="holds no host and patches"):
        Synthesizer.from_basis(replace(again, synthesis={}))


def test_the_potential_is_loaded_only_for_a_patch_not_at_hand(cu_basis, tmp_path, monkeypatch):
    """A basis' host synthesises its candidates without the MLIP (loading one costs ~15 s); a dopant it
    holds no patch for loads it."""
    import defectnet.phonons.potentials as potentials

    real, loads = potentials.get_calculator, []

    def counted(name=potentials.DEFAULT_POTENTIAL):
        loads.append(name)
        return real(name)

    monkeypatch.setattr(potentials, "get_calculator", counted)
    monkeypatch.setenv("DEFECTNET_CACHE", "off")  # the patches come from the basis file, not the disk
    syn = Synthesizer.from_basis(SignatureBasis.load(cu_basis.save(tmp_path / "b.npz")))
    assert np.any(syn.signature({"Ag": 6 / 108, "Pd": 4 / 108}, seed=3) != 0)
    assert loads == []
    syn.signature({"Au": 4 / 108}, seed=3)  # no patch of Au in the basis: computed, with the potential
    assert loads == [syn.host.config.potential]


def test_placement_is_retried_with_new_seeds_until_stable(cu, cu_sim):
    from defectnet.phonons.forceconstants import pristine_supercell
    from defectnet.phonons.potentials import get_calculator

    sc, fc0 = pristine_supercell(cu, Synthesizer(cu, {"Ag": "Cu"}, cu_sim).host.supercell_matrix)
    common = dict(fc0=fc0, host=cu, calc=get_calculator("emt"), tier="patch", tier_settings=cu_sim.tier_settings,
                  grid=cu_sim.grid, broadening=cu_sim.broadening())
    specs = [DopantSpec("Ag", "Cu", 6 / 108)]
    calls = []
    first, _, sub0, n0 = placed_spectrum(sc, specs, 11, **common, check=lambda: calls.append(1))
    assert n0 == 1 and len(calls) == 1 and first.meta["min_frequency_mev"] >= -5.0  # Ag in Cu is stable
    # nothing counts as stable: every attempt is made, each placement differs from the first
    last, _, sub2, n = placed_spectrum(sc, specs, 11, **common, attempts=3, max_imaginary_mev=-1e9)
    assert n == 3
    assert sorted(sub2.indices["Ag@Cu"]) != sorted(sub0.indices["Ag@Cu"])
    assert not np.allclose(last.values, first.values)


def test_a_basis_says_which_site_each_candidate_was_simulated_on():
    """A Synthesizer of a basis must place each element where the basis (and a store's samples) did:
    the synthesis record's sites, else the El@Site candidates; a bare element is auto_site's (None)."""
    from defectnet.grid import DEFAULT_GRID
    from defectnet.signatures import SignatureBasis

    z = np.zeros(DEFAULT_GRID.n_bins)
    asked = SignatureBasis("BAs", ("C", "Si", "Zn"), DEFAULT_GRID, {"gpdos": z}, {}, {}, np.zeros((3, 1)),
                           config={"candidates": ["C@B", "Si@As", "Zn"]})
    assert asked.sites == {"C": "B", "Si": "As", "Zn": None}
    recorded = SignatureBasis("BAs", ("C", "Si"), DEFAULT_GRID, {"gpdos": z}, {}, {}, np.zeros((2, 1)),
                              config={"candidates": ["C", "Si"]}, synthesis={"sites": {"C": "B", "Si": "As"}})
    assert recorded.sites == {"C": "B", "Si": "As"}
