"""Export of a generation store (``defectnet.data.export``) on EMT hosts: the training-file
contract (``defectnet.data.training_file``), the compact layout, chunking without overlap
(``--skip-in``, ``hosts.exclude_from``), joining chunks by host, and refusal of broken files."""

import json
import shutil
import sqlite3
from dataclasses import replace

import h5py
import numpy as np
import pytest
from ase.build import bulk

from defectnet.cli import main
from defectnet.data.config import GenerateConfig
from defectnet.data.export import export
from defectnet.data.training_file import TRAINING_SCHEMA_VERSION, read_training_file
from defectnet.data.generate import run_generate
from defectnet.data.store import Store, sample_id
from defectnet.elements import DOPANTS
from defectnet.errors import DefectnetError


def test_export_contract(emt_store, tmp_path):
    out, cfg, _ = emt_store
    h5 = export(out, tmp_path / "d.h5")
    npz = export(out, tmp_path / "d.npz")
    assert h5["n_samples"] == npz["n_samples"] == 18
    d = read_training_file(tmp_path / "d.h5")
    z = read_training_file(tmp_path / "d.npz")
    n, B = 18, cfg.grid.n_bins
    assert d["schema_version"] == TRAINING_SCHEMA_VERSION
    assert d["vocabulary"] == list(DOPANTS) and len(d["vocabulary"]) == 51
    assert d["host_elements"][0] == "H" and d["host_elements"][-1] == "Pu" and len(d["host_elements"]) == 94
    assert d["grid"] == cfg.grid.to_dict() and d["grid_id"] == cfg.grid.grid_id
    assert d["potential"] == "emt" and d["tier"] == "patch" and d["broadening"] == {"fwhm_mev": 1.0}
    assert d["config"]["seed"] == 7 and d["defectnet_version"] and d["created"]
    for key, shape, dtype in [("pristine", (n, B), np.float32), ("doped", (n, B), np.float32),
                              ("pristine_gpdos", (n, B), np.float32), ("doped_gpdos", (n, B), np.float32),
                              ("host_pdos", (n, B), np.float32), ("targets", (n, 51), np.float32),
                              ("candidates", (n, 51), np.bool_), ("composition", (n, 94), np.float32),
                              ("host_id", (n,), np.int32), ("n_dopants", (n,), np.int8),
                              ("sample_id", (n,), np.int64), ("supercell_atoms", (n,), np.int16)]:
        assert d[key].shape == shape and d[key].dtype == dtype, key
        np.testing.assert_array_equal(d[key], z[key])
    assert d["host_names"] == z["host_names"] == ["Au", "Cu", "Cu-hcp"]
    widths = cfg.grid.widths
    for key in ("pristine", "doped", "pristine_gpdos", "doped_gpdos", "host_pdos"):
        np.testing.assert_allclose(d[key] @ widths, 1.0, atol=1e-5)
    assert np.all(d["candidates"][d["targets"] > 0])  # every true dopant is a candidate
    assert np.all((d["targets"] > 0).sum(axis=1) == d["n_dopants"])
    cu = d["host_elements"].index("Cu")
    np.testing.assert_array_equal(d["composition"][:, cu], np.array(d["host_names"])[d["host_id"]] != "Au")
    np.testing.assert_array_equal(d["targets"] * 32, np.round(d["targets"] * 32))  # whole atoms
    with Store(out) as s:
        ids = {sample_id(r["host"], r["sample_index"]) for r in s.samples()}
    assert set(d["sample_id"].tolist()) == ids


