"""The SQLite dataset store: round trips, idempotent commits, locking, integrity checks (no Dask)."""

import json
import sqlite3

import numpy as np
import pytest

from defectnet.data.store import (
    SCHEMA_VERSION,
    Store,
    pack_arrays,
    sample_id,
    unpack_arrays,
)
from defectnet.data.summary import summarize
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID

W = DEFAULT_GRID.widths


def _unit(seed):
    v = np.random.default_rng(seed).random(DEFAULT_GRID.n_bins)
    return (v / np.sum(v * W)).astype(np.float32)


def _host(name="Cu", status="ok", **kw):
    row = {"name": name, "formula": name, "prototype": "fcc", "source": "inline", "elements": [name],
           "composition": {name: 1.0}, "structure_hash": "abc", "status": status, "potential": "emt",
           "pristine": pack_arrays(force_constants=np.eye(3)) if status == "ok" else None,
           "spectra": pack_arrays(pristine=_unit(0)) if status == "ok" else None}
    row.update(kw)
    return row


def _sample(host_id, index, status="ok", host="Cu", **kw):
    row = {"host_id": host_id, "host": host, "sample_index": index, "status": status, "n_dopants": 1,
           "dopants": [["Ni", host, 0.05, 2]], "concentrations": {"Ni": 0.0625}, "candidates": ["Ni", "Pd"],
           "distractors": ["Pd"], "seed": 2**62 + index, "timings": {"total_s": 0.1}}
    if status == "ok":
        row["arrays"] = pack_arrays(doped=_unit(index + 1), doped_gpdos=_unit(index + 2))
    else:
        row.update(reason=kw.pop("reason", "imaginary_modes"), error="3 imaginary modes")
    row.update(kw)
    return row


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.sqlite", "w") as s:
        s.set_meta(grid=DEFAULT_GRID.to_dict())
        yield s


def test_arrays_round_trip_without_pickle():
    blob = pack_arrays(a=np.arange(5, dtype=np.int16), b=np.ones((2, 3), np.float32), name=np.array("Ge"))
    out = unpack_arrays(blob)
    assert out["a"].dtype == np.int16 and out["b"].shape == (2, 3) and str(out["name"]) == "Ge"
    with pytest.raises(ValueError):  # object arrays would need pickle: refused on read
        unpack_arrays(pack_arrays(x=np.array([{"a": 1}], dtype=object)))


def test_sample_id_is_deterministic_and_63_bit():
    assert sample_id("GaAs", 3) == sample_id("GaAs", 3)
    ids = {sample_id(h, i) for h in ("GaAs", "Si", "GaN") for i in range(200)}
    assert len(ids) == 600
    assert all(0 <= i < 2**63 for i in ids)


def test_round_trip_and_duplicates_are_ignored(store):
    hid = store.add_host(_host())
    assert store.add_host(_host()) == hid  # a second commit of the same host keeps the first
    assert store.add_patch({"host_id": hid, "site": 0, "element": "Ni", "status": "ok", "data": pack_arrays(x=1)})
    assert not store.add_patch({"host_id": hid, "site": 0, "element": "Ni", "status": "ok", "data": b""})
    assert store.add_samples([_sample(hid, 0), _sample(hid, 1)]) == 2
    assert store.add_samples([_sample(hid, 1), _sample(hid, 2, "failed")]) == 1  # #1 is already there
    rows = list(store.samples(status=None, blobs=True))
    assert [(r["sample_index"], r["status"]) for r in rows] == [(0, "ok"), (1, "ok"), (2, "failed")]
    assert rows[0]["id"] == sample_id("Cu", 0)
    assert rows[0]["dopants"] == [["Ni", "Cu", 0.05, 2]] and rows[0]["concentrations"] == {"Ni": 0.0625}
    assert rows[1]["seed"] == 2**62 + 1  # 63-bit seeds survive
    np.testing.assert_array_equal(unpack_arrays(rows[1]["arrays"])["doped"], _unit(2))
    assert store.counts()["samples"] == {"ok": 2, "failed": 1}
    assert store.failures() == [("sample", "imaginary_modes", 1)]
    assert store.done_samples(hid) == {0: "ok", 1: "ok", 2: "failed"}
    rep = store.check()
    assert rep.ok, rep.problems


