"""The cluster tier: dopants within the patch cutoff patched together (EMT on fcc Cu; no MLIP)."""

from dataclasses import replace

import numpy as np
import pytest
from ase.build import bulk, make_supercell

from defectnet.elements import mass_amu
from defectnet.grid import DEFAULT_GRID
from defectnet.phonons.clusters import (
    ClusterSettings,
    HostSymmetry,
    canonical_cluster,
    dopant_clusters,
)
from defectnet.phonons.dos import gamma_modes, gamma_spectrum
from defectnet.phonons.forceconstants import DopedSystem, TierSettings, pristine_supercell
from defectnet.phonons.host import HostSettings, compute_pristine
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.tiers import TIERS, tier_cluster

EMT_HOST = HostSettings(potential="emt", fc_min_width_ang=6.5, mesh_length_ang=15.0)
CUBIC = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])  # conventional cell of fcc from the primitive
SETTINGS = TierSettings(cutoff_ang=2.6)  # nearest neighbours of fcc Cu (2.54 Å)


@pytest.fixture(scope="module")
def cu_host():
    return compute_pristine(bulk("Cu", "fcc", a=3.6), EMT_HOST, fwhm_mev=0.5)


@pytest.fixture(scope="module")
def cell256(cu_host):
    return pristine_supercell(cu_host, 4 * CUBIC)  # 256 atoms, 14.4 Å wide


def _doped(host, cell, placed: dict) -> DopedSystem:
    """``cell`` (atoms, fc) with atom i replaced by ``placed[i]``."""
    atoms, fc0 = cell
    doped = atoms.copy()
    symbols = doped.get_chemical_symbols()
    for i, el in placed.items():
        symbols[i] = el
    doped.set_chemical_symbols(symbols)
    doped.set_masses([mass_amu(s) for s in symbols])
    return DopedSystem(doped, np.array(sorted(placed)), fc0, host, get_calculator("emt"))


def _nn_ang(atoms):
    """The nearest-neighbour distance of the (relaxed, EMT) Cu cell, Å (2.54)."""
    return float(np.sort(atoms.get_distances(0, np.arange(1, len(atoms)), mic=True))[0])


def _neighbour(atoms, i):
    """A nearest neighbour of atom ``i`` (minimum image)."""
    d = atoms.get_distances(i, np.arange(len(atoms)), mic=True)
    return int(np.flatnonzero(np.abs(d - _nn_ang(atoms)) < 1e-3)[0])


