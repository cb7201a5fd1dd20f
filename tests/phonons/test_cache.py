"""The engine's disk cache: a host's force constants and patches computed once across calls and commands (EMT Cu)."""

from dataclasses import replace

import numpy as np
import pytest
from ase.build import bulk

from defectnet.phonons.cache import HostCache, cache_dir, cached_pristine, host_key
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import HostSettings, standardize_primitive
from defectnet.phonons.patches import get_patch
from defectnet.phonons.potentials import get_calculator

SETTINGS = HostSettings(potential="emt", fc_min_width_ang=6.5, mesh_length_ang=15.0)
TIER = TierSettings(cutoff_ang=2.6)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_host_and_patches_are_read_back_not_computed_again(cache):
    calc = get_calculator("emt")
    first = cached_pristine(bulk("Cu", "fcc", a=3.6), SETTINGS)
    assert "cached" not in first.timings and len(list(cache.glob("hosts/*/pristine.bin"))) == 1
    patch, calls = get_patch(first, 0, "Ag", calc, TIER)
    assert calls > 0

    # a new process would hold a new host object: everything comes from the disk
    second = cached_pristine(bulk("Cu", "fcc", a=3.6), SETTINGS)
    assert second.timings["cached"] is True and second is not first
    np.testing.assert_allclose(second.phonon.force_constants, first.phonon.force_constants, atol=1e-10)
    np.testing.assert_allclose(second.spectrum.values, first.spectrum.values, atol=1e-9)
    again, calls = get_patch(second, 0, "Ag", calc, TIER)
    assert calls == 0
    np.testing.assert_allclose(again.delta, patch.delta)
    np.testing.assert_allclose(again.displacement_ang, patch.displacement_ang)
    # other tier settings make another patch
    _, calls = get_patch(second, 0, "Ag", calc, replace(TIER, cutoff_ang=2.0))
    assert calls > 0


def test_key_follows_structure_and_settings_and_a_torn_entry_is_recomputed(cache):
    prim = standardize_primitive(bulk("Cu", "fcc", a=3.6))[0]
    key = host_key(prim, SETTINGS)
    assert key == host_key(standardize_primitive(bulk("Cu", "fcc", a=3.6, cubic=True))[0], SETTINGS)
    assert key != host_key(standardize_primitive(bulk("Cu", "fcc", a=3.65))[0], SETTINGS)
    assert key != host_key(prim, replace(SETTINGS, displacement_ang=0.02))
    assert key != host_key(prim, replace(SETTINGS, potential="sevennet"))

    entry = HostCache(cache, key)
    (entry.path).mkdir(parents=True)
    (entry.path / "pristine.bin").write_bytes(b"not a blob")
    host = cached_pristine(bulk("Cu", "fcc", a=3.6), SETTINGS)
    assert "cached" not in host.timings  # unreadable: computed again, and the entry replaced
    assert entry.load_pristine(SETTINGS) is not None


def test_cache_off_and_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFECTNET_CACHE", "off")
    assert cache_dir() is None
    host = cached_pristine(bulk("Cu", "fcc", a=3.6), SETTINGS)
    assert host.disk_cache is None and "cached" not in host.timings

    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("DEFECTNET_CACHE", str(blocked))
    host = cached_pristine(bulk("Cu", "fcc", a=3.6), SETTINGS)  # cannot write: computes, does not fail
    _, calls = get_patch(host, 0, "Ag", get_calculator("emt"), TIER)
    assert calls > 0 and blocked.read_text().startswith("a file")
