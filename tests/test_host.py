"""The Host engine object on fcc Cu under EMT (tests/conftest.py): lazy state, one placement routine, physics."""

from dataclasses import replace

import numpy as np
import pytest
from ase.build import bulk

from defectnet.errors import DefectnetError
from defectnet.host import Host

AG = f"Ag@Cu:{4 / 108}"  # four Ag atoms in the 108-atom supercell


@pytest.fixture
def host(cu, cu_sim):
    """A Host around the session's relaxed Cu (its patch cache is shared with the other tests)."""
    return Host(cu.atoms, "Cu", cu_sim, pristine=cu)


def test_force_constants_are_computed_once_on_first_need_and_reused(cu_sim, monkeypatch):
    import defectnet.phonons.host as phonons_host

    calls = []
    compute = phonons_host.compute_pristine

    def counted(*args, **kwargs):
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(phonons_host, "compute_pristine", counted)
    host = Host.load(bulk("Cu", "fcc", a=3.6), cu_sim)
    with pytest.raises(DefectnetError, match="bad dopant spec"):
        host.simulate("Ag=0.04")  # refused before any work
    assert not host.computed and calls == []
    host.simulate(AG)
    assert host.computed and len(calls) == 1
    again = host.place(AG).tier_result.info["force_calls"]
    basis = host.basis(["Ag@Cu"], (2 / 108, 4 / 108))
    host.synthesize({"Ag": 3 / 108}, sites={"Ag": "Cu"})
    assert len(calls) == 1  # simulate, basis and synthesize share one relaxation and force-constant set
    assert again == 0  # and the patch that simulate computed
    assert basis.synthesis and len(basis.synthesis["patches"]) == 1


def test_simulate_basis_and_synthesize_place_the_same_dopants(host, cu_sim):
    res = host.simulate(AG)
    basis = host.basis(["Ag@Cu"], (4 / 108,))  # its seed is the config's, as simulate's
    delta = res.doped_gpdos.values - res.pristine_gpdos.values
    np.testing.assert_allclose(basis.curves["gpdos"][0, 0], delta, atol=1e-12)
    np.testing.assert_allclose(host.synthesize({"Ag": 4 / 108}, sites={"Ag": "Cu"}, seed=cu_sim.seed), delta,
                               atol=1e-12)
    assert res.meta["placement_attempts"] == 1  # Ag in Cu is stable at its first placement


def test_an_unstable_placement_is_placed_again_the_same_way_everywhere(cu, cu_sim):
    # Nothing counts as stable: every route makes all three placements and keeps the last one;
    # a basis that placed once (as before Host) would disagree with refine's synthesis here.
    host = Host(cu.atoms, "Cu", replace(cu_sim, max_imaginary_mev=-1e9), pristine=cu)
    res = host.simulate(AG)
    assert res.meta["placement_attempts"] == 3
    once = Host(cu.atoms, "Cu", replace(cu_sim, placement_attempts=1), pristine=cu).simulate(AG)
    assert not np.allclose(once.doped.values, res.doped.values)
    delta = res.doped_gpdos.values - res.pristine_gpdos.values
    np.testing.assert_allclose(host.basis(["Ag@Cu"], (4 / 108,)).curves["gpdos"][0, 0], delta, atol=1e-12)
    np.testing.assert_allclose(host.synthesize({"Ag": 4 / 108}, sites={"Ag": "Cu"}, seed=cu_sim.seed), delta,
                               atol=1e-12)


def test_pristine_spectra_have_unit_area_and_the_mass_tier_of_a_heavier_dopant_softens(host, monkeypatch):
    import defectnet.phonons.potentials as potentials

    e = host.config.grid.centers
    for kind in ("pdos", "gpdos"):
        assert host.pristine_spectrum(kind).area() == pytest.approx(1.0, abs=1e-9)

    def no_potential(name):
        raise AssertionError("the mass tier loaded a potential")

    monkeypatch.setattr(potentials, "get_calculator", no_potential)
    res = host.simulate(f"Au@Cu:{8 / 108}", tier="mass")  # Au: 197 amu on Cu's 63.5 amu sites, same springs
    assert res.doped.area() == pytest.approx(1.0, abs=1e-9)
    mean = [s.values * host.config.grid.widths @ e for s in (res.pristine, res.doped)]
    assert mean[1] < 0.97 * mean[0]  # heavier atoms, lower modes
    assert res.meta["tier_info"]["force_calls"] == 0


def test_a_saved_host_is_read_back_with_its_patches(host, tmp_path):
    res = host.simulate(AG)
    path = host.save(tmp_path / "cu.npz")
    again = Host.load(path)
    assert again.config == host.config and again.name == "Cu" and again.computed
    res2 = again.simulate(AG)
    np.testing.assert_allclose(res2.doped.values, res.doped.values, atol=1e-12)
    np.testing.assert_allclose(res2.host_spectrum.values, res.host_spectrum.values, atol=1e-9)
    assert res2.meta["tier_info"]["force_calls"] == 0  # the patch came with the file
    with pytest.raises(DefectnetError, match="saved with other settings"):
        Host.load(path, replace(host.config, tier="mass"))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DefectnetError, match="not a saved host"):
        Host.load(tmp_path / "other.npz")



def test_patches_computed_by_worker_processes_give_the_same_basis(cu_sim, tmp_path, monkeypatch):
    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "parallel"))
    parallel = Host.load(bulk("Cu", "fcc", a=3.6), cu_sim)
    from defectnet.doping import parse_dopants

    specs = parse_dopants("Ag:0.02,Ni:0.02,Pd:0.02")
    assert parallel.compute_patches(specs, workers=2) == {}
    assert parallel.pristine.patch_cache == {}  # computed in the workers, handed over by the disk cache only
    cached = sorted(p.name for p in parallel.pristine.disk_cache.path.glob("patches/*"))
    assert [n.split("-")[1] for n in cached] == ["Ag", "Ni", "Pd"]
    assert parallel.compute_patches(specs, workers=2) == {}  # all cached: no process started, nothing to do
    a = parallel.basis(["Ag", "Ni", "Pd"], (4 / 108,), workers=2)
    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "serial"))
    b = Host.load(bulk("Cu", "fcc", a=3.6), cu_sim).basis(["Ag", "Ni", "Pd"], (4 / 108,), workers=1)
    # the same up to float rounding (one torch thread in the workers; patches read back from the cache)
    np.testing.assert_allclose(a.curves["gpdos"], b.curves["gpdos"], atol=1e-3 * np.abs(b.curves["gpdos"]).max())
    fresh = Host.load(bulk("Cu", "fcc", a=3.6), cu_sim)
    assert fresh.compute_patches([], workers=2) == {} and not fresh.computed  # nothing asked: nothing computed
    monkeypatch.setenv("DEFECTNET_CACHE", "off")  # no cache to hand patches over: nothing in parallel
    assert Host.load(bulk("Cu", "fcc", a=3.6), cu_sim).compute_patches(specs, workers=2) == {}
