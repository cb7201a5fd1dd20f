"""Signature bases built from a generation store's patches (EMT store of conftest)."""

import json

import numpy as np
import pytest

from defectnet.cli import main
from defectnet.data.bases import pool_sites, store_bases
from defectnet.data.store import Store
from defectnet.errors import DefectnetError
from defectnet.unmix import BasisConfig, SignatureBasis, signature_basis, unmix_arrays

CONC = (2 / 32, 6 / 32)  # the EMT store's supercells have 32 atoms


@pytest.fixture(scope="module")
def bases(emt_store, tmp_path_factory):
    out, _, _ = emt_store
    import defectnet.phonons.patches as patches

    def no_patch(*a, **k):
        raise AssertionError("a patch was computed: the store's patches must be reused")

    d = tmp_path_factory.mktemp("bases")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(patches, "cheapest_columns", no_patch)
        return d, store_bases(out, d, concentrations=CONC, progress=False)


def test_every_host_with_samples_gets_a_basis_of_its_pool_without_a_force_call(emt_store, bases):
    out, _, _ = emt_store
    d, res = bases
    assert sorted(res.written) == ["Au", "Cu", "Cu-hcp"] and not res.existing and not res.skipped
    assert not res.notes  # every element of a pool sits on one site
    with Store(out) as s:
        pools = pool_sites(s)
        for host in res.written:
            b = SignatureBasis.load(d / f"{host}.npz")
            assert b.host == host and set(b.elements) == set(pools[host]) and not b.failed
            placed = {el for r in s.samples() if r["host"] == host for el, *_ in r["dopants"]}
            assert set(b.elements) == placed
            assert b.config["source"]["identity_hash"] == s.get_meta("identity_hash")
            with np.load(d / f"{host}.npz") as z:  # committed as float32, read back as float64
                assert z["curves_gpdos"].dtype == np.float32 and b.curves["gpdos"].dtype == np.float64
    assert not list(d.glob(".*.cells.npz"))  # checkpoints are removed once a basis is saved


def test_a_store_basis_is_the_basis_simulated_from_scratch(emt_store, bases):
    """The same settings from scratch (patches recomputed with EMT) give the same signatures."""
    out, cfg, _ = emt_store
    d, _ = bases
    from defectnet.phonons.host import compute_pristine

    stored = SignatureBasis.load(d / "Cu.npz")
    sim = cfg.simulation_config()
    cu = compute_pristine(stored_atoms(out, cfg), sim.host, grid=sim.grid, progress=False, **sim.broadening())
    specs = [f"{el}@Cu" for el in stored.elements]
    fresh = signature_basis(cu.atoms, specs, BasisConfig(concentrations=CONC, simulation=sim), pristine_host=cu,
                            progress=False)
    assert fresh.elements == stored.elements
    np.testing.assert_allclose(fresh.realised, stored.realised)
    scale = np.abs(fresh.curves["gpdos"]).max()
    assert np.abs(fresh.curves["gpdos"] - stored.curves["gpdos"]).max() < 1e-3 * scale


def stored_atoms(out, cfg):
    from defectnet.data.blobs import unpack_pristine

    with Store(out) as s:
        host, _ = unpack_pristine(s.host("Cu")["pristine"], cfg.host)
    return host.atoms


def test_unmixing_the_stores_samples_against_its_bases_beats_knowing_nothing(emt_store, bases):
    out, _, _ = emt_store
    d, res = bases
    vocab = sorted({el for h in res.written for el in SignatureBasis.load(d / f"{h}.npz").elements})
    err, zero = [], []
    with Store(out) as s:
        from defectnet.data.store import unpack_arrays

        for host in res.written:
            b = SignatureBasis.load(d / f"{host}.npz")
            rows = [r for r in s.samples(blobs=True) if r["host"] == host]
            P = np.repeat(b.pristine["gpdos"][None], len(rows), 0)
            D = np.stack([unpack_arrays(r["arrays"])["doped_gpdos"] for r in rows])
            cand = np.zeros((len(rows), len(vocab)), bool)
            true = np.zeros((len(rows), len(vocab)))
            for i, r in enumerate(rows):
                for el in b.elements:
                    cand[i, vocab.index(el)] = True
                for el, c in r["concentrations"].items():
                    true[i, vocab.index(el)] = c
            pred = unmix_arrays(P, D, cand, vocab, b, kind="gpdos")["concentration"]
            err.append(np.abs(pred - true)[cand]), zero.append(true[cand])
    mae, mae0 = np.concatenate(err).mean(), np.concatenate(zero).mean()
    assert mae < 0.5 * mae0, (mae, mae0)