def _far_apart(atoms, k, min_ang, seed=0):
    """``k`` atoms pairwise at least ``min_ang`` apart (minimum image)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for i in rng.permutation(len(atoms)):
        if all(atoms.get_distance(i, j, mic=True) >= min_ang for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            return chosen
    raise AssertionError("cell too small")


def test_dopants_are_grouped_into_connected_components_across_the_boundary(cell256):
    atoms, _ = cell256
    a, nn = 0, _nn_ang(atoms)
    b = _neighbour(atoms, a)
    c = next(j for j in range(len(atoms)) if abs(atoms.get_distance(b, j, mic=True) - nn) < 1e-3
             and atoms.get_distance(a, j, mic=True) > 3.0)  # a chain a–b–c: a and c are not linked
    lone = next(i for i in range(len(atoms)) if min(atoms.get_distance(i, j, mic=True) for j in (a, b, c)) > 6.0)
    groups = dopant_clusters(atoms, [lone, c, a, b], 2.6)
    sizes = sorted(len(g.indices) for g in groups)
    assert sizes == [1, 3]
    chain = next(g for g in groups if len(g.indices) == 3)
    # positions are unwrapped along the links: each linked pair sits at its minimum-image distance
    d = np.linalg.norm(chain.positions_ang[:, None] - chain.positions_ang[None], axis=2)
    assert np.sum(np.abs(d - nn) < 1e-3) == 4  # a–b and b–c, both ways
    assert len(dopant_clusters(atoms, [a, b], nn - 0.01)) == 2  # below the distance: not linked


def test_canonical_key_is_invariant_under_the_space_group_and_tells_other_clusters_apart():
    gaas = bulk("GaAs", "zincblende", a=5.653)
    sym = HostSymmetry(gaas)
    assert len(sym.rotations) == 24  # Td: no inversion
    sc = make_supercell(gaas, 3 * CUBIC)
    ga = [i for i, s in enumerate(sc.get_chemical_symbols()) if s == "Ga"]
    pos = sc.positions
    nn2 = 5.653 / np.sqrt(2)  # Ga–Ga second-neighbour distance
    i = ga[0]
    js = [j for j in ga if abs(sc.get_distance(i, j, mic=True) - nn2) < 1e-3]
    assert len(js) == 12

    def key(idx, els):
        p = pos[idx[0]] + np.array([sc.get_distance(idx[0], k, mic=True, vector=True) for k in idx])
        return canonical_cluster(sym, p, els).key

    ref = key([i, js[0]], ["Zn", "Zn"])
    assert all(key([i, j], ["Zn", "Zn"]) == ref for j in js)  # every pair of the shell: one class
    assert key([js[3], i], ["Zn", "Zn"]) == ref  # member order does not matter
    t = ga[17]  # a lattice translation of the pair
    shift = pos[t] - pos[i]
    p = np.array([pos[i], pos[i] + sc.get_distance(i, js[0], mic=True, vector=True)]) + shift
    assert canonical_cluster(sym, p, ["Zn", "Zn"]).key == ref
    for R, tau in zip(sym.rotations, sym.translations_ang):  # each operation of the space group
        assert canonical_cluster(sym, p @ R.T + tau, ["Zn", "Zn"]).key == ref
    # a different pair: another shell, other species, another sublattice
    j3 = next(j for j in ga if abs(sc.get_distance(i, j, mic=True) - 5.653) < 1e-3)
    assert key([i, j3], ["Zn", "Zn"]) != ref
    assert key([i, js[0]], ["Zn", "Be"]) != ref
    as_ = [k for k, s in enumerate(sc.get_chemical_symbols()) if s == "As"]
    k = next(j for j in as_ if abs(sc.get_distance(as_[0], j, mic=True) - nn2) < 1e-3)
    assert key([as_[0], k], ["Zn", "Zn"]) != ref
    # inversion is a symmetry of the fcc lattice but not of zincblende: a triangle of Ga sites
    # (second neighbours) and its inverse differ (one has an As atom capping it, the other not)
    h = 5.653 / 2
    tri = np.array([[0, 0, 0], [-h, -h, 0], [-h, 0, -h]])
    assert canonical_cluster(sym, tri, ["Zn"] * 3).key != canonical_cluster(sym, -tri, ["Zn"] * 3).key
    assert canonical_cluster(sym, tri, ["Zn"] * 3).key == canonical_cluster(sym, tri[::-1] + pos[ga[5]], ["Zn"] * 3).key

def test_isolated_dopants_are_bit_identical_to_the_patch_tier(cu_host, cell256):
    atoms, _ = cell256
    placed = dict(zip(_far_apart(atoms, 4, 5.0, seed=1), ["Au", "Ni", "Au", "Ag"]))
    system = _doped(cu_host, cell256, placed)
    cluster, patch = TIERS["cluster"](system, SETTINGS), TIERS["patch"](system, SETTINGS)
    assert cluster.info["n_clusters"] == 0 and cluster.info["fallbacks"] == []
    assert np.array_equal(cluster.fc, patch.fc)


def _fidelity(res, ref, g0):
    w = DEFAULT_GRID.widths
    g, _ = gamma_spectrum(res.fc, res.atoms, DEFAULT_GRID, fwhm_mev=1.0)
    d_ref = ref.values - g0.values
    return 1 - np.sum(np.abs(g.values - ref.values) * w) / np.sum(np.abs(d_ref) * w)


@pytest.fixture(scope="module")
def au_pair(cu_host, cell256):
    """Two Au on nearest-neighbour sites (2.54 Å, within the 2.6 Å cutoff) of the 256-atom cell."""
    atoms, _ = cell256
    a = 37
    return _doped(cu_host, cell256, {a: "Au", _neighbour(atoms, a): "Au"})


def test_a_pair_within_the_cutoff_is_closer_to_local_than_the_patch_tier():
    """Two Au on nearest-neighbour sites in the host's own 256-atom force-constant cell (pristine
    force constants exact there), cutoff 3.7 Å (two shells): the cluster patch is the `local`
    calculation (every atom within the cutoff of either dopant displaced in the relaxed doped
    cell), while two superposed single patches lose ~10 % of its defect signature. (Against
    `full` all three reach only S ≈ 0.3 here: EMT's relaxation around Au reaches beyond 3.7 Å.)"""
    host = compute_pristine(bulk("Cu", "fcc", a=3.6), replace(EMT_HOST, fc_min_width_ang=14.0))
    cell = pristine_supercell(host, 4 * CUBIC)
    atoms, fc0 = cell
    assert len(host.phonon.supercell) == len(atoms) == 256
    pair = _doped(host, cell, {37: "Au", _neighbour(atoms, 37): "Au"})
    settings = TierSettings(cutoff_ang=3.7)
    g0, _ = gamma_spectrum(fc0, atoms, DEFAULT_GRID, fwhm_mev=1.0)
    local = TIERS["local"](pair, settings)
    g_local, _ = gamma_spectrum(local.fc, local.atoms, DEFAULT_GRID, fwhm_mev=1.0)
    cluster, patch = TIERS["cluster"](pair, settings), TIERS["patch"](pair, settings)
    assert cluster.info["n_clusters"] == 1 and cluster.info["cluster_sizes"] == [2]
    s_cluster, s_patch = _fidelity(cluster, g_local, g0), _fidelity(patch, g_local, g0)
    assert s_cluster > 0.99 and s_patch < 0.95, (s_cluster, s_patch)
    np.testing.assert_allclose(cluster.fc, local.fc, atol=1e-6)  # eV/Å²


def test_transplanted_cluster_patch_keeps_the_sum_rules(au_pair):
    res = TIERS["cluster"](au_pair, SETTINGS)
    assert res.info["n_clusters"] == 1
    np.testing.assert_allclose(res.fc, res.fc.transpose(1, 0, 3, 2), atol=1e-10)
    np.testing.assert_allclose(res.fc.sum(axis=1), 0.0, atol=1e-10)
    freqs, _ = gamma_modes(res.fc, res.atoms.get_masses())
    assert np.sort(np.abs(freqs))[:3].max() < 1e-3
    assert np.sort(np.abs(freqs))[3] > 0.1
    assert freqs.min() > -0.5  # meV: the pair's patch makes no unstable mode


def test_an_equivalent_pair_reuses_the_patch_rotated(cu_host, cell256, au_pair):
    """A pair along another <110> direction (a cubic rotation of the first) costs no force call and
    gives the spectrum of the first pair; computed afresh, its patch agrees with the rotated one."""
    atoms, _ = cell256
    first = TIERS["cluster"](au_pair, SETTINGS)
    a, b = au_pair.dopant_indices
    v = atoms.get_distance(a, b, mic=True, vector=True)
    w = np.array([v[1], -v[0], v[2]])  # v turned by 90° about z: a symmetry of fcc, not a translation
    c = int(np.flatnonzero(np.linalg.norm(
        atoms.get_distances(100, np.arange(len(atoms)), mic=True, vector=True) - w, axis=1) < 1e-3)[0])
    other = _doped(cu_host, cell256, {100: "Au", c: "Au"})
    reused = TIERS["cluster"](other, SETTINGS)
    assert reused.info["force_calls"] == 0
    f1, _ = gamma_modes(first.fc, first.atoms.get_masses())
    f2, _ = gamma_modes(reused.fc, reused.atoms.get_masses())
    # the three acoustic modes are sqrt of round-off (~1e-12) in the eigenvalues, so they agree only
    # to ~1e-5 meV; every optical mode must agree to far below a spectrum bin
    np.testing.assert_allclose(np.sort(f2), np.sort(f1), atol=1e-4)
    cu_host.cluster_cache.clear()
    fresh = TIERS["cluster"](other, SETTINGS)
    assert fresh.info["force_calls"] > 0
    np.testing.assert_allclose(fresh.fc, reused.fc, atol=1e-3 * np.abs(fresh.fc).max())


def test_a_cluster_above_max_dopants_falls_back_to_single_patches_with_a_reason(au_pair):
    res = tier_cluster(au_pair, SETTINGS, ClusterSettings(max_dopants=1))
    assert res.info["n_clusters"] == 0
    assert res.info["fallbacks"] == ["2 dopants, more than max_dopants=1"]
    assert np.array_equal(res.fc, TIERS["patch"](au_pair, SETTINGS).fc)


def test_cluster_statistics_count_dopants_in_clusters_and_repeated_keys(cu_host, cell256):
    from defectnet.phonons.clusters import cluster_statistics

    atoms, _ = cell256
    lone, dense = cluster_statistics(cu_host.atoms, atoms, [("Au", "Cu", 1.0)], [1 / 256, 0.25], 2.6,
                                     samples=4)
    assert lone["n_dopants"] == 4 and lone["in_clusters"] == 0 and lone["hit_rate"] is None
    # 64 Au among 256 fcc sites (12 neighbours each): almost every one has a neighbour
    assert dense["in_clusters"] > 0.9 and dense["largest_cluster"] > 4
    assert dense["in_patched_clusters"] <= dense["in_clusters"]
    assert 0 < dense["distinct_keys"] < dense["lookups"]  # fcc nearest-neighbour pairs: one key, met often
    assert dense["hit_rate"] == pytest.approx(1 - dense["distinct_keys"] / dense["lookups"])


def test_cluster_patches_are_kept_on_disk_for_the_next_run(cu_host, au_pair, tmp_path):
    """A later command on the same host reads the cluster's patch from the disk cache: no force
    call, the same force constants; an unreadable entry is computed again."""
    from defectnet.phonons.cache import HostCache

    disk = HostCache(tmp_path, "cu")
    before = cu_host.disk_cache
    try:
        cu_host.disk_cache = disk
        cu_host.cluster_cache.clear()
        first = TIERS["cluster"](au_pair, SETTINGS)
        assert first.info["force_calls"] > 0
        files = list((tmp_path / "hosts" / "cu" / "clusters").glob("*.npz"))
        assert len(files) == first.info["n_clusters"] == 1
        cu_host.cluster_cache.clear()  # a new process: memory empty, disk kept
        again = TIERS["cluster"](au_pair, SETTINGS)
        assert again.info["force_calls"] == 0
        np.testing.assert_array_equal(again.fc, first.fc)
        files[0].write_bytes(b"not an npz")
        cu_host.cluster_cache.clear()
        assert TIERS["cluster"](au_pair, SETTINGS).info["force_calls"] > 0
    finally:
        cu_host.disk_cache = before
        cu_host.cluster_cache.clear()
