"""Host build: checks on one host, the resumable store, serial and Dask builds, finalize.

Everything runs on ASE's EMT (fcc metals, milliseconds per force call) so the file stays well
under two minutes; the MLIP path is the same code with another registry name.
"""

import json

import numpy as np
import pytest
from ase.build import bulk

from defectnet.errors import DefectnetError
from defectnet.hosts import build as B
from defectnet.hosts import checks as K
from defectnet.hosts.library import HARD_CHECKS, Host, read_hosts

FAST = K.BuildConfig(potential="emt", fc_min_width_ang=5.0, fc_max_atoms=32, mesh_length_ang=6.0)


def metal(symbol: str, a: float, *, source: str = "curated") -> Host:
    return Host.from_atoms(
        bulk(symbol, "fcc", a=a), name=f"{symbol}-fcc", source=source, prototype="fcc", oxidation_states=None
    )


@pytest.fixture(scope="module")
def metals():
    return [metal("Cu", 3.55), metal("Ag", 4.05), metal("Ni", 3.50), metal("Pd", 3.85)]


def names(directory):
    return [r["name"] for r in B.BuildStore(directory).records()]


# ----------------------------------------------------------------------------- one host
def test_elastic_tensor_of_emt_copper():
    from ase.calculators.emt import EMT

    from defectnet.phonons.relax import relax

    atoms = relax(bulk("Cu", "fcc", a=3.6), EMT(), fmax=1e-4, steps=100).atoms
    C = K.elastic_tensor_gpa(atoms, EMT())
    assert np.allclose(C, C.T)
    c11, c12, c44 = C[0, 0], C[0, 1], C[3, 3]
    assert c11 > c12 > 0 and c44 > 0
    assert (c11 + 2 * c12) / 3 == pytest.approx(134, rel=0.15)  # EMT copper bulk modulus ≈ 134 GPa
    assert np.allclose([C[1, 1], C[2, 2]], c11, rtol=0.02)  # cubic


def test_evaluate_passes_a_stable_host():
    rec = K.evaluate_host(metal("Cu", 3.55).to_dict(), FAST.to_dict())
    assert rec["status"] == "passed" and rec["failed_checks"] == [] and rec["error"] is None
    host = Host.from_dict(rec["host"])
    prov = host.provenance
    assert host.relaxed and prov["potential"]["name"] == "emt"
    for check in HARD_CHECKS:
        assert check in host.checks
    assert host.checks["dynamically_stable"] and prov["n_imaginary"] == 0
    assert prov["min_frequency_mev"] >= -FAST.max_imaginary_mev and prov["max_frequency_mev"] > 20
    assert prov["bulk_modulus_gpa"] > 100
    # relaxed to EMT's lattice constant (3.59 Å) from 3.55 Å
    assert host.to_atoms().get_volume() == pytest.approx(3.59**3 / 4, rel=0.03)


def test_evaluate_fails_uncharged_prototype_and_reports_errors():
    rec = K.evaluate_host(metal("Cu", 3.55, source="prototype").to_dict(), FAST.to_dict())
    assert rec["status"] == "failed" and rec["failed_checks"] == ["charge_balanced"]
    # rejected before the costly checks: elastic tensor and phonons are not reached
    checks = Host.from_dict(rec["host"]).checks
    assert checks["mechanically_stable"] is None and checks["dynamically_stable"] is None
    assert "phonons_s" not in Host.from_dict(rec["host"]).provenance["timings"]
    bad = Host.from_atoms(bulk("Si", "diamond", a=5.43), name="Si-emt", source="curated")  # EMT has no Si
    rec = K.evaluate_host(bad.to_dict(), FAST.to_dict())
    assert rec["status"] == "error" and rec["error"] and rec["name"] == "Si-emt"


def test_prototypes_are_screened_at_gamma_before_the_supercell(monkeypatch):
    cu = Host.from_atoms(bulk("Cu", "fcc", a=3.55), name="Cu-proto", source="prototype", oxidation_states={"Cu": 0})
    rec = K.evaluate_host(cu.to_dict(), FAST.to_dict())
    prov = Host.from_dict(rec["host"]).provenance
    assert rec["status"] == "passed" and abs(prov["gamma_min_frequency_mev"]) < FAST.max_imaginary_mev
    assert "phonons_s" in prov["timings"]
    # a mode below the threshold at Γ rejects the prototype without the supercell phonons
    import defectnet.phonons.host as H

    monkeypatch.setattr(H, "gamma_frequencies_mev", lambda *a, **k: np.array([-5.0, 0.0, 0.0]))
    rec = K.evaluate_host(cu.to_dict(), FAST.to_dict())
    prov = Host.from_dict(rec["host"]).provenance
    assert rec["failed_checks"] == ["dynamically_stable"] and prov["gamma_min_frequency_mev"] == -5.0
    assert "phonons_s" not in prov["timings"]