def test_compact_export_expands_to_the_contract_and_keeps_small_signatures(emt_store, tmp_path):
    from defectnet.model.dataset import load_training_file as load_for_model

    out, cfg, _ = emt_store
    export(out, tmp_path / "full.h5")
    res = export(out, tmp_path / "small.h5", compact=True)
    assert res["format"] == "h5 (compact)" and res["bytes"] < (tmp_path / "full.h5").stat().st_size
    full, small = read_training_file(tmp_path / "full.h5"), read_training_file(tmp_path / "small.h5")
    assert json.loads(full["failed_hosts"]) == {"Cu-bcc": "imaginary_modes", "Si": "potential_error"}
    for key in ("pristine", "pristine_gpdos", "host_pdos", "composition", "targets", "candidates", "host_id",
                "sample_id", "n_dopants", "supercell_atoms"):
        np.testing.assert_array_equal(small[key], full[key], err_msg=key)
    for key, base in (("doped", "pristine"), ("doped_gpdos", "pristine_gpdos")):
        delta, delta16 = full[key] - full[base], small[key] - small[base]
        # float16 of the signature itself: relative error ~2^-11 of |Δ| (+ subnormal floor), not of g
        assert np.all(np.abs(delta16 - delta) <= 2 ** -10 * np.abs(delta) + 1e-7), key
        # the whole signature survives, even if it were 100× weaker (0.2 % doping)
        assert np.abs((delta16 - delta) * cfg.grid.widths).sum() < 1e-3 * np.abs(delta * cfg.grid.widths).sum()
    m = load_for_model(tmp_path / "small.h5")  # the model's reader expands it too
    np.testing.assert_array_equal(m.doped, small["doped"])
    assert m.attrs["tier"] == "patch" and "layout" not in m.attrs
    with pytest.raises(DefectnetError, match="HDF5 only"):
        export(out, tmp_path / "small.npz", compact=True)


def test_export_skips_samples_an_earlier_chunk_holds(emt_store, tmp_path, capsys):
    out, _, _ = emt_store
    earlier = tmp_path / "earlier.sqlite"
    shutil.copy(out, earlier)  # the store as it was at the first export: Cu had only 2 samples
    with sqlite3.connect(earlier) as c:
        c.execute("DELETE FROM samples WHERE host = 'Cu' AND sample_index >= 2")
    chunks = tmp_path / "chunks"
    first = export(earlier, chunks / "chunk-001.h5", compact=True)
    assert first["n_skipped"] == 0
    assert main(["dataset", "export", str(out), "--out", str(tmp_path / "chunk-002.h5"), "--compact",
                 "--skip-in", str(chunks)]) == 0
    assert f"{first['n_samples']} already in" in capsys.readouterr().out
    a, b = read_training_file(chunks / "chunk-001.h5"), read_training_file(tmp_path / "chunk-002.h5")
    key = lambda d: {(d["host_names"][h], s) for h, s in zip(d["host_id"], d["sample_id"].tolist())}
    assert not key(a) & key(b)  # no sample twice
    assert key(a) | key(b) == key(read_training_file(export(out, tmp_path / "all.h5")["path"]))  # none lost
    assert {b["host_names"][h] for h in b["host_id"]} == {"Cu"} and len(b["sample_id"]) == 18 - first["n_samples"]
    from defectnet.data.training_file import training_file_hosts

    assert "Cu" not in training_file_hosts(chunks / "chunk-001.h5")[0]  # Cu was exported mid-run
    assert "Cu" in training_file_hosts(tmp_path / "chunk-002.h5")[0]
    with h5py.File(tmp_path / "chunk-002.h5") as f:
        assert "Cu" in json.loads(f.attrs["complete_hosts"])
    with pytest.raises(DefectnetError, match="no successful samples"):  # nothing new: nothing written
        export(out, tmp_path / "none.h5", skip_in=[chunks, tmp_path / "chunk-002.h5"])


def test_a_host_done_in_a_chunk_counts_even_with_all_its_samples_in_earlier_chunks(tmp_path):
    """--skip-in can leave none of a finished host's samples in the new chunk; it is still done."""
    from defectnet.data.training_file import training_file_hosts

    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["host_names"], f["host_id"] = np.array([b"A", b"B"]), np.array([1, 1])  # only B's samples are new
        f.attrs["incomplete_hosts"], f.attrs["complete_hosts"], f.attrs["failed_hosts"] = "[]", '["A", "B"]', "{}"
    assert training_file_hosts(tmp_path / "c.h5") == ({"A", "B"}, set())


