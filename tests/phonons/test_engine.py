"""Physics invariants of the spectra engine, on tiny EMT cells (seconds)."""

from dataclasses import replace

import numpy as np
import pytest
from ase.build import bulk

from defectnet.doping import DopantSpec, substitute
from defectnet.grid import DEFAULT_GRID
from defectnet.phonons.dos import gamma_modes, gamma_spectrum
from defectnet.phonons.forceconstants import DopedSystem, TierSettings, pristine_supercell, restore_sum_rules
from defectnet.phonons.host import HostSettings, compute_pristine
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.tiers import TIERS

EMT_HOST = HostSettings(potential="emt", fc_min_width_ang=6.5, mesh_length_ang=15.0)
SMALL = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) * 2  # 32-atom cubic cell of fcc


@pytest.fixture(scope="module")
def cu_host():
    return compute_pristine(bulk("Cu", "fcc", a=3.6), EMT_HOST, fwhm_mev=0.5)


@pytest.fixture(scope="module")
def cu_supercell(cu_host):
    return pristine_supercell(cu_host, SMALL)


def _doped(cu_host, cu_supercell, dopants, seed=0):
    atoms, fc0 = cu_supercell
    doped, sub = substitute(atoms, dopants, np.random.default_rng(seed))
    idx = np.array(sorted(i for v in sub.indices.values() for i in v))
    return DopedSystem(doped, idx, fc0, cu_host, get_calculator("emt"))


def test_host_relaxes_and_is_stable(cu_host):
    # EMT's fcc Cu lattice constant is ~3.59 Å; the host must be dynamically stable.
    a = cu_host.atoms.cell.lengths()[0] * np.sqrt(2)
    assert 3.5 < a < 3.7
    assert cu_host.n_imaginary == 0
    assert cu_host.spectrum.area() == pytest.approx(1.0, abs=1e-9)
    assert 10 < cu_host.spectrum.peak_mev() < 40  # Cu phonons: 0–30 meV


def test_gamma_of_the_conventional_cell_is_gamma_and_x_of_the_primitive(cu_host):
    # the 4-atom cubic cell folds the primitive cell's X points onto Γ: its Γ modes from its own
    # (1x1x1) force constants are the primitive dispersion at Γ and the three X points
    from ase.build import make_supercell

    from defectnet.phonons.host import gamma_frequencies_mev
    from defectnet.units import UNITS

    P = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    conventional = make_supercell(cu_host.atoms, P)
    got = np.sort(gamma_frequencies_mev(conventional, get_calculator("emt")))
    q = np.linalg.inv(P).T @ np.eye(3)  # conventional reciprocal vectors in primitive coordinates
    cu_host.phonon.run_qpoints([[0, 0, 0], *q.T.tolist()])
    want = np.sort(cu_host.phonon.get_qpoints_dict()["frequencies"].ravel() * UNITS.mev_per_thz)
    assert np.all(np.abs(got[:3]) < 0.05) and got[3] > 10  # acoustic zeros, then X-point modes
    assert np.allclose(got, want, atol=0.3)


def test_pristine_supercell_has_three_acoustic_zeros(cu_supercell):
    atoms, fc = cu_supercell
    freqs, _ = gamma_modes(fc, atoms.get_masses())
    small = np.sort(np.abs(freqs))
    assert np.all(small[:3] < 1e-3)
    assert small[3] > 1.0


@pytest.mark.parametrize("tier", ["mass", "local", "patch", "full"])
def test_tiers_keep_acoustic_sum_rule_and_unit_area(cu_host, cu_supercell, tier):
    system = _doped(cu_host, cu_supercell, [DopantSpec("Au", "Cu", 1 / 32)])
    res = TIERS[tier](system, TierSettings(cutoff_ang=2.6))
    freqs, _ = gamma_modes(res.fc, res.atoms.get_masses())
    assert np.sort(np.abs(freqs))[:3].max() < 1e-3
    assert np.sort(np.abs(freqs))[3] > 0.1
    np.testing.assert_allclose(res.fc, res.fc.transpose(1, 0, 3, 2), atol=1e-10)
    spec, _ = gamma_spectrum(res.fc, res.atoms, DEFAULT_GRID, fwhm_mev=1.0)
    assert spec.area() == pytest.approx(1.0, abs=1e-9)


def test_mass_tier_scales_frequencies_as_inverse_sqrt_mass(cu_supercell):
    atoms, fc = cu_supercell
    f1, _ = gamma_modes(fc, atoms.get_masses())
    f4, _ = gamma_modes(fc, 4.0 * atoms.get_masses())  # a uniform isotope change, m → 4m
    np.testing.assert_allclose(np.sort(f4)[3:], 0.5 * np.sort(f1)[3:], rtol=1e-8)