def test_a_rerun_writes_nothing_and_bad_input_is_one_line(emt_store, bases, tmp_path, capsys):
    out, _, _ = emt_store
    d, _ = bases
    again = store_bases(out, d, concentrations=CONC, progress=False)
    assert sorted(again.existing) == ["Au", "Cu", "Cu-hcp"] and not again.written
    with pytest.raises(DefectnetError, match="no successful samples of Cu-bcc"):
        store_bases(out, tmp_path, hosts=["Cu-bcc"], progress=False)
    assert main(["dataset", "bases", str(out), "--out", str(tmp_path / "b"), "--hosts", "Au",
                 "--concentrations", ",".join(map(str, CONC)), "--quiet"]) == 0
    assert "1 bases written" in capsys.readouterr().out and (tmp_path / "b" / "Au.npz").exists()
    # the default 1 % is less than one atom of a 32-atom cell: the host is skipped, with why
    assert main(["dataset", "bases", str(out), "--out", str(tmp_path / "c"), "--hosts", "Au", "--quiet"]) == 0
    assert "less than one atom in a 32-atom supercell" in capsys.readouterr().out
    assert main(["dataset", "bases", str(out), "--out", str(tmp_path / "c"), "--concentrations", "x"]) != 0
    assert "--concentrations" in capsys.readouterr().err


def test_a_basis_that_lacks_part_of_its_pool_is_built_again(emt_store, bases, tmp_path):
    """A basis made from a store stopped mid-run lacks the dopants drawn later: a rerun on the
    finished store rebuilds it instead of leaving it as 'already there'."""
    out, _, _ = emt_store
    d, _ = bases
    whole = SignatureBasis.load(d / "Cu.npz")
    keep = [0]
    part = SignatureBasis(whole.host, whole.elements[:1], whole.grid, whole.pristine,
                          {k: v[keep] for k, v in whole.signatures.items()},
                          {k: v[keep] for k, v in whole.curves.items()}, whole.realised[keep], config=whole.config)
    (tmp_path / "b").mkdir()
    part.save(tmp_path / "b" / "Cu.npz")
    res = store_bases(out, tmp_path / "b", concentrations=CONC, hosts=["Cu"], progress=False)
    assert res.written == ("Cu",) and any("lacks" in n and n.startswith("Cu:") for n in res.notes)
    assert set(SignatureBasis.load(tmp_path / "b" / "Cu.npz").elements) == set(whole.elements)
    assert store_bases(out, tmp_path / "b", concentrations=CONC, hosts=["Cu"], progress=False).existing == ("Cu",)


def test_a_host_still_generating_is_skipped(emt_store, tmp_path):
    import shutil

    out, _, _ = emt_store
    part = shutil.copy(out, tmp_path / "part.sqlite")
    with Store(part, "w") as s:
        s.conn.execute("DELETE FROM samples WHERE host = 'Au' AND sample_index = 0")
    res = store_bases(part, tmp_path / "b", concentrations=CONC, hosts=["Au"], progress=False)
    assert not res.written and res.skipped["Au"].startswith("incomplete")


def test_a_store_synthesizer_reproduces_the_stored_samples(emt, emt_store):
    from ase.build import bulk

    from defectnet.data.bases import store_synthesizer
    from defectnet.data.plan import HostInput, plan_host
    from defectnet.data.store import unpack_arrays
    from defectnet.recommend import DopantRecommender

    out, cfg, _ = emt_store
    syn = store_synthesizer(out, "Cu")
    with Store(out) as s:
        rows = [r for r in s.samples(blobs=True) if r["host"] == "Cu"][:3]
    plan = plan_host(HostInput("Cu", bulk("Cu", "fcc", a=3.6), "Cu"), cfg,
                     DopantRecommender(vocabulary=emt.dopants, n_max=20).fit(), [r["sample_index"] for r in rows])
    for r in rows:
        job = plan.jobs[r["sample_index"]]
        delta = syn.signature({el: frac for el, _, frac in job.dopants}, seed=job.placement_seed)
        a = unpack_arrays(r["arrays"])
        np.testing.assert_allclose(syn.pristine["gpdos"] + delta, a["doped_gpdos"], rtol=1e-5, atol=1e-6)