def test_training_files_join_by_host_without_duplicates(emt, emt_store, tmp_path):
    from defectnet.model.dataset import _generation_seed, concat_training_data
    from defectnet.model.dataset import load_training_file as load_for_model

    out, _, _ = emt_store
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    export(out, chunks / "a.h5", compact=True)
    whole = load_for_model(chunks / "a.h5")
    au, rest = np.flatnonzero(whole.host_names[whole.host_id] == "Au"), np.flatnonzero(whole.host_names[whole.host_id] != "Au")
    both = concat_training_data([whole.subset(rest), whole.subset(au), whole.subset(au[:2])])  # Au twice: kept once
    assert len(both) == len(whole) and sorted(both.host_names) == sorted(whole.host_names)
    key = lambda d: sorted(zip(d.host_names[d.host_id], d.sample_id, d.doped.sum(axis=1).round(6)))
    assert key(both) == key(whole)
    export(out, chunks / "b.npz")  # a directory is read whole; the same samples again are dropped
    assert len(load_for_model(chunks)) == len(load_for_model(f"{chunks / 'a.h5'},{chunks / 'b.npz'}")) == len(whole)
    assert _generation_seed(whole) == emt.base["seed"]
    again = whole.subset(au)
    again.attrs["config"] = {**again.attrs["config"], "seed": emt.base["seed"] + 1}
    assert len(concat_training_data([whole, again])) == len(whole) + len(au)  # another seed: new samples
    other = whole.subset(au)
    other.attrs["tier"] = "mass"
    with pytest.raises(DefectnetError, match="tier 'mass' differs"):
        concat_training_data([whole, other])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DefectnetError, match="holds no .h5"):
        load_for_model(tmp_path / "empty")


def test_exclude_from_skips_hosts_done_or_failed_in_earlier_chunks(emt, emt_store, tmp_path):
    from defectnet.data.plan import resolve_hosts

    out, cfg, _ = emt_store
    export(out, tmp_path / "chunks" / "001.h5", compact=True)
    hosts = dict(cfg.to_dict()["hosts"])
    hosts["structures"]["Ag"] = {"cell": bulk("Ag", "fcc", a=4.09).cell.tolist(), "species": ["Ag"],
                                 "positions": [[0, 0, 0]]}
    new = GenerateConfig.from_dict({**emt.base, "hosts": {**hosts, "exclude_from": [str(tmp_path / "chunks"),
                                                                                 str(tmp_path / "not-yet")]}})
    assert [h.name for h in resolve_hosts(new.hosts)] == ["Ag"]  # Cu, Au, Cu-hcp done; Cu-bcc, Si failed
    npz = GenerateConfig.from_dict({**emt.base, "hosts": {**hosts, "exclude_from": [str(tmp_path / "npz")]}})
    export(out, tmp_path / "npz" / "001.npz")  # a plain NPZ chunk counts the same
    assert [h.name for h in resolve_hosts(npz.hosts)] == ["Ag"]
    partial = tmp_path / "partial.sqlite"  # a chunk exported mid-run: Au has 2 of its 6 samples
    shutil.copy(out, partial)
    with sqlite3.connect(partial) as con:
        con.execute("DELETE FROM samples WHERE host = 'Au' AND sample_index >= 2")
    export(partial, tmp_path / "mid" / "001.h5", compact=True)
    mid = GenerateConfig.from_dict({**emt.base, "hosts": {**hosts, "exclude_from": [str(tmp_path / "mid")]}})
    assert [h.name for h in resolve_hosts(mid.hosts)] == ["Au", "Ag"]  # Au is not done: a later chunk redoes it
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DefectnetError, match="junk.h5.*not a readable training file"):
        resolve_hosts(GenerateConfig.from_dict({**emt.base, "hosts": {**hosts, "exclude_from": [str(tmp_path / "junk.h5")]}}).hosts)