def test_heavy_dopant_lowers_mean_frequency_in_mass_tier(cu_host, cu_supercell):
    light = _doped(cu_host, cu_supercell, [DopantSpec("Ni", "Cu", 4 / 32)])
    heavy = _doped(cu_host, cu_supercell, [DopantSpec("Au", "Cu", 4 / 32)])
    fl, _ = gamma_modes(TIERS["mass"](light, TierSettings()).fc, light.atoms.get_masses())
    fh, _ = gamma_modes(TIERS["mass"](heavy, TierSettings()).fc, heavy.atoms.get_masses())
    assert fh.mean() < fl.mean()


def test_local_equals_full_when_cutoff_covers_the_cell(cu_host, cu_supercell):
    system = _doped(cu_host, cu_supercell, [DopantSpec("Au", "Cu", 2 / 32)], seed=3)
    settings = TierSettings(cutoff_ang=50.0)
    local = TIERS["local"](system, settings)
    full = TIERS["full"](system, settings)
    assert local.info["n_displaced_atoms"] == len(system.atoms)
    np.testing.assert_allclose(local.fc, full.fc, atol=2e-3 * np.abs(full.fc).max())
    fl, _ = gamma_modes(local.fc, local.atoms.get_masses())
    ff, _ = gamma_modes(full.fc, full.atoms.get_masses())
    np.testing.assert_allclose(fl, ff, atol=0.02)  # meV


def test_local_tier_moves_toward_full_from_mass(cu_host, cu_supercell):
    """The defect signature Δ = g_doped − g_pristine of `local` is closer to `full` than `mass`'s."""
    system = _doped(cu_host, cu_supercell, [DopantSpec("Ni", "Cu", 1 / 32)], seed=1)
    atoms, fc0 = cu_supercell
    g0, _ = gamma_spectrum(fc0, atoms, DEFAULT_GRID, fwhm_mev=1.0)
    spectra = {}
    for tier in ("mass", "local", "full"):
        res = TIERS[tier](system, TierSettings(cutoff_ang=3.0))
        spectra[tier], _ = gamma_spectrum(res.fc, res.atoms, DEFAULT_GRID, fwhm_mev=1.0)
    w = DEFAULT_GRID.widths
    d_full = spectra["full"].values - g0.values

    def fidelity(tier):
        return 1 - np.sum(np.abs(spectra[tier].values - g0.values - d_full) * w) / np.sum(np.abs(d_full) * w)

    assert fidelity("local") > fidelity("mass")
    assert fidelity("local") > 0.5


def test_patch_equals_local_for_an_isolated_dopant_in_the_force_constant_cell(cu_host):
    """In the host's own force-constant supercell the patch is the local calculation, truncated."""
    from defectnet.phonons.host import to_ase_atoms

    atoms = to_ase_atoms(cu_host.phonon.supercell)
    fc0 = np.array(cu_host.phonon.force_constants)
    doped, sub = substitute(atoms, [DopantSpec("Au", "Cu", 1 / len(atoms))], np.random.default_rng(0))
    idx = np.array(sub.indices["Au@Cu"])
    system = DopedSystem(doped, idx, fc0, cu_host, get_calculator("emt"))
    settings = TierSettings(cutoff_ang=2.6)
    patch, local = TIERS["patch"](system, settings), TIERS["local"](system, settings)
    fp, _ = gamma_modes(patch.fc, doped.get_masses())
    fl, _ = gamma_modes(local.fc, local.atoms.get_masses())
    assert np.max(np.abs(np.sort(fp) - np.sort(fl))) < 0.05 * fl.max()