# ----------------------------------------------------------------------------- the store
def test_store_survives_a_torn_last_line(tmp_path):
    store = B.BuildStore(tmp_path)
    store.append({"name": "a", "status": "passed"})
    store.append({"name": "b", "status": "failed"})
    with open(store.path, "a") as fh:
        fh.write('{"name": "c", "sta')  # crash mid-write
    assert [r["name"] for r in store.records()] == ["a", "b"]
    assert store.repair() > 0 and store.path.read_text().endswith("\n")
    assert store.repair() == 0
    store.append({"name": "c", "status": "passed"})
    assert list(store.latest()) == ["a", "b", "c"]


# ----------------------------------------------------------------------------- builds
def test_serial_build_resumes_without_duplicates(tmp_path, metals):
    s1 = B.build_library(tmp_path, workers=0, candidates=metals, limit=2, config=FAST, progress=False)
    assert s1.n_run == 2 and s1.n_passed == 2
    s2 = B.build_library(tmp_path, workers=0, candidates=metals, limit=3, config=FAST, progress=False)
    assert s2.n_run == 1 and s2.n_records == 3
    s3 = B.build_library(tmp_path, workers=0, candidates=metals, limit=3, config=FAST, progress=False)
    assert s3.n_run == 0
    assert names(tmp_path) == ["Cu-fcc", "Ag-fcc", "Ni-fcc"]
    saved = json.loads((tmp_path / B.CONFIG_FILE).read_text())
    assert saved == FAST.to_dict()