def test_refine_moves_a_mix_the_basis_reads_low_towards_the_truth(emt_store, bases):
    """Ag 9/32 + Ni 3/32 in 32-atom Cu (EMT): unmixing reads Ag at 0.19; the forward model corrects it."""
    from defectnet.data.bases import store_synthesizer
    from defectnet.synthesis import refine
    from defectnet.unmix import unmix

    out, _, _ = emt_store
    d, _ = bases
    b = SignatureBasis.load(d / "Cu.npz")
    assert set(b.elements) == {"Ag", "Ni"}
    syn = store_synthesizer(out, "Cu")
    p = syn.pristine["gpdos"]
    doped = p + syn.signature({"Ag": 9 / 32, "Ni": 3 / 32}, seed=5)
    u = unmix(p, doped, b, kind="gpdos")
    r = refine(p, doped, b, syn, kind="gpdos", iterations=4, seed=5)
    assert abs(r["Ag"]["concentration"] - 9 / 32) < abs(u["Ag"]["concentration"] - 9 / 32) - 0.01
    assert r.fit["residual_fraction"] < u.fit["residual_fraction"]
    assert r.fit["start"]["Ag"] == u["Ag"]["concentration"] and r.fit["iteration"] >= 1
    h = r.fit["history"]  # the start and 4 iterations; the kept one has the smallest residual
    assert len(h) == 5 and h[0]["concentrations"]["Ag"] == u["Ag"]["concentration"]
    kept = h[r.fit["iteration"]]
    assert kept["residual_fraction"] == min(x["residual_fraction"] for x in h)
    assert kept["concentrations"]["Ag"] == r["Ag"]["concentration"]
    assert r.fit["residual_fraction"] == pytest.approx(kept["residual_fraction"])
    none = refine(p, doped, b, syn, kind="gpdos", iterations=0, seed=5)  # no iteration: unmix's concentrations
    assert none["Ag"]["concentration"] == u["Ag"]["concentration"] and none.fit["iteration"] == 0


def test_refine_starts_from_the_closer_of_a_given_answer_and_the_unmixing(emt_store, bases):
    """A start near the truth is kept (its synthesis is closer than the unmixing's); a far one is not."""
    from defectnet.data.bases import store_synthesizer
    from defectnet.synthesis import refine

    out, _, _ = emt_store
    d, _ = bases
    b = SignatureBasis.load(d / "Cu.npz")
    syn = store_synthesizer(out, "Cu")
    p = syn.pristine["gpdos"]
    true = {"Ag": 9 / 32, "Ni": 3 / 32}
    doped = p + syn.signature(true, seed=5)
    near = refine(p, doped, b, syn, kind="gpdos", iterations=0, seed=5, start=true)
    assert near.fit["start"] == pytest.approx(true) and near.fit["started_from"] == "given"
    assert near.fit["unmixed"]["Ag"] < 0.25
    assert near["Ag"]["concentration"] == pytest.approx(9 / 32) and near.fit["residual_fraction"] < 1e-6
    far = refine(p, doped, b, syn, kind="gpdos", iterations=0, seed=5, start={"Ag": 0.0, "Ni": 0.5})
    assert far.fit["start"] == far.fit["unmixed"] and far.fit["started_from"] == "unmixing"  # it was closer
    assert far["Ni"]["concentration"] == pytest.approx(far.fit["unmixed"]["Ni"])
    held = refine(p, doped, b, syn, kind="gpdos", iterations=2, seed=5, start=true, absent=["Ni"])
    assert held["Ni"]["concentration"] == 0.0 and held.fit["start"]["Ni"] == 0.0  # held at 0 throughout
    assert all(h["concentrations"]["Ni"] == 0.0 for h in held.fit["history"])
    assert held["Ag"]["concentration"] > 0.2  # Ag still refined, on the signal Ni leaves