def test_json_columns_are_queryable_with_sqlite(store):
    hid = store.add_host(_host())
    store.add_samples([_sample(hid, 0), _sample(hid, 1, concentrations={"Pd": 0.1})])
    n = store.conn.execute("SELECT COUNT(*) FROM samples, json_each(samples.concentrations) "
                           "WHERE json_each.key = 'Ni'").fetchone()[0]
    assert n == 1


def test_a_second_writer_is_refused_but_readers_are_not(store):
    with pytest.raises(DefectnetError, match="another process"):
        Store(store.path, "w")
    with Store(store.path, "r") as reader:
        assert reader.get_meta("schema_version") == SCHEMA_VERSION
        with pytest.raises(DefectnetError, match="read-only"):
            reader.add_samples([_sample(1, 0)])


def test_other_schema_versions_and_files_are_refused(tmp_path, store):
    store.set_meta(schema_version=SCHEMA_VERSION + 1)
    store.close()
    with pytest.raises(DefectnetError, match="schema version"):
        Store(store.path, "r")
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all" * 100)
    with pytest.raises(DefectnetError, match="not a defectnet dataset store"):
        Store(junk, "r")
    with pytest.raises(DefectnetError, match="no such dataset store"):
        Store(tmp_path / "missing.sqlite", "r")


def test_integrity_check_finds_corruption(store):
    hid = store.add_host(_host())
    store.add_samples([_sample(hid, 0), _sample(hid, 1)])
    assert store.check().ok
    conn = store.conn
    conn.execute("UPDATE samples SET arrays = ? WHERE sample_index = 0", (b"garbage",))
    conn.execute("UPDATE samples SET id = 12345 WHERE sample_index = 1")
    conn.execute("INSERT INTO samples (id, host_id, host, sample_index, status) VALUES (7, ?, 'Cu', 5, 'failed')",
                 (hid,))
    rep = store.check()
    text = "\n".join(rep.problems)
    assert not rep.ok
    assert "do not decode" in text and "sample ids" in text and "no reason" in text


def test_integrity_check_finds_bad_spectra_and_orphans(store):
    hid = store.add_host(_host())
    bad = _sample(hid, 0)
    bad["arrays"] = pack_arrays(doped=2 * _unit(0), doped_gpdos=_unit(1))  # area 2
    store.add_samples([bad])
    fid = store.add_host(_host("Au", status="failed", reason="imaginary_modes"))
    store.conn.execute("INSERT INTO samples (id, host_id, host, sample_index, status, arrays) VALUES (?, ?, 'Au', 0, "
                       "'ok', ?)", (sample_id("Au", 0), fid, pack_arrays(doped=_unit(0), doped_gpdos=_unit(0))))
    text = "\n".join(store.check().problems)
    assert "area" in text and "missing or failed host" in text


def test_labels_must_follow_from_the_placement_stored(store):
    """A concentration is the dopant's atoms / the supercell's: an edited label fails the check, naming the sample."""
    hid = store.add_host(_host())
    store.add_samples([_sample(hid, i, supercell_atoms=32, total_concentration=0.0625) for i in range(3)])
    assert store.check().ok
    store.conn.execute("UPDATE samples SET concentrations = json_set(concentrations, '$.Ni', 0.07) WHERE sample_index = 1")
    store.conn.execute("UPDATE samples SET total_concentration = 0.1 WHERE sample_index = 2")
    problems = store.check(deep=False).problems
    assert problems == ["sample Cu#1: concentration of Ni is 0.07, but 2 atoms of Ni were placed in its supercell of 32: "
                        "expected 0.0625",
                        "sample Cu#2: total_concentration is 0.1, the concentrations add up to 0.0625"]