def test_interrupted_build_loses_nothing_that_finished(tmp_path, metals, monkeypatch):
    real = K.evaluate_host
    calls = []

    def flaky(host_dict, config_dict):
        calls.append(host_dict["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) while the second host runs
        return real(host_dict, config_dict)

    monkeypatch.setattr(B, "evaluate_host", flaky)  # the name build_library calls
    with pytest.raises(KeyboardInterrupt):
        B.build_library(tmp_path, workers=0, candidates=metals, config=FAST, progress=False)
    assert names(tmp_path) == ["Cu-fcc"]
    with open(B.BuildStore(tmp_path).path, "a") as fh:
        fh.write('{"name": "Ag-fcc", "status": "pas')  # and the crash tore a line
    monkeypatch.setattr(B, "evaluate_host", real)
    s = B.build_library(tmp_path, workers=0, candidates=metals, config=FAST, progress=False)
    assert s.n_run == 3 and s.n_passed == 4
    assert sorted(names(tmp_path)) == sorted(h.name for h in metals)


def test_n_target_stops_submitting(tmp_path, metals):
    s = B.build_library(tmp_path, workers=0, candidates=metals, n_target=1, config=FAST, progress=False)
    assert s.n_run == 1 and s.n_passed == 1


def test_smallest_first_orders_by_cell_size(tmp_path, metals):
    conventional = Host.from_atoms(  # 4 atoms: listed first, built last
        bulk("Cu", "fcc", a=3.55, cubic=True), name="Cu-cubic", source="curated", prototype="fcc",
        oxidation_states=None,
    )
    work = [conventional, *metals[:2]]
    B.build_library(tmp_path, workers=0, candidates=work, n_target=2, smallest_first=True, config=FAST, progress=False)
    assert names(tmp_path) == ["Cu-fcc", "Ag-fcc"]


def test_errors_are_skipped_unless_retried(tmp_path, metals):
    store = B.BuildStore(tmp_path)
    B._check_config(tmp_path, FAST, resume=True)
    store.append(
        {
            "name": "Cu-fcc",
            "status": "error",
            "failed_checks": [],
            "host": metals[0].to_dict(),
            "seconds": 0,
            "error": "worker lost",
        }
    )
    s = B.build_library(tmp_path, workers=0, candidates=metals[:1], config=FAST, progress=False)
    assert s.n_run == 0 and s.n_errors == 1
    s = B.build_library(tmp_path, workers=0, candidates=metals[:1], config=FAST, progress=False, retry_errors=True)
    assert s.n_run == 1 and s.n_errors == 0 and s.n_passed == 1


def test_settings_must_match_to_resume(tmp_path, metals):
    B.build_library(tmp_path, workers=0, candidates=metals[:1], config=FAST, progress=False)
    other = K.BuildConfig(**{**FAST.to_dict(), "fmax_ev_ang": 0.05})
    with pytest.raises(DefectnetError, match="fmax_ev_ang"):
        B.build_library(tmp_path, workers=0, candidates=metals[:1], config=other, progress=False)
    s = B.build_library(tmp_path, workers=0, candidates=metals[:1], config=other, resume=False, progress=False)
    assert s.n_run == 1 and (tmp_path / f"{B.STORE_FILE}.bak1").exists()  # old results kept aside
    with pytest.raises(DefectnetError, match="unknown build settings"):
        K.BuildConfig.from_dict({"fmax": 0.1})


def test_dask_build_two_workers(tmp_path, metals):
    s = B.build_library(tmp_path, workers=2, candidates=metals[:3], config=FAST, progress=False)
    assert s.n_run == 3 and s.n_passed == 3 and s.n_errors == 0
    assert sorted(names(tmp_path)) == sorted(h.name for h in metals[:3])
    # resuming finds nothing to do and does not even start a cluster
    again = B.build_library(tmp_path, workers=2, candidates=metals[:3], config=FAST, progress=False)
    assert again.n_run == 0 and len(names(tmp_path)) == 3


# ----------------------------------------------------------------------------- finalize
def test_finalize_keeps_curated_and_passed_prototypes(tmp_path):
    cu = metal("Cu", 3.55)  # curated
    ag = metal("Ag", 4.05)  # curated, not built: ships unrelaxed
    store = B.BuildStore(tmp_path)
    rec = K.evaluate_host(cu.to_dict(), FAST.to_dict())
    store.append(rec)
    # the same relaxed record, once as a passed and once as a failed prototype
    for name, status in (("Ni-proto", "passed"), ("Pd-proto", "failed")):
        host = {**rec["host"], "name": name, "source": "prototype", "formula": name.split("-")[0]}
        store.append({**rec, "name": name, "status": status, "host": host})
    path = B.finalize(tmp_path, base=[cu, ag])
    hosts, meta = read_hosts(path)
    assert [h.name for h in hosts] == ["Cu-fcc", "Ag-fcc", "Ni-proto"]
    # curated: the experimental structure, with the checks of its relaxed twin
    np.testing.assert_allclose(hosts[0].cell, cu.cell, atol=1e-5)
    assert not hosts[0].relaxed and hosts[0].checks["dynamically_stable"] is True
    np.testing.assert_allclose(hosts[0].provenance["mlip_cell"], rec["host"]["cell"], atol=1e-5)
    assert not np.allclose(rec["host"]["cell"], cu.cell, atol=1e-3)  # EMT did move the lattice
    assert "dynamically_stable" not in hosts[1].checks and hosts[2].relaxed
    assert meta["n_prototype_passed"] == 1 and meta["potentials"][0]["name"] == "emt"


def test_a_finalized_library_is_used_through_defectnet_library_not_written_into_the_package(tmp_path, monkeypatch):
    """--finalize writes a user file (the package is never written to); DEFECTNET_LIBRARY selects it."""
    from defectnet.hosts import library as L

    shipped = L.library_path()
    assert shipped == L.data_path(L.LIBRARY_FILE)
    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "cache"))
    assert L.user_library_path() == tmp_path / "cache" / "library.json.gz"
    path = L.write_hosts(tmp_path / "mine.json.gz", [metal("Cu", 3.55)], meta={"note": "mine"})
    monkeypatch.setenv(L.LIBRARY_ENV, str(path))
    L.get_library.cache_clear()
    try:
        lib = L.get_library()
        assert [h.name for h in lib.hosts] == ["Cu-fcc"] and lib.meta["note"] == "mine"
        monkeypatch.setenv(L.LIBRARY_ENV, str(tmp_path / "missing.json.gz"))
        L.get_library.cache_clear()
        with pytest.raises(DefectnetError, match="not found"):
            L.get_library()
    finally:
        monkeypatch.delenv(L.LIBRARY_ENV)
        L.get_library.cache_clear()
    assert len(L.get_library().hosts) > 100  # the shipped library again