def test_a_resumed_store_keeps_its_exported_hosts_and_tops_them_up(emt, emt_store, tmp_path):
    """exclude_from skips done hosts in a new store; the store that made the chunk goes on with them."""
    from defectnet.data.plan import resolve_hosts

    out = tmp_path / "s.sqlite"
    shutil.copy(emt_store[0], out)
    chunks = tmp_path / "chunks"
    export(out, chunks / "001.h5", compact=True)
    cfg = emt_store[1]
    more = replace(cfg, samples_per_host=cfg.samples_per_host + 2, hosts=replace(cfg.hosts, exclude_from=(str(chunks),)))
    with pytest.raises(DefectnetError, match="selection is empty"):
        resolve_hosts(more.hosts)  # a new store: every host is done or failed in the chunk
    assert [h.name for h in resolve_hosts(more.hosts, keep={"Cu"})] == ["Cu"]
    with Store(out) as s:
        n_patches = len(s.patches(s.host_id("Cu")))
        before = {r["sample_index"] for r in s.samples(None) if r["host"] == "Cu"}
    run_generate(more, out, workers=1, processes=False, progress=False)
    with Store(out) as s:
        after = {r["sample_index"]: r["status"] for r in s.samples(None) if r["host"] == "Cu"}
        assert len(s.patches(s.host_id("Cu"))) == n_patches  # stored patches reused
    assert set(after) == before | {cfg.samples_per_host, cfg.samples_per_host + 1}
    new_ok = sum(after[i] == "ok" for i in set(after) - before)
    if new_ok:  # --skip-in leaves the first chunk's samples out of the next one
        res = export(out, chunks / "002.h5", compact=True, skip_in=[chunks / "001.h5"])
        assert res["n_samples"] >= new_ok and res["n_skipped"] > 0


def test_training_file_reader_refuses_broken_files(emt_store, tmp_path):
    import h5py

    out, _, _ = emt_store
    path = tmp_path / "d.h5"
    export(out, path)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DefectnetError, match="schema_version 99"):
        read_training_file(path)
    export(out, path)
    with h5py.File(path, "a") as f:
        del f["targets"]
        f["targets"] = np.zeros((18, 50), np.float32)
    with pytest.raises(DefectnetError, match="targets"):
        read_training_file(path)


@pytest.mark.parametrize("compact", [False, True])
def test_dataset_check_of_a_training_file_finds_an_edited_concentration(emt_store, tmp_path, capsys, compact):
    """A training file keeps no positions, but each concentration is whole atoms of its supercell: an edit by
    less than an atom fails ``dataset check``, naming the sample."""
    out, _, _ = emt_store
    path = tmp_path / "train.h5"
    export(out, path, compact=compact)
    assert main(["dataset", "check", str(path)]) == 0
    d = read_training_file(path)
    i = int(np.flatnonzero(d["n_dopants"] == 1)[0])
    j = int(np.flatnonzero(d["targets"][i])[0])
    with h5py.File(path, "r+") as f:
        t = f["targets"][i]
        t[j] += 0.4 / d["supercell_atoms"][i]  # 0.4 of an atom more
        f["targets"][i] = t
    capsys.readouterr()
    assert main(["dataset", "check", str(path)]) == 1
    text = capsys.readouterr().out
    name = d["host_names"][int(d["host_id"][i])]
    assert f"sample {name} (id {int(d['sample_id'][i])}): concentration of {DOPANTS[j]} is" in text, text
    assert f"atoms of its supercell of {int(d['supercell_atoms'][i])}; expected a whole number of atoms" in text