def test_restore_sum_rules_makes_rows_sum_to_zero():
    rng = np.random.default_rng(0)
    fc = rng.normal(size=(5, 5, 3, 3))
    restore_sum_rules(fc)
    np.testing.assert_allclose(fc.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(fc, fc.transpose(1, 0, 3, 2), atol=1e-12)


def test_patch_is_reused_across_dopants(cu_host, cu_supercell):
    system = _doped(cu_host, cu_supercell, [DopantSpec("Ag", "Cu", 3 / 32)])
    res = TIERS["patch"](system, replace(TierSettings(), cutoff_ang=2.6))
    again = TIERS["patch"](system, replace(TierSettings(), cutoff_ang=2.6))
    assert res.info["n_patches"] == 1
    assert again.info["force_calls"] == 0  # cached on the host


def test_patch_in_a_wider_cell_reaches_beyond_the_host_cell(cu_host):
    """patch_cell_width_ang: the patch comes from a wider perfect cell and still equals `local` there."""
    from defectnet.doping import min_width_ang
    from defectnet.phonons.patches import small_cell, get_patch

    calc = get_calculator("emt")
    wide = TierSettings(cutoff_ang=4.5, patch_cell_width_ang=10.0)
    cell, fc0 = small_cell(cu_host, wide, calc)
    assert min_width_ang(cell.cell.array) >= 10.0 > min_width_ang(cu_host.phonon.supercell.cell)
    np.testing.assert_allclose(fc0.sum(axis=1), 0.0, atol=1e-3)  # computed directly: sum rule holds
    freqs, _ = gamma_modes(fc0, cell.get_masses())
    assert np.sort(np.abs(freqs))[3] > 1.0 and np.sort(np.abs(freqs))[2] < 0.05

    narrow_patch, _ = get_patch(cu_host, 0, "Au", calc, TierSettings(cutoff_ang=4.5))
    wide_patch, _ = get_patch(cu_host, 0, "Au", calc, wide)
    assert len(wide_patch.cluster) > len(narrow_patch.cluster)  # 4.5 Å is capped at half the host cell

    doped, sub = substitute(cell, [DopantSpec("Au", "Cu", 1 / len(cell))], np.random.default_rng(0))
    system = DopedSystem(doped, np.array(sub.indices["Au@Cu"]), fc0, cu_host, calc)
    patch, local = TIERS["patch"](system, wide), TIERS["local"](system, wide)
    fp, _ = gamma_modes(patch.fc, doped.get_masses())
    fl, _ = gamma_modes(local.fc, local.atoms.get_masses())
    assert np.max(np.abs(np.sort(fp) - np.sort(fl))) < 0.05 * fl.max()


def test_patch_follows_a_soft_mode_off_a_saddle_point(cu_host):
    """C on a Cu site (EMT) relaxes to a symmetric saddle point; the patch goes off-centre and is stable."""
    from defectnet.phonons.host import to_ase_atoms

    atoms = to_ase_atoms(cu_host.phonon.supercell)
    fc0 = np.array(cu_host.phonon.force_constants)
    doped, sub = substitute(atoms, [DopantSpec("C", "Cu", 1 / len(atoms))], np.random.default_rng(0))
    system = DopedSystem(doped, np.array(sub.indices["C@Cu"]), fc0, cu_host, get_calculator("emt"))
    lowest = {}
    for tol in (0.0, 1.0):  # 0: no check, the site-symmetric patch
        res = TIERS["patch"](system, TierSettings(cutoff_ang=2.6, soft_mode_tol_mev=tol))
        freqs, _ = gamma_modes(res.fc, doped.get_masses())
        lowest[tol] = np.sort(freqs)[0]
    assert lowest[0.0] < -1.0  # the saddle point: an imaginary mode
    assert lowest[1.0] > -1.0  # followed down: stable
    # not allowed to follow, the same check refuses the saddle point instead of using it
    from defectnet.phonons.patches import UnstablePatch

    with pytest.raises(UnstablePatch, match="C on site 0 of Cu.* after relaxation"):
        TIERS["patch"](system, TierSettings(cutoff_ang=2.6, soft_mode_follows=0))


def test_soft_mode_following_does_not_depend_on_the_direction_picked_in_a_degenerate_subspace(cu_host, monkeypatch):
    """C on Cu's saddle point has a triply degenerate soft mode: eigh may return any direction in
    it (BLAS builds differ). Half of the directions lead to a second saddle; the patch follows on."""
    import defectnet.phonons.patches as patches

    soft_mode = patches._soft_mode
    rng = np.random.default_rng(1)
    for _ in range(3):
        calls = []

        def turned(*args, **kwargs):  # the first soft mode, its dopant moving in a random direction
            mode = soft_mode(*args, **kwargs)
            calls.append(mode is not None)
            if mode is not None and len(calls) == 1:
                mode = mode.copy()
                r = rng.normal(size=3)
                mode[0] = r / np.linalg.norm(r) * np.linalg.norm(mode[0])
            return mode

        monkeypatch.setattr(patches, "_soft_mode", turned)
        cu_host.patch_cache.clear()
        patch, _ = patches.get_patch(cu_host, 0, "C", get_calculator("emt"), TierSettings(cutoff_ang=2.6))
        assert calls[0] and not calls[-1]  # started on the saddle, ended stable
        assert np.linalg.norm(patch.displacement_ang, axis=1).max() > 0.05  # C went off-centre


def test_a_dopant_without_a_stable_position_gives_a_clear_error():
    from defectnet.errors import DefectnetError
    from defectnet.phonons.patches import UnstablePatch, get_patch

    # Unrelaxed, N on Al's site is a saddle point (relaxed, it finds a stable off-centre position).
    al = compute_pristine(bulk("Al", "fcc", a=4.05), EMT_HOST, fwhm_mev=0.5)
    with pytest.raises(UnstablePatch, match="N on site 0 of Al: .* 32-atom cell unrelaxed") as err:
        get_patch(al, 0, "N", get_calculator("emt"), TierSettings(cutoff_ang=2.6, relax=False))
    assert isinstance(err.value, DefectnetError)  # the CLI prints it on one line


def test_lattice_index_finds_sites_across_the_boundary_and_refuses_off_site_positions():
    from ase.build import make_supercell

    from defectnet.errors import DefectnetError
    from defectnet.phonons.patches import LatticeIndex

    # rutile-like: a tetragonal cell with an internal parameter, so sites fall at arbitrary fractions
    a, c, u = 4.6, 3.0, 0.3053
    cell = np.diag([a, a, c])
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [u, u, 0], [-u, -u, 0], [0.5 + u, 0.5 - u, 0.5], [0.5 - u, 0.5 + u, 0.5]])
    from ase import Atoms

    # 4 cells along a: u/4 of the supercell is 1526.5/20000, half-way between grid points of a rounding lookup
    sc = make_supercell(Atoms("Ti2O4", scaled_positions=frac % 1, cell=cell, pbc=True), np.diag([4, 4, 5]))
    look = LatticeIndex(sc)
    rng = np.random.default_rng(0)
    shift = sc.cell.array.T @ rng.integers(-2, 3, size=(3, len(sc)))  # whole lattice vectors away
    noisy = sc.positions + shift.T + rng.normal(scale=1e-5, size=sc.positions.shape)  # float noise either way
    assert np.array_equal(look(noisy), np.arange(len(sc)))
    with pytest.raises(DefectnetError, match="does not fall on a supercell lattice site"):
        look(sc.positions[:3] + [0.05, 0.0, 0.0])