def test_a_dopants_partial_pdos_holds_its_share_of_the_modes(store):
    """With the sample's arrays (deep), a concentration must also be the area of its dopant's partial PDoS."""
    hid = store.add_host(_host())
    sample = _sample(hid, 0, supercell_atoms=32)
    doped = _unit(1)
    partials = np.array([doped * (30 / 32), doped * (2 / 32)], np.float32)  # Cu 30 atoms, Ni 2: areas 30/32, 2/32
    sample["arrays"] = pack_arrays(doped=doped, doped_gpdos=_unit(2), dopant_indices=np.array([3, 17]),
                                   partial_elements=np.array(["Cu", "Ni"]), partials=partials)
    store.add_samples([sample])
    assert store.check().ok
    partials[1] *= 1.5  # a Ni partial of 3 atoms' modes: the label of 2 is contradicted by the modes
    store.conn.execute("UPDATE samples SET arrays = ?", (pack_arrays(
        doped=doped, doped_gpdos=_unit(2), dopant_indices=np.array([3, 17]), partial_elements=np.array(["Cu", "Ni"]),
        partials=partials),))
    assert store.check(deep=False).ok
    (problem,) = store.check().problems
    assert problem.startswith("sample Cu#0: concentration of Ni is 0.0625, but its partial PDoS holds 0.09375")


def test_unknown_columns_are_refused(store):
    with pytest.raises(DefectnetError, match="unknown hosts columns"):
        store.add_host(_host(colour="red"))


def test_delete_failed_makes_failures_retryable(store):
    hid = store.add_host(_host())
    store.add_samples([_sample(hid, 0), _sample(hid, 1, "failed", reason="timeout"),
                       _sample(hid, 2, "failed", reason="imaginary_modes")])
    assert store.delete_failed(["timeout"])["samples"] == 1
    assert store.done_samples(hid) == {0: "ok", 2: "failed"}
    # a failed host is replaced by its retry
    store.add_host(_host("Au", status="failed", reason="timeout"))
    new = store.add_host(_host("Au"))
    assert store.host("Au")["status"] == "ok" and store.host_id("Au") == new


def test_runs_and_summary(store):
    hid = store.add_host(_host(timings={"total_s": 2.0, "host_relax_s": 1.0}))
    store.add_samples([_sample(hid, 0), _sample(hid, 1, "failed")])
    run = store.start_run(workers="local:2", code_version="0.1.0", config={"seed": 0})
    store.finish_run(run, "finished", {"wall_s": 3.0})
    run2 = store.start_run(workers="local:2", code_version="0.1.0", config={"seed": 0})
    assert store.runs()[-1]["id"] == run2
    s = summarize(store)
    assert s["counts"]["samples"] == {"ok": 1, "failed": 1}
    assert s["failures"] == [{"stage": "sample", "reason": "imaginary_modes", "count": 1}]
    assert s["hosts"][0]["ok"] == 1 and s["hosts"][0]["failed"] == 1
    assert s["timings_mean_s"]["hosts"]["host_relax_s"] == 1.0
    assert [r["status"] for r in s["runs"]] == ["finished", "running"]
    json.dumps(s)


def test_committed_rows_survive_a_writer_that_never_closes(tmp_path):
    """A committed transaction is durable even if the writer is never closed (WAL replay on open)."""
    path = tmp_path / "w.sqlite"
    s = Store(path, "w")
    hid = s.add_host(_host())
    s.add_samples([_sample(hid, 0)])
    s.conn.execute("BEGIN IMMEDIATE")  # an open, uncommitted transaction at the moment of the 'kill'
    s.conn.execute("DELETE FROM samples")
    # no commit, no close: read through a fresh connection, as a restarted process would
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1
    conn.close()
    s.conn.execute("ROLLBACK")
    s.close()


def test_wall_time_counts_a_killed_run_up_to_its_last_row(store):
    store.start_run(workers="local:1", code_version="0.1.0", config={})
    t0 = store.runs()[-1]["started"]
    hid = store.add_host(_host(created=t0 + 100.0))
    store.add_samples([_sample(hid, 0, created=t0 + 250.0)])  # then SIGKILL: never finished
    run2 = store.start_run(workers="local:1", code_version="0.1.0", config={})
    store.finish_run(run2, "finished", {})
    store.conn.execute("UPDATE runs SET started = ?, finished = ? WHERE id = ?", (t0 + 1000.0, t0 + 1060.0, run2))
    assert summarize(store)["wall_s_total"] == pytest.approx(250.0 + 60.0)