def test_the_model_reads_a_store_through_the_one_exporter(emt_store, tmp_path):
    from defectnet.model.dataset import load_training_file

    out, _, _ = emt_store
    via_store = load_training_file(out, export_dir=tmp_path / "x")
    via_file = load_training_file(export(out, tmp_path / "d.h5")["path"])
    assert (tmp_path / "x" / (out.stem + ".h5")).is_file() and len(via_store) == len(via_file) == 18
    assert np.array_equal(via_store.doped, via_file.doped)


def _strip_sites(path):
    """Rewrite a training file as one exported before ``dopant_site`` was recorded."""
    if path.suffix == ".npz":
        with np.load(path) as z:
            kept = {k: z[k] for k in z.files if k != "dopant_site"}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **kept)
    else:
        with h5py.File(path, "r+") as f:
            del f["dopant_site"]


def test_export_records_the_site_of_each_dopant(emt_store, tmp_path):
    """The site each dopant was placed on survives h5, npz and the compact layout, as the store has it;
    one Cu sample's dopant is moved to the Au site in a copy of the store, so the sites are not all alike."""
    from defectnet.data.training_file import training_file_sites

    src = tmp_path / "s.sqlite"
    shutil.copy(emt_store[0], src)
    with Store(src, "w") as s:
        row = next(r for r in s.samples() if r["host"] == "Cu")
        moved = [[el, "Au", *rest] for el, _, *rest in row["dopants"][:1]] + row["dopants"][1:]
        s.conn.execute("UPDATE samples SET dopants = ? WHERE id = ?", (json.dumps(moved), row["id"]))
        want = {r["id"]: {el: site for el, site, *_ in r["dopants"]} for r in s.samples()}
        hosts = {r["id"]: r["host"] for r in s.samples()}
    assert want[row["id"]][moved[0][0]] == "Au"
    for path, compact in ((tmp_path / "d.h5", False), (tmp_path / "d.npz", False), (tmp_path / "c.h5", True)):
        export(src, path, compact=compact)
        d = read_training_file(path)
        site = d["dopant_site"]
        assert site.dtype == np.int8 and site.shape == (18, len(DOPANTS)), path
        got = {sid: {DOPANTS[j]: d["host_elements"][site[i, j]] for j in np.flatnonzero(site[i] >= 0)}
               for i, sid in enumerate(d["sample_id"].tolist())}
        assert got == want, path
        assert training_file_sites(path) == {(hosts[sid], sid, 7): sites for sid, sites in want.items()}, path


@pytest.mark.parametrize("name,compact", [("d.h5", False), ("d.npz", False), ("c.h5", True)])
def test_a_training_file_without_sites_still_reads(emt_store, tmp_path, name, compact):
    from defectnet.data.training_file import training_file_sites
    from defectnet.model.dataset import load_training_file as load_for_model

    out, _, _ = emt_store
    path = tmp_path / name
    export(out, path, compact=compact)
    full = read_training_file(path)
    _strip_sites(path)
    old = read_training_file(path)
    assert "dopant_site" in full and "dopant_site" not in old
    np.testing.assert_array_equal(old["targets"], full["targets"])
    assert training_file_sites(path) is None
    assert len(load_for_model(path)) == 18


def test_a_site_recorded_for_an_element_that_is_not_a_dopant_is_refused(emt_store, tmp_path):
    out, _, _ = emt_store
    path = tmp_path / "d.h5"
    export(out, path)
    with h5py.File(path, "r+") as f:
        site = f["dopant_site"][0]
        site[np.flatnonzero(site < 0)[0]] = 0  # H, for an element with no concentration
        f["dopant_site"][0] = site
    with pytest.raises(DefectnetError, match="dopant_site records a site where targets has no dopant"):
        read_training_file(path)