def test_a_host_two_files_hold_gets_one_pool_of_both(emt_store, tmp_path):
    """Chunks of one host drawn apart hold different dopants: its basis must cover both."""
    import shutil
    import sqlite3

    from defectnet.data.bases import host_pools_in_files
    from defectnet.data.export import export

    out, _, _ = emt_store
    for part, keep in (("a", "dopants NOT LIKE '%Ni%'"), ("b", "dopants LIKE '%Ni%'")):
        copy = shutil.copy(out, tmp_path / f"{part}.sqlite")
        with sqlite3.connect(copy) as c:
            c.execute(f"DELETE FROM samples WHERE host = 'Cu' AND NOT ({keep})")
        export(copy, tmp_path / "chunks" / f"{part}.h5", compact=True)
    export(out, tmp_path / "whole.h5", compact=True)
    whole = host_pools_in_files(str(tmp_path / "whole.h5"), ["Cu"])["Cu"][0]
    a, b = (host_pools_in_files(str(tmp_path / "chunks" / f"{x}.h5"), ["Cu"])["Cu"][0] for x in "ab")
    assert set(a) != set(whole) and set(a) | set(b) == set(whole)  # the first file alone lacks some
    both = host_pools_in_files(str(tmp_path / "chunks"), ["Cu"])["Cu"]
    assert set(both[0]) == set(whole) and both[2].name == "a.h5"
    assert set(both[3]) == set(whole)  # each element with the config of the file that drew it


def test_training_file_bases_simulate_what_the_store_bases_hold(emt_store, bases, tmp_path, monkeypatch):
    """The store is gone, its exported file remains: each host's basis is simulated again with the
    settings the file records, matching the one built from the store's patches; a rerun computes nothing."""
    from defectnet.data.bases import training_file_bases
    from defectnet.data.export import export

    out, _, _ = emt_store
    d, _ = bases
    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "cache"))
    export(out, tmp_path / "chunk.h5", compact=True)
    res = training_file_bases(str(tmp_path / "chunk.h5"), tmp_path / "b", concentrations=CONC, hosts=["Cu", "Au"],
                              progress=False)
    assert sorted(res.written) == ["Au", "Cu"] and not res.skipped
    for host in res.written:
        fresh, stored = SignatureBasis.load(tmp_path / "b" / f"{host}.npz"), SignatureBasis.load(d / f"{host}.npz")
        assert fresh.host == host and set(fresh.elements) == set(stored.elements)
        assert fresh.sites == stored.sites  # the sites the samples were placed on, as the file records them
        order = [fresh.elements.index(el) for el in stored.elements]
        scale = np.abs(stored.curves["gpdos"]).max()
        assert np.abs(fresh.curves["gpdos"][order] - stored.curves["gpdos"]).max() < 1e-3 * scale
    again = training_file_bases(str(tmp_path / "chunk.h5"), tmp_path / "b", concentrations=CONC,
                                hosts=["Cu", "Au"], progress=False)
    assert not again.written and sorted(again.existing) == ["Au", "Cu"]