def test_tiers_are_strategies_in_one_registry():
    from defectnet.errors import DefectnetError
    from defectnet.phonons.tiers import get_tier

    assert set(TIERS) == {"full", "local", "patch", "cluster", "mass"}
    assert [t.name for t in TIERS.values() if not t.needs_calculator] == ["mass"]
    assert [t.name for t in TIERS.values() if t.uses_patches] == ["patch"]
    with pytest.raises(DefectnetError, match="unknown tier 'fast'; expected one of full, local, patch, cluster, mass"):
        get_tier("fast")


def test_a_patch_on_a_symmetry_equivalent_site_is_the_first_turned_without_a_force_call(monkeypatch):
    """hcp has two primitive sites related by a screw axis: the second site's patch is the first's,
    turned by that operation (no force call); computed afresh it is the same patch."""
    from defectnet.phonons import patches as P
    from defectnet.phonons.host import HostSettings, compute_pristine
    from defectnet.phonons.potentials import get_calculator
    from defectnet.phonons.symmetry import HostSymmetry

    host = compute_pristine(bulk("Cu", "hcp", a=2.55, c=4.16), HostSettings(potential="emt", fc_min_width_ang=6.5,
                                                                            mesh_length_ang=15.0), fwhm_mev=0.5)
    calc, tier = get_calculator("emt"), TierSettings(cutoff_ang=2.6)
    rep, R = HostSymmetry(host.atoms).equivalent_site(1)
    assert rep == 0 and R is not None and np.allclose(R @ R.T, np.eye(3), atol=1e-8)
    first, calls0 = P.get_patch(host, 0, "Au", calc, tier)
    turned, calls1 = P.get_patch(host, 1, "Au", calc, tier)
    assert calls0 > 0 and calls1 == 0 and turned.site == 1
    monkeypatch.setattr(P.HostSymmetry, "equivalent_site", lambda self, site: (site, None))
    host.patch_cache.clear()
    fresh, calls = P.get_patch(host, 1, "Au", calc, tier)
    assert calls > 0
    # the same atoms around the dopant (orders may differ) and the same blocks on them
    d = np.linalg.norm(turned.rel_ang[:, None] - fresh.rel_ang[None], axis=-1)
    assert len(turned.rel_ang) == len(fresh.rel_ang) and np.all(d.min(axis=1) < 1e-6)
    order = d.argmin(axis=1)
    cluster_t = order[turned.cluster]
    assert sorted(cluster_t) == sorted(fresh.cluster)
    where = {int(c): k for k, c in enumerate(fresh.cluster)}
    blocks = fresh.delta[[where[int(c)] for c in cluster_t]][:, order]
    # they agree as two relaxations to fmax 0.01 eV/Å agree (2e-4 of the largest block here)
    np.testing.assert_allclose(turned.delta, blocks, atol=1e-3 * np.abs(fresh.delta).max())
