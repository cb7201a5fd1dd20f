"""The generation pipeline on EMT hosts (fcc Cu/Au/Ag/Pd, 32-atom supercells; no MLIP).

Config validation, planning determinism, failures recorded with their reason (the export
contract is in test_export.py), ``dataset info``/``umap``, agreement with ``simulate_spectra``, and the SIGKILL
test: kill ``defectnet generate`` mid-run, rerun it, and compare with an uninterrupted run.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import yaml
from ase.build import bulk

from defectnet.cli import main
from defectnet.data.blobs import cache_patches, unpack_pristine
from defectnet.data.generate import run_generate
from defectnet.data.plan import HostInput, plan_host
from defectnet.data.recorder import Progress
from defectnet.data.store import Store, unpack_arrays
from defectnet.data.tasks import TaskFailure, TaskTimeout, failure_reason
from defectnet.errors import DefectnetError



def test_failure_reasons_registry():
    assert failure_reason(TaskTimeout("x"))[0] == "timeout"
    assert failure_reason(TaskFailure("imaginary_modes", "3 modes")) == ("imaginary_modes", "3 modes")
    assert failure_reason(DefectnetError("bad"))[0] == "invalid_input"
    from defectnet.phonons.patches import UnstablePatch

    assert failure_reason(UnstablePatch("N on site 0"))[0] == "unstable_patch"  # before its base class
    assert failure_reason(np.linalg.LinAlgError("no"))[0] == "linalg_error"
    assert failure_reason(RuntimeError("boom")) == ("error", "RuntimeError: boom")


def test_a_rotated_patch_equals_the_computed_one_on_an_equivalent_site():
    """hcp Cu (EMT): sites 0 and 1 are equivalent; rotating the site-0 patch gives the site-1 patch."""
    from defectnet.data.blobs import derive_patch, site_equivalence
    from defectnet.phonons.forceconstants import TierSettings
    from defectnet.phonons.host import HostSettings, compute_pristine
    from defectnet.phonons.patches import get_patch
    from defectnet.phonons.potentials import get_calculator

    host = compute_pristine(bulk("Cu", "hcp", a=2.55, c=4.16),
                            HostSettings(potential="emt", fc_min_width_ang=6.5, mesh_length_ang=15.0))
    a = host.atoms
    eq = site_equivalence(a.cell.array, a.get_scaled_positions(), a.numbers)
    assert eq[0][0] == 0 and eq[1][0] == 0
    settings = TierSettings(cutoff_ang=2.6)
    p0, _ = get_patch(host, 0, "Ni", get_calculator("emt"), settings)
    p1, _ = get_patch(host, 1, "Ni", get_calculator("emt"), settings)
    d = derive_patch(p0, eq[1][1], 1)
    order = [int(np.argmin(np.linalg.norm(p1.rel_ang - r, axis=1))) for r in d.rel_ang]
    np.testing.assert_allclose(p1.rel_ang[order], d.rel_ang, atol=1e-8)  # same atoms ...
    where = {int(c): k for k, c in enumerate(p1.cluster)}
    computed = p1.delta[[where[order[c]] for c in d.cluster]][:, order]
    # ... and the same δΦ up to the finite-difference and relaxation noise (0.13 % measured)
    assert np.abs(computed - d.delta).max() < 5e-3 * np.abs(p1.delta).max()


# ---------------------------------------------------------------------------- a generated store (conftest: emt_store)
def test_failures_are_recorded_with_their_reason_and_the_run_goes_on(emt_store):
    out, cfg, summary = emt_store
    assert summary.samples == {"ok": 18}
    assert summary.failures == {"host:imaginary_modes": 1, "host:potential_error": 1}
    with Store(out) as s:
        hosts = {h["name"]: h for h in s.hosts()}
        assert hosts["Cu-bcc"]["status"] == "failed" and hosts["Cu-bcc"]["reason"] == "imaginary_modes"
        assert "q-mesh modes below" in hosts["Cu-bcc"]["error"]
        assert hosts["Si"]["reason"] == "potential_error" and "Si" in hosts["Si"]["error"]
        assert s.check().ok
        rows = list(s.samples())
        assert {r["host"] for r in rows} == {"Cu", "Au", "Cu-hcp"}
        r = rows[0]
        assert r["tier"] == "patch" and r["potential"] == "emt" and r["grid_id"] == cfg.grid.grid_id
        assert r["supercell_atoms"] == 32 and r["code_version"] and r["worker"]
        assert {"diagonalise_s", "total_s"} <= set(r["timings"])
        assert sum(x[3] for x in r["dopants"]) / 32 == pytest.approx(r["total_concentration"])
        patches = s.patches(hosts["Cu"]["id"])
        assert patches and all(p["status"] == "ok" and p["force_calls"] > 0 for p in patches)
        for p in patches:  # every force call is either relaxation or displacement
            t = p["timings"]
            assert t["displace_force_calls"] == p["force_calls"] and t["relax_force_calls"] > 0
            assert t["relax_force_calls"] + t["displace_force_calls"] == t["patch_force_calls"]
        assert {p["element"] for p in patches} <= set(hosts["Cu"]["pool"])
        hcp = s.patches(hosts["Cu-hcp"]["id"])  # one computed, one rotated per element
        assert sorted(p["force_calls"] > 0 for p in hcp) == [False, False, True, True]
        assert {p["timings"].get("derived_from_site") for p in hcp if p["force_calls"] == 0} == {0}


def test_dataset_info_counts_failures_by_reason(emt_store, capsys):
    out, _, _ = emt_store
    assert main(["dataset", "info", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "hosts      3 ok, 2 failed" in text and "samples    18 ok, 0 failed" in text
    assert "host    imaginary_modes  1" in text and "host    potential_error  1" in text
    assert "integrity check passed" in text
    assert main(["dataset", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {(f["stage"], f["reason"]): f["count"] for f in info["failures"]} == {
        ("host", "imaginary_modes"): 1, ("host", "potential_error"): 1}


def test_dataset_check_fails_an_edited_concentration_naming_the_sample(emt_store, tmp_path, capsys):
    """Labels are checked against the stored placement: a copy of the store with one concentration edited (or
    with its atom count and total edited to match, which the stored dopant indices still contradict) fails, exit 1."""
    out, _, _ = emt_store
    assert main(["dataset", "check", str(out)]) == 0

    def more(row):  # a concentration off by one atom
        conc, n = json.loads(row["concentrations"]), row["supercell_atoms"]
        return {"concentrations": {el: c + 1 / n for el, c in conc.items()}}

    def consistently_more(row):  # ... and the atoms placed and the total said to be one more too
        dopants = json.loads(row["dopants"])
        dopants[0][3] += 1
        return more(row) | {"dopants": dopants, "total_concentration": row["total_concentration"] + 1 / row["supercell_atoms"]}

    for edit, why in ((more, "atoms of"), (consistently_more, "dopant indices for")):
        copy = shutil.copy(out, tmp_path / f"{edit.__name__}.sqlite")
        with sqlite3.connect(copy) as conn:  # the first ok sample with one dopant
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM samples WHERE status = 'ok' AND n_dopants = 1 ORDER BY id LIMIT 1").fetchone()
            for column, value in edit(row).items():
                conn.execute(f"UPDATE samples SET {column} = ? WHERE id = ?", (json.dumps(value), row["id"]))
        capsys.readouterr()
        assert main(["dataset", "check", str(copy)]) == 1
        text = capsys.readouterr().out
        assert f"sample {row['host']}#{row['sample_index']}: " in text and why in text, text
        assert text.count("sample ") == 1, text


def test_pipeline_sample_equals_simulate_spectra(emt, emt_store):
    """A stored sample is exactly what simulate_spectra gives for its dopants and placement seed."""
    from defectnet.doping import DopantSpec
    from defectnet.phonons.forceconstants import TierSettings
    from defectnet.simulate import SimulationConfig, simulate_spectra

    out, cfg, _ = emt_store
    with Store(out) as s:
        host = s.host("Cu")
        row = next(r for r in s.samples(blobs=True) if r["host"] == "Cu" and r["n_dopants"] == 2)
        patches = [p["data"] for p in s.patches(host["id"], blobs=True)]
    pristine, _ = unpack_pristine(host["pristine"], cfg.host)
    cache_patches(pristine, patches, cfg.tier_settings)
    from defectnet.data.plan import (
        plan_host as _plan,  # the placement seed comes from the plan
    )
    from defectnet.recommend import DopantRecommender

    job = _plan(HostInput("Cu", bulk("Cu", "fcc", a=3.6), "Cu"), cfg,
                DopantRecommender(vocabulary=emt.dopants, n_max=20).fit(), [row["sample_index"]]).jobs[row["sample_index"]]
    sim_cfg = SimulationConfig(tier="patch", potential="emt", supercell_atoms=32, seed=job.placement_seed,
                               host=cfg.host, tier_settings=TierSettings(cutoff_ang=2.6))
    res = simulate_spectra(pristine.atoms, [DopantSpec(e, s_, f) for e, s_, f in job.dopants], sim_cfg,
                           pristine_host=pristine, progress=False)
    arrays = unpack_arrays(row["arrays"])
    np.testing.assert_allclose(arrays["doped"], res.doped.values.astype(np.float32), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(arrays["doped_gpdos"], res.doped_gpdos.values.astype(np.float32), rtol=1e-6, atol=1e-7)
    assert row["concentrations"] == pytest.approx(res.meta["concentrations"])


def test_umap_plot(emt_store, tmp_path, capsys):
    pytest.importorskip("umap")
    out, _, _ = emt_store
    png, csv = tmp_path / "u.png", tmp_path / "u.csv"
    assert main(["dataset", "umap", str(out), "--color", "dopant-mass", "--out", str(png), "--csv", str(csv),
                 "--n-neighbors", "5"]) == 0
    assert png.stat().st_size > 1000
    lines = csv.read_text().splitlines()
    assert lines[0] == "sample_id,host,x,y,value" and len(lines) == 19
    assert "18 samples" in capsys.readouterr().out


def test_a_timeout_is_a_recorded_failure_and_retry_failed_recomputes(emt, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "t.sqlite"
    hosts = emt.inline(Pd=bulk("Pd", "fcc", a=3.89))
    # Through an existing scheduler, as on a cluster (one LocalCluster for the three runs).
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        addr = cluster.scheduler_address
        summary = run_generate(emt.config(hosts, task_timeout_s=1e-4), out, scheduler=addr, progress=False)
        assert summary.failures == {"host:timeout": 1} and summary.workers == addr
        with Store(out) as s:
            assert s.failures() == [("host", "timeout", 1)]
        again = run_generate(emt.config(hosts, samples_per_host=2), out, scheduler=addr, progress=False)
        assert again.samples == {} and again.workers == "-"  # failures are final
        retried = run_generate(emt.config(hosts, samples_per_host=2), out, scheduler=addr, progress=False,
                               retry_failed=True)
    assert retried.samples == {"ok": 2} and retried.failures == {}


def test_a_store_refuses_a_different_config(emt_store):
    out, cfg, _ = emt_store
    with pytest.raises(DefectnetError, match=r"different config \(differs in: seed\)"):
        run_generate(replace(cfg, seed=8), out, workers=1, progress=False)


def test_a_store_made_before_a_new_setting_still_resumes(emt_store, tmp_path):
    """A store whose config lacks a setting added later (at its default) is the same identity."""
    import shutil

    src, cfg, _ = emt_store
    out = shutil.copy(src, tmp_path / "old.sqlite")
    with Store(out, "w") as s:
        old = s.get_meta("config")
        del old["tier_settings"]["patch_cell_width_ang"]  # as written before the setting existed
        s.set_meta(config=old, identity_hash="0" * 16)
    again = run_generate(cfg, out, workers=1, progress=False)
    assert again.samples == {}  # nothing recomputed, nothing refused
    with Store(out) as s:
        assert s.get_meta("identity_hash") == cfg.identity_hash()
    with Store(out, "w") as s:  # but a stored value that differs is still refused
        old["tier_settings"]["patch_cell_width_ang"] = 16.0
        s.set_meta(config=old, identity_hash="0" * 16)
    with pytest.raises(DefectnetError, match="tier_settings"):
        run_generate(cfg, out, workers=1, progress=False)


# ---------------------------------------------------------------------------- SIGKILL and resume
def _count(path) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the store is being created
        return 0


def _rows(path):
    with Store(path) as s:
        report = s.check()
        rows = {r["id"]: r for r in s.samples(status=None, blobs=True)}
        hosts = {h["name"]: h for h in s.hosts(blobs=True)}
    return report, rows, hosts


def test_sigkill_and_rerun_loses_nothing_duplicates_nothing_and_matches_an_uninterrupted_run(emt_store, tmp_path):
    ref_store, cfg, _ = emt_store  # the uninterrupted run of the same config
    # One sample per task so rows trickle in; samples_per_task only changes how work is cut.
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump({**cfg.to_dict(), "samples_per_task": 1}))
    exe = shutil.which("defectnet")  # the installed command, as a user runs it
    cmd = ([exe] if exe else [sys.executable, "-m", "defectnet.cli"]) + [
        "generate", "--config", "gen.yaml", "--out", "run.sqlite", "--workers", "2", "--quiet"]
    store = tmp_path / "run.sqlite"
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _count(store) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before_report, before, _ = _rows(store)
    assert before_report.ok, before_report.problems  # the killed store is consistent as it is
    assert 1 <= len(before) < 18, "the run should be killed partway"

    rerun = subprocess.run(cmd, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report, after, hosts = _rows(store)
    assert report.ok, report.problems
    assert len(after) == 18 and all(r["status"] == "ok" for r in after.values())
    for sid, row in before.items():  # no finished row lost or changed
        assert after[sid]["arrays"] == row["arrays"] and after[sid]["created"] == row["created"]
    with Store(store) as s:
        runs = s.runs()
        dup = s.conn.execute("SELECT COUNT(*) FROM (SELECT host, sample_index FROM samples GROUP BY 1, 2 "
                             "HAVING COUNT(*) > 1)").fetchone()[0]
        failed = {h["name"]: h["reason"] for h in s.hosts("failed")}
    assert dup == 0
    assert [r["status"] for r in runs] == ["interrupted", "finished"]
    assert failed == {"Cu-bcc": "imaginary_modes", "Si": "potential_error"}

    ref_report, ref, ref_hosts = _rows(ref_store)
    assert ref_report.ok
    assert set(ref) == set(after)  # the same sample ids as the uninterrupted run
    for sid, row in ref.items():  # and the same samples, bit for bit
        a, b = unpack_arrays(row["arrays"]), unpack_arrays(after[sid]["arrays"])
        for key in ("doped", "doped_gpdos", "dopant_indices"):
            np.testing.assert_array_equal(a[key], b[key])
        assert row["concentrations"] == after[sid]["concentrations"]
        assert row["candidates"] == after[sid]["candidates"] and row["seed"] == after[sid]["seed"]
    for name, h in ref_hosts.items():
        if h["status"] == "ok":
            np.testing.assert_array_equal(unpack_arrays(h["spectra"])["pristine"],
                                          unpack_arrays(hosts[name]["spectra"])["pristine"])


def test_store_of_an_older_patch_algorithm_is_refused(emt, tmp_path):
    from defectnet.data.generate import _check_store_config
    from defectnet.data.store import Store

    cfg = emt.config({"names": ["Si"]})
    with Store(tmp_path / "s.sqlite", "w") as store:
        _check_store_config(store, cfg)
        _check_store_config(store, cfg)  # same algorithm: resumes
        store.set_meta(patch_algorithm=1)
        with pytest.raises(DefectnetError, match="patch algorithm 1"):
            _check_store_config(store, cfg)


def test_dopants_with_unstable_patches_are_drawn_again_without_them(emt, tmp_path, monkeypatch, recommender):
    import defectnet.phonons.patches as P

    atoms = bulk("Cu", "fcc", a=3.6)
    cfg = emt.config(emt.inline(Cu=atoms))
    bad = plan_host(HostInput("Cu", atoms, "Cu"), cfg, recommender, range(6)).pool[0]
    real = P.get_patch

    def get_patch(host, site, element, *args, **kw):  # this dopant has no stable position
        if element == bad:
            raise P.UnstablePatch(f"{element} on site {site}: no stable position (test)")
        return real(host, site, element, *args, **kw)

    monkeypatch.setattr(P, "get_patch", get_patch)
    out = tmp_path / "s.sqlite"
    summary = run_generate(cfg, out, workers=1, processes=False, progress=False)
    assert summary.samples == {"ok": 6}  # every sample drawn again without it: none lost
    with Store(out) as s:
        hid = s.host_id("Cu")
        failed = [p for p in s.patches(hid) if p["status"] == "failed"]
        assert [(p["element"], p["reason"]) for p in failed] == [(bad, "unstable_patch")]
        rows = list(s.samples())
        assert all(bad not in {d[0] for d in r["dopants"]} for r in rows)
        n_patches = len(s.patches(hid))
    run_generate(replace(cfg, samples_per_host=9), out, workers=1, processes=False, progress=False)
    with Store(out) as s:  # resumed: the new samples avoid it at once, it is not computed again
        rows = list(s.samples("ok"))
        assert len(rows) == 9 and all(bad not in {d[0] for d in r["dopants"]} for r in rows)
        assert sum(p["element"] == bad for p in s.patches(hid)) == 1 and len(s.patches(hid)) >= n_patches


def test_a_host_with_mostly_unstable_dopants_gives_up_and_retry_draws_again(emt, tmp_path, monkeypatch, recommender):
    import defectnet.phonons.patches as P

    atoms = bulk("Cu", "fcc", a=3.6)
    cfg = emt.config(emt.inline(Cu=atoms), max_unstable_fraction=0.4)
    pool = plan_host(HostInput("Cu", atoms, "Cu"), cfg, recommender, range(6)).pool
    real = P.get_patch

    def get_patch(host, site, element, *args, **kw):  # one dopant of the pool of two: 0.5 > 0.4
        if element == pool[0]:
            raise P.UnstablePatch(f"{element} on site {site}: no stable position (test)")
        return real(host, site, element, *args, **kw)

    monkeypatch.setattr(P, "get_patch", get_patch)
    out = tmp_path / "s.sqlite"
    summary = run_generate(cfg, out, workers=1, processes=False, progress=False)
    with Store(out) as s:
        failed = list(s.samples("failed"))
        assert failed and summary.samples["failed"] == len(failed) and len(failed) + summary.samples["ok"] == 6
        assert {r["reason"] for r in failed} == {"unstable_host"}
        assert "1 of 2 dopants" in failed[0]["error"] and pool[0] in failed[0]["error"]
        assert {p["element"] for p in s.patches(s.host_id("Cu"))} == set(pool)  # no new dopant drawn
    # the other dopant's patch failing for another reason: its samples keep that reason
    def broken(host, site, element, *args, **kw):
        if element == pool[1]:
            raise MemoryError("patch too large (test)")
        return get_patch(host, site, element, *args, **kw)

    monkeypatch.setattr(P, "get_patch", broken)
    run_generate(cfg, tmp_path / "t.sqlite", workers=1, processes=False, progress=False)
    with Store(tmp_path / "t.sqlite") as s:
        reasons = {}
        for r in s.samples("failed"):
            reasons.setdefault(r["reason"], set()).update(d[0] for d in r["dopants"])
    assert set(reasons) == {"unstable_host", "out_of_memory"}
    assert pool[0] in reasons["unstable_host"] and pool[0] not in reasons["out_of_memory"]
    monkeypatch.setattr(P, "get_patch", get_patch)
    # the setting may change on a resumed store; the given-up samples are drawn again on request
    summary = run_generate(replace(cfg, max_unstable_fraction=None), out, workers=1, processes=False,
                           progress=False, retry_failed=["unstable_host"])
    with Store(out) as s:
        rows = list(s.samples(None))
        assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
        assert all(pool[0] not in {d[0] for d in r["dopants"]} for r in rows)
        assert sum(p["element"] == pool[0] for p in s.patches(s.host_id("Cu"))) == 1  # not computed again


def test_an_unstable_placement_is_drawn_again_and_retry_failed_takes_reasons(emt, tmp_path, monkeypatch):
    import defectnet.phonons.dos as D

    real, calls = D.gamma_spectrum, []

    def gamma_spectrum(fc, atoms, *args, **kw):  # every other doped cell is unstable
        spec, freqs = real(fc, atoms, *args, **kw)
        if set(atoms.get_chemical_symbols()) != {"Cu"}:
            calls.append(sorted(np.flatnonzero(np.array(atoms.get_chemical_symbols()) != "Cu")))
            if len(calls) % 2:
                spec.meta["min_frequency_mev"] = -50.0
        return spec, freqs

    monkeypatch.setattr(D, "gamma_spectrum", gamma_spectrum)
    cfg = emt.config(emt.inline(Cu=bulk("Cu", "fcc", a=3.6)), samples_per_host=3, samples_per_task=1)
    out = tmp_path / "s.sqlite"
    first = run_generate(cfg, out, workers=1, processes=False, progress=False)
    assert first.samples == {"ok": 1, "failed": 2}  # one placement each: calls 1 and 3 fail, 2 passes
    with Store(out) as s:
        failed = [r for r in s.samples("failed")]
        assert {r["reason"] for r in failed} == {"imaginary_modes"}
        first_ok = {r["sample_index"]: unpack_arrays(r["arrays"]) for r in s.samples("ok", blobs=True)}
    assert "placements" not in failed[0]["error"]

    calls.clear()
    again = run_generate(replace(cfg, placement_attempts=3), out, workers=1, processes=False, progress=False,
                         retry_failed=["imaginary_modes"])  # an extent key: the same store resumes
    assert again.retried["samples"] == 2 and again.samples == {"ok": 2}
    assert len(calls) == 4 and calls[0] != calls[1] and calls[2] != calls[3]  # a new placement after each failure
    with Store(out) as s:
        rows = {r["sample_index"]: r for r in s.samples("ok", blobs=True)}
    assert len(rows) == 3
    assert sorted(r["timings"]["placement_attempts"] for r in rows.values()) == [1, 2, 2]
    (i, arrays), = first_ok.items()  # the row made at its first placement is untouched
    assert np.array_equal(unpack_arrays(rows[i]["arrays"])["doped"], arrays["doped"])
    assert "placement_attempts" in rows[i]["timings"]


def test_generate_cli_retry_failed_reasons():
    from defectnet.data.commands import _retry_reasons

    assert _retry_reasons(None) is False and _retry_reasons("all") is True
    assert _retry_reasons("imaginary_modes, timeout") == ["imaginary_modes", "timeout"]


def test_progress_counts_failures_by_stage_and_keeps_the_bar_total_to_what_will_be_made():
    progress = Progress(show=True)
    progress.start(total=10, done=2)
    progress.count("hosts", "failed", "host", "timeout")
    progress.drop(4)  # the failed host's samples will never be made
    progress.count("samples", "ok", "sample")
    progress.advance(3)
    progress.hosts(1, 2)
    assert (progress.bar.n, progress.bar.total) == (5, 6)
    progress.close()
    assert progress.counts["hosts"] == {"failed": 1} and progress.counts["samples"] == {"ok": 1}
    assert progress.counts["failures"] == {"host:timeout": 1}
    quiet = Progress(show=False)
    quiet.start(10, 0), quiet.advance(1), quiet.drop(1), quiet.hosts(0, 0), quiet.close()
    assert quiet.bar is None


def test_the_cluster_tier_generates_the_same_samples_with_coupled_pairs(emt, tmp_path):
    """tier: cluster in a generation: the patch tier's samples (same dopants, same atoms), its patches
    made inside each sample (none stored); some samples (dopants within the cutoff of each other) differ
    from the patch tier's, the others (isolated dopants: the same single patches) do not."""
    sampler = {**emt.base["sampler"], "conc_range": [0.06, 0.12]}  # 2-4 dopants in 32 atoms: some are neighbours
    spectra, dopants = {}, {}
    for tier in ("patch", "cluster"):
        cfg = emt.config(emt.inline(Cu=bulk("Cu", "fcc", a=3.6)), tier=tier, samples_per_host=4, sampler=sampler)
        run_generate(cfg, tmp_path / f"{tier}.sqlite", workers=1, processes=False, progress=False)
        with Store(tmp_path / f"{tier}.sqlite") as s:
            rows = list(s.samples(blobs=True))
            assert tier == "patch" or not s.patches(s.host_id("Cu"))
        assert [r["status"] for r in rows] == ["ok"] * 4
        dopants[tier] = {r["sample_index"]: r["dopants"] for r in rows}
        spectra[tier] = {r["sample_index"]: unpack_arrays(r["arrays"]) for r in rows}
    assert dopants["patch"] == dopants["cluster"]
    changed = []
    for i, a in spectra["patch"].items():
        b = spectra["cluster"][i]
        np.testing.assert_array_equal(a["dopant_indices"], b["dopant_indices"])  # the same atoms substituted
        changed.append(not np.allclose(a["doped"], b["doped"], atol=1e-7))
    assert any(changed) and not all(changed)  # a coupled pair changes the spectrum; isolated dopants do not