def test_a_second_potential_is_asked_of_training_files_not_of_a_store(emt_store, tmp_path, capsys):
    from defectnet.cli import main
    from defectnet.data.bases import training_file_bases
    from defectnet.data.export import export

    out, _, _ = emt_store
    export(out, tmp_path / "chunk.h5", compact=True)
    with pytest.raises(DefectnetError, match="unknown potential 'mace'; expected one of"):
        training_file_bases(str(tmp_path / "chunk.h5"), tmp_path / "b", hosts=["Cu"], potential="mace", progress=False)
    assert not list((tmp_path / "b").glob("*.npz"))
    assert main(["dataset", "bases", str(out), "--out", str(tmp_path / "c"), "--potential", "chgnet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected training files" in err[0] and "--potential" in err[0]


@pytest.fixture
def planned(monkeypatch):
    """Stub the simulation of training-file bases: record each host's candidate specs and the planner
    replays (``generation_sites``), and skip the host instead of simulating it."""
    import defectnet.data.bases as bases_module
    import defectnet.unmix

    specs, replays = {}, []
    real = bases_module.generation_sites

    def replay(host, cfg, recommender, elements):
        replays.append((host.name, list(elements)))
        return real(host, cfg, recommender, elements)

    def no_simulation(atoms, candidates, *a, **k):
        specs[len(specs)] = list(candidates)
        raise DefectnetError("not simulated in this test")

    monkeypatch.setattr(bases_module, "generation_sites", replay)
    monkeypatch.setattr(defectnet.unmix, "signature_basis", no_simulation)
    return specs, replays


def _cu_pool_file(emt_store, path, *, moved=0, seed=None, strip=False):
    """Export the EMT store to ``path`` (.npz) and edit what it records: ``moved`` of Cu's samples of its
    first pool element (all if None) on the Au site; ``seed``, another generation seed (so other samples);
    ``strip``, no sites at all (a file exported before they were recorded).
    Returns (that element, Cu's samples of it)."""
    from defectnet.data.export import export
    from defectnet.elements import DOPANTS

    export(emt_store[0], path)
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    cu = d["host_id"] == [str(x) for x in d["host_names"]].index("Cu")
    j = int(np.flatnonzero((d["targets"][cu] > 0).any(0))[0])
    rows = np.flatnonzero(cu & (d["targets"][:, j] > 0))
    d["dopant_site"][rows[:moved], j] = json.loads(str(d["host_elements"])).index("Au")
    if seed is not None:
        d["config"] = np.array(json.dumps({**json.loads(str(d["config"])), "seed": seed}))
    if strip:
        del d["dopant_site"]
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **d)
    return DOPANTS[j], len(rows)


def test_training_file_bases_take_the_recorded_sites_over_the_planners(emt_store, planned, tmp_path):
    """Cu's first pool element recorded on the Au site: the basis takes it there, where the planner's
    replay (what a file without sites gets) puts it on Cu, and the planner is not replayed."""
    from defectnet.data.bases import training_file_bases

    specs, replays = planned
    _cu_pool_file(emt_store, tmp_path / "old.npz", strip=True)
    res = training_file_bases(str(tmp_path / "old.npz"), tmp_path / "a", hosts=["Cu"], progress=False)
    replayed = specs[0]
    assert res.skipped["Cu"] == "not simulated in this test" and not res.notes
    assert replays == [("Cu", [s.split("@")[0] for s in replayed])] and all(s.endswith("@Cu") for s in replayed)

    el, _ = _cu_pool_file(emt_store, tmp_path / "new.npz", moved=None)  # all of them
    res = training_file_bases(str(tmp_path / "new.npz"), tmp_path / "b", hosts=["Cu"], progress=False)
    assert f"{el}@Cu" in replayed and specs[1] == [f"{el}@Au" if s == f"{el}@Cu" else s for s in replayed]
    assert len(replays) == 1 and not res.notes  # every element recorded: no replay


def test_an_element_recorded_on_two_sites_of_a_host_gets_the_most_frequent_and_a_note(emt, emt_store, planned,
                                                                                         tmp_path, capsys):
    from defectnet.data.bases import training_file_bases
    from defectnet.data.export import export

    specs, replays = planned
    export(emt_store[0], tmp_path / "a.h5", compact=True)
    el, n = _cu_pool_file(emt_store, tmp_path / "b.npz", seed=emt.base["seed"] + 1, moved=1)
    files = f"{tmp_path / 'a.h5'},{tmp_path / 'b.npz'}"
    res = training_file_bases(files, tmp_path / "c", hosts=["Cu"], progress=False)
    note = f"Cu: {el} sits on 2 sites (Cu in {2 * n - 1}, Au in 1 samples); its basis puts it on Cu"
    assert res.notes == (note,) and f"{el}@Cu" in specs[0] and not replays
    assert main(["dataset", "bases", files, "--out", str(tmp_path / "d"), "--hosts", "Cu", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "sits on" in line] == [f"  note: {note}"]
    # the same samples (same seed) in a second file count once: no second site, no note
    _cu_pool_file(emt_store, tmp_path / "same.npz", moved=1)
    res = training_file_bases(f"{tmp_path / 'a.h5'},{tmp_path / 'same.npz'}", tmp_path / "e", hosts=["Cu"],
                              progress=False)
    assert not res.notes and f"{el}@Cu" in specs[2]


def test_most_frequent_sites_keeps_the_first_counted_of_a_tie_and_notes_every_split():
    from collections import Counter

    from defectnet.data.bases import most_frequent_sites

    sites, notes = most_frequent_sites("GaAs", {"Si": Counter(["Ga", "As", "As", "Ga"]), "Zn": Counter({"Ga": 5}),
                                                "C": Counter({"Ga": 1, "As": 4})})
    assert sites == {"Si": "Ga", "Zn": "Ga", "C": "As"}
    assert notes == ["GaAs: C sits on 2 sites (As in 4, Ga in 1 samples); its basis puts it on As",
                     "GaAs: Si sits on 2 sites (Ga in 2, As in 2 samples); its basis puts it on Ga"]