def test_generate_goes_on_from_committed_exports_in_an_empty_store(emt_store, tmp_path):
    """A store lost with its machine: generate --skip-in computes only what the committed chunks lack."""
    from defectnet.data.training_file import training_file_hosts

    out, cfg, _ = emt_store
    earlier = tmp_path / "earlier.sqlite"
    shutil.copy(out, earlier)
    with sqlite3.connect(earlier) as c:  # the first session had Cu's samples 0-1 and had failed on 2
        c.execute("DELETE FROM samples WHERE host = 'Cu' AND sample_index >= 3")
        c.execute("UPDATE samples SET status = 'failed', reason = 'imaginary_modes' WHERE host = 'Cu' AND sample_index = 2")
    export(earlier, tmp_path / "chunks" / "001.h5", compact=True)
    with h5py.File(tmp_path / "chunks" / "001.h5") as f:
        assert json.loads(f.attrs["failed_samples"])["Cu"] == {str(sample_id("Cu", 2)): "imaginary_modes"}
    fresh = tmp_path / "fresh.sqlite"
    summary = run_generate(cfg, fresh, workers=1, processes=False, progress=False, skip_in=[tmp_path / "chunks"])
    with Store(fresh) as s:
        computed = {(r["host"], r["sample_index"]) for r in s.samples(None)}
        hosts = {h["name"] for h in s.hosts()}
    assert computed == {("Cu", i) for i in range(3, cfg.samples_per_host)}
    assert hosts == {"Cu"}  # Au and Cu-hcp were whole in the chunk; Cu-bcc and Si failed there
    with Store(out) as s:  # what is skipped is what the first store had finished or failed, nothing else
        done_before = sum(1 for r in s.samples(None) if r["host"] in ("Au", "Cu-hcp"))
    assert summary.skipped_samples == done_before + 3
    # the two stores' exports together are the whole dataset, no sample twice, and Cu is done
    export(fresh, tmp_path / "002.h5")
    assert "Cu" not in training_file_hosts(tmp_path / "chunks" / "001.h5")[0]  # exported mid-run
    assert "Cu" in training_file_hosts(tmp_path / "002.h5")[0]  # the second half completes it
    both, first = read_training_file(tmp_path / "002.h5"), read_training_file(tmp_path / "chunks" / "001.h5")
    ids = lambda d: [(d["host_names"][h], s) for h, s in zip(d["host_id"], d["sample_id"].tolist())]
    whole = read_training_file(export(out, tmp_path / "all.h5")["path"])
    assert not set(ids(both)) & set(ids(first))
    assert set(ids(both)) | set(ids(first)) | {("Cu", sample_id("Cu", 2))} >= set(ids(whole))
    # --retry-failed computes the failures the files record, for the reasons it names
    again = tmp_path / "again.sqlite"
    run_generate(cfg, again, workers=1, processes=False, progress=False, skip_in=[tmp_path / "chunks"],
                 retry_failed=["imaginary_modes"])
    with Store(again) as s:
        assert ("Cu", 2) in {(r["host"], r["sample_index"]) for r in s.samples(None)}
    # a file of another config names other samples under the same ids: named, it is refused and
    # nothing computed; met in a directory among this config's chunks, it is passed over
    other = replace(cfg, seed=cfg.seed + 1)
    with pytest.raises(DefectnetError, match="another config"):
        run_generate(other, tmp_path / "other.sqlite", workers=1, processes=False, progress=False,
                     skip_in=[tmp_path / "chunks" / "001.h5"])
    if (tmp_path / "other.sqlite").exists():
        with Store(tmp_path / "other.sqlite") as s:
            assert not list(s.samples(None))
    run_generate(other, tmp_path / "other.sqlite", workers=1, processes=False, progress=False, skip_in=[tmp_path / "chunks"])
    with Store(tmp_path / "other.sqlite") as s:  # nothing of the first config's chunk was skipped
        assert len([r for r in s.samples(None) if r["host"] == "Cu"]) == cfg.samples_per_host
