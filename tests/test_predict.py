"""defectnet predict: files in any unit and grid, candidates from the user and the recommender, clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from defectnet.cli import main
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID
from defectnet.io import write_spectrum
from defectnet.model.synthetic import make_synthetic
from defectnet.model.train import TrainConfig, train
from defectnet.predict import PredictConfig, predict_defects
from defectnet.spectrum import Spectrum

BABY = Path(__file__).resolve().parents[1] / "configs" / "baby.yaml"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    data = make_synthetic(4, 20, seed=3)
    out = tmp_path_factory.mktemp("model")
    train(data, TrainConfig.from_yaml(BABY), out, progress=False, log=lambda s: None)
    return out / "model.pt"


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    """A Si-like pristine PDoS and a doped one with a local mode, as meV files."""
    e = DEFAULT_GRID.centers
    band = np.exp(-0.5 * ((e - 58.0) / 3.0) ** 2) + 0.5 * np.where(e < 40, (e / 40) ** 2, 0.0)
    local = np.exp(-0.5 * ((e - 72.0) / 1.0) ** 2)
    p = Spectrum.on_grid(DEFAULT_GRID, band).normalized()
    d = Spectrum.on_grid(DEFAULT_GRID, band + 0.05 * local).normalized()
    out = tmp_path_factory.mktemp("spectra")
    return p, d, write_spectrum(p, out / "pristine.csv"), write_spectrum(d, out / "doped.csv")


def _on_points(s: Spectrum, path, unit="meV", step_mev=0.5, e_max=150.0):
    """``s`` sampled at uniform points, written as a bare two-column file in ``unit``."""
    from defectnet.units import from_mev

    e = np.arange(0.0, e_max, step_mev)
    v = np.interp(e, s.centers_mev, s.values)
    f = float(from_mev(1.0, unit))  # unit per meV
    header = {"meV": "E_meV", "THz": "frequency_THz", "cm-1": "wavenumber_cm-1"}[unit]
    np.savetxt(path, np.c_[e * f, v / f], header=f"{header} intensity")
    return path


def test_cli_predict_writes_table_json_and_plot(model_path, spectra, tmp_path, capsys):
    _, _, pf, df = spectra
    rc = main(["predict", "--host", "Si", "--pristine", str(pf), "--doped", str(df), "--candidates", "B,P,Ge",
               "--model", str(model_path), "--json", str(tmp_path / "p.json"), "--plot", str(tmp_path / "p.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "element" in out and all(el in out for el in ("B", "P", "Ge"))
    res = json.loads((tmp_path / "p.json").read_text())
    assert [r["element"] for r in res["candidates"]] and {r["element"] for r in res["candidates"]} == {"B", "P", "Ge"}
    for r in res["candidates"]:
        assert 0.0 <= r["concentration"] <= 1.0 and r["uncertainty"] >= 0 and 0.0 <= r["presence"] <= 1.0
    assert res["composition"] == {"Si": 1.0}
    assert res["model"]["host_in_training"] is False  # the synthetic hosts are not Si
    assert any("±1σ" in n for n in res["notes"])
    assert any("defectnet basis Si --candidates B,P,Ge" in n for n in res["notes"])  # the way out, for a new host
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_training_hosts_are_recognised_by_name_or_composition():
    from types import SimpleNamespace

    from defectnet.predict import calibration_note, host_in_training

    gaas = {"Ga": 0.5, "As": 0.5}
    m = SimpleNamespace(meta={"data": {"train_hosts": ["GaAs"], "train_compositions": [gaas]}},
                        sigma_scale_unseen=2.0)
    assert host_in_training(m, "GaAs", gaas) is True
    assert host_in_training(m, "my_crystal.cif", {"As": 0.5, "Ga": 0.5004}) is True
    assert host_in_training(m, "GaP", {"Ga": 0.5, "P": 0.5}) is False
    assert host_in_training(m, "GaAs-like", {"Ga": 0.6, "As": 0.4}) is False
    assert "held out of training" in calibration_note(m, "GaP", False)
    old = SimpleNamespace(meta={"data": {"train_hosts": ["GaAs"]}}, sigma_scale_unseen=None)
    assert host_in_training(old, "GaP", {"Ga": 0.5, "P": 0.5}) is None
    assert "likely too small" in calibration_note(old, "GaP", None)


def test_a_host_of_a_family_with_no_training_host_is_flagged():
    from types import SimpleNamespace

    from defectnet.predict import family_note

    m = SimpleNamespace(meta={"data": {"train_hosts": ["GaAs", "NaCl"]}})
    note = family_note(m, "ZnO")
    assert note.startswith("ZnO is a wurtzite, a structure family with no training host (rocksalt, zincblende)")
    assert family_note(m, "InP") is None  # a zincblende, like GaAs
    assert family_note(m, "my_crystal.cif") is None  # outside the library: family unknown
    assert family_note(SimpleNamespace(meta={"data": {}}), "ZnO") is None


def test_same_answer_in_any_unit_and_grid(model_path, spectra, tmp_path):
    p, d, pf, df = spectra
    ref = predict_defects("Si", df, pristine=pf, candidates=("B", "Ge"), model=model_path)
    for unit in ("THz", "cm-1", "meV"):
        pt = _on_points(p, tmp_path / f"p_{unit}.dat", unit)
        dt = _on_points(d, tmp_path / f"d_{unit}.dat", unit)
        got = predict_defects("Si", dt, pristine=pt, candidates=("B", "Ge"), model=model_path)
        for a, b in zip(sorted(ref.rows, key=lambda r: r["element"]), sorted(got.rows, key=lambda r: r["element"])):
            assert a["element"] == b["element"]
            assert b["concentration"] == pytest.approx(a["concentration"], rel=0.1, abs=2e-4), unit
            assert b["presence"] == pytest.approx(a["presence"], abs=0.05), unit


def test_recommender_adds_candidates_and_marks_overlap(model_path, spectra):
    _, _, pf, df = spectra
    pred = predict_defects("Si", df, pristine=pf, candidates=("B",), n_recommend=3, model=model_path)  # Si-like spectra
    sources = {r["element"]: r["source"] for r in pred.rows}
    assert sum(s == "recommender" for s in sources.values()) == 3
    assert sources["B"] in ("user", "both")
    assert "Si" not in sources  # host elements are never candidates


def test_truth_from_simulate_meta_is_shown(model_path, spectra, tmp_path):
    _, _, pf, df = spectra
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"concentrations": {"B": 0.004}, "host": "Si"}))
    pred = predict_defects("Si", df, pristine=pf, candidates=("B", "P"), model=model_path, truth=meta)
    assert pred.truth == {"B": 0.004}
    assert "true at.%" in pred.table() and "0.400" in pred.table()


def test_short_range_and_bad_input_give_one_line_errors(model_path, spectra, tmp_path, capsys):
    _p, d, pf, df = spectra
    short = _on_points(d, tmp_path / "short.dat", e_max=50.0)  # stops below the optical band
    with pytest.raises(DefectnetError, match="cover the host's whole phonon spectrum"):
        predict_defects("Si", short, pristine=pf, candidates=("B",), model=model_path)
    bad = tmp_path / "nan.dat"
    bad.write_text("1 0.1\n2 0.2\n3 nan\n4 0.1\n5 0.1\n6 0.1\n")
    rc = main(["predict", "--host", "Si", "--pristine", str(pf), "--doped", str(bad), "--candidates", "B",
               "--model", str(model_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "nan.dat:3:" in err and "NaN" in err
    with pytest.raises(DefectnetError, match="not a dopant|noble|Xe"):
        PredictConfig(candidates=("Xe",))
    with pytest.raises(DefectnetError, match="no candidates"):  # the model needs them; a basis has its own
        predict_defects("Si", df, pristine=pf, model=model_path)
    with pytest.raises(DefectnetError, match="model reads total"):
        predict_defects("Si", df, pristine=pf, candidates=("B",), kind="gpdos", model=model_path)


def test_low_energy_gap_is_cut_from_both_and_stated(model_path, spectra, tmp_path):
    _p, d, pf, _ = spectra
    e = np.arange(4.0, 150.0, 0.5)  # an INS measurement starting above the elastic line
    np.savetxt(tmp_path / "d.dat", np.c_[e, np.interp(e, d.centers_mev, d.values)], header="E_meV I")
    pred = predict_defects("Si", tmp_path / "d.dat", pristine=pf, candidates=("B",), model=model_path)
    assert any("below 4.0 meV" in n for n in pred.notes)
    low = DEFAULT_GRID.centers < 4.0
    assert np.all(pred.pristine.values[low] == 0) and np.all(pred.doped.values[low] == 0)
    assert pred.doped.area() == pytest.approx(1.0, rel=1e-6)


def test_computed_pristine_is_cached(model_path, spectra, tmp_path, monkeypatch):
    import defectnet.phonons.host as host_module

    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "cache"))
    cu = bulk("Cu", "fcc", a=3.6)
    e = np.arange(0.0, 60.0, 0.25)
    dos = np.where(e < 32, (e / 32) ** 2, 0.0)  # a Debye-like doped spectrum covering Cu's range (EMT)
    np.savetxt(tmp_path / "cu.dat", np.c_[e, dos], header="E_meV I")
    first = predict_defects(cu, tmp_path / "cu.dat", candidates=("Ni", "Zn"), potential="emt", model=model_path)
    assert any("computed with emt" in n for n in first.notes)
    assert list((tmp_path / "cache" / "pristine").glob("*.json"))

    def boom(*a, **k):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(host_module, "compute_pristine", boom)
    second = predict_defects(cu, tmp_path / "cu.dat", candidates=("Ni", "Zn"), potential="emt", model=model_path)
    np.testing.assert_allclose(second.pristine.values, first.pristine.values)


def test_energy_scale_fit_recovers_a_known_softening(model_path, tmp_path, monkeypatch):
    """A 'measured' Cu spectrum = the EMT one stiffened by 1/0.85: the fit must find 0.85."""
    from defectnet.predict import fit_energy_scale

    monkeypatch.setenv("DEFECTNET_CACHE", str(tmp_path / "cache"))
    cu = bulk("Cu", "fcc", a=3.6)
    first = predict_defects(cu, _cu_file(tmp_path), candidates=("Ni",), potential="emt", model=model_path)
    computed = first.pristine
    measured = computed.scale_energy(1 / 0.85).broaden(2.0)  # and a coarser resolution
    scale, before, after = fit_energy_scale(measured, computed)
    assert scale == pytest.approx(0.85, abs=0.01) and after < 0.3 * before
    write_spectrum(measured, tmp_path / "measured.csv")
    pred = predict_defects(cu, tmp_path / "measured.csv", pristine=tmp_path / "measured.csv", candidates=("Ni",),
                           potential="emt", energy_scale=None, model=model_path)
    assert any("energy scale 0.85" in n for n in pred.notes)


def _cu_file(tmp_path):
    e = np.arange(0.0, 60.0, 0.25)
    np.savetxt(tmp_path / "cu.dat", np.c_[e, np.where(e < 32, (e / 32) ** 2, 0.0)], header="E_meV I")
    return tmp_path / "cu.dat"


def test_readme_example_with_the_shipped_model(tmp_path, capsys):
    """The README's main command: bundled GaAs spectra, shipped model, truth shown."""
    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    rc = main(["predict", "--host", "GaAs", "--pristine", str(ex / "pristine.csv"), "--doped", str(ex / "doped.csv"),
               "--candidates", "Si,Zn,Be,C", "--truth", str(ex / "meta.json"), "--json", str(tmp_path / "p.json"),
               "--plot", str(tmp_path / "p.png")])
    assert rc == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["kind"] == "gpdos" and res["truth"] == pytest.approx({"Si": 0.02009, "Zn": 0.006696}, rel=1e-3)
    assert {r["element"] for r in res["candidates"]} == {"Si", "Zn", "Be", "C"}
    assert "true at.%" in capsys.readouterr().out
    # Si is found within 3σ of the truth and the absent C and Be are not reported. Zn at 0.67 at.% is
    # below what this model calls present (presence 0.39, README), but it ranks above the absent two.
    found = {r["element"]: r for r in res["candidates"]}
    assert found["Si"]["detected"] and not found["C"]["detected"] and not found["Be"]["detected"]
    assert abs(found["Si"]["concentration"] - 0.02009) <= 3 * found["Si"]["uncertainty"]
    assert found["Zn"]["presence"] > max(found["C"]["presence"], found["Be"]["presence"]) + 0.2


def test_readme_basis_example_merges_the_model_on_its_training_host(tmp_path):
    """`predict --basis --method merge` on GaAs (a training host of the shipped plain model): its answer and
    the unmixing's, merged by unmix.combine; --method unmix (or its older name --basis-only) gives the
    unmixing alone, exactly as before there were methods."""
    from defectnet import load_model
    from defectnet.unmix import SignatureBasis, combine, unmix

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    args = ["predict", "--host", "GaAs", "--pristine", str(ex / "pristine.csv"), "--doped", str(ex / "doped.csv"),
            "--basis", str(ex / "basis.npz"), "--candidates", "Si,Zn,Be,C"]
    runs = {}
    for extra in (["--method", "merge"], ["--method", "unmix"], ["--basis-only"]):
        assert main([*args, *extra, "--json", str(tmp_path / "p.json")]) == 0
        runs[extra[-1]] = json.loads((tmp_path / "p.json").read_text())
    merged, alone = runs["merge"], runs["unmix"]
    assert merged["model"]["arch"] == "unmix+defectnet" and alone["model"]["arch"] == "unmix"
    assert merged["model"]["method"] == "merge" and alone["model"]["method"] == "unmix"
    assert merged["model"]["model"] == "shipped"
    assert any("training host of the model" in n for n in merged["notes"])
    assert runs["--basis-only"]["candidates"] == alone["candidates"]
    # the same numbers as combining the two answers by hand, on the spectra predict used
    pred = predict_defects("GaAs", ex / "doped.csv", pristine=ex / "pristine.csv", basis=ex / "basis.npz",
                           candidates=["Si", "Zn", "Be", "C"], method="merge")
    p, d, cands = pred.pristine.values, pred.doped.values, ["Si", "Zn", "Be", "C"]
    unmixed = unmix(p, d, SignatureBasis.load(ex / "basis.npz"), kind="gpdos", candidates=cands)
    by_hand = combine(load_model().predict(p, d, {"Ga": 0.5, "As": 0.5}, cands), unmixed)
    rows = {r["element"]: r for r in merged["candidates"]}
    solo = {r["element"]: r for r in alone["candidates"]}
    for el in cands:
        assert rows[el]["concentration"] == pytest.approx(by_hand[el]["concentration"], abs=1e-6)
        assert rows[el]["uncertainty"] == pytest.approx(by_hand[el]["uncertainty"], abs=1e-6)
        assert solo[el]["concentration"] == pytest.approx(unmixed[el]["concentration"], abs=1e-9)
        assert solo[el]["uncertainty"] == pytest.approx(unmixed[el]["uncertainty"], abs=1e-9)
    assert rows["Si"]["concentration"] != pytest.approx(solo["Si"]["concentration"], rel=1e-3)
    assert rows["Si"]["detected"] and not rows["Be"]["detected"] and not rows["C"]["detected"]
    # the unmixing finds both dopants (README: Si 1.75, Zn 0.32 at.%)
    assert solo["Si"]["detected"] and solo["Zn"]["detected"] and not solo["Be"]["detected"]


def test_readme_basis_example_is_answered_by_the_conditioned_network(tmp_path):
    """`predict --basis` with no --method: the shipped conditioned network reads each candidate through its
    signature in the basis. GaAs is not among its training hosts; it finds Si (2.0 at.%) and not the absent
    Be and C, and its numbers are predict_with_basis' on the spectra predict aligned."""
    from defectnet import load_model
    from defectnet.model.conditioned_train import predict_with_basis
    from defectnet.unmix import SignatureBasis

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    args = ["predict", "--host", "GaAs", "--pristine", str(ex / "pristine.csv"), "--doped", str(ex / "doped.csv"),
            "--basis", str(ex / "basis.npz"), "--candidates", "Si,Zn,Be,C", "--truth", str(ex / "meta.json")]
    runs = {}
    for extra in ([], ["--method", "conditioned"]):
        assert main([*args, *extra, "--json", str(tmp_path / "p.json")]) == 0
        runs[bool(extra)] = json.loads((tmp_path / "p.json").read_text())
    res = runs[True]
    assert runs[False]["candidates"] == res["candidates"]  # the default
    assert res["model"]["arch"] == "conditioned" and res["model"]["method"] == "conditioned"
    # GaAs is one of the shipped model's validation hosts (it picked the epoch and calibrated ±1σ), not a training host
    assert res["model"]["path"] == "shipped" and res["model"]["host_in_training"] is False
    assert any("GaAs was not a training host" in n for n in res["notes"])
    assert res["notes"][0].startswith("answered by the conditioned network (shipped)")
    found = {r["element"]: r for r in res["candidates"]}
    assert found["Si"]["detected"] and not found["Be"]["detected"] and not found["C"]["detected"]
    assert abs(found["Si"]["concentration"] - 0.02009) <= 2 * found["Si"]["uncertainty"]
    pred = predict_defects("GaAs", ex / "doped.csv", pristine=ex / "pristine.csv", basis=ex / "basis.npz",
                           candidates=["Si", "Zn", "Be", "C"])
    by_hand = predict_with_basis(load_model(arch="conditioned"), pred.pristine.values, pred.doped.values,
                                 {"Ga": 0.5, "As": 0.5}, ["Si", "Zn", "Be", "C"], SignatureBasis.load(ex / "basis.npz"))
    for el, r in found.items():
        assert r["concentration"] == pytest.approx(by_hand[el]["concentration"], abs=1e-7)
        assert r["presence"] == pytest.approx(by_hand[el]["presence"], abs=1e-6)


def test_readme_basis_example_through_an_ensemble(tmp_path):
    """An ensemble checkpoint reads like any conditioned model; two copies of the shipped one answer as it does,
    and the note says who answered."""
    from defectnet import load_model
    from defectnet.model.checkpoint import save_checkpoint
    from defectnet.model.ensemble import combine

    shipped = load_model(arch="conditioned")
    path = save_checkpoint(combine([shipped, shipped]), tmp_path / "ensemble.pt")
    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    args = ["predict", "--host", "GaAs", "--pristine", str(ex / "pristine.csv"), "--doped", str(ex / "doped.csv"),
            "--basis", str(ex / "basis.npz"), "--candidates", "Si,Zn,Be,C"]
    runs = {}
    for label, extra in (("shipped", []), ("ensemble", ["--model", str(path)])):
        assert main([*args, *extra, "--json", str(tmp_path / f"{label}.json")]) == 0
        runs[label] = json.loads((tmp_path / f"{label}.json").read_text())
    assert runs["ensemble"]["notes"][0].startswith("answered by an ensemble of 2 conditioned networks")
    one = {r["element"]: r for r in runs["shipped"]["candidates"]}
    for r in runs["ensemble"]["candidates"]:
        assert r["concentration"] == pytest.approx(one[r["element"]]["concentration"], rel=1e-4, abs=1e-7)
        assert r["presence"] == pytest.approx(one[r["element"]]["presence"], abs=1e-6)


@pytest.mark.parametrize("method", ["conditioned", "unmix"])
def test_a_dopant_left_off_the_list_leaves_its_signature_unexplained_and_is_said(method):
    """Si withheld from the README example: its local mode (35 meV) is left in the residual, the answer is
    not trusted and the warning names the energies; with Si listed, no such warning."""
    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    kw = dict(pristine=ex / "pristine.csv", basis=ex / "basis.npz", method=method)
    full = predict_defects("GaAs", ex / "doped.csv", candidates=["Si", "Zn", "Be", "C"], **kw)
    assert not [w for w in full.warnings if "unexplained" in w]
    short = predict_defects("GaAs", ex / "doped.csv", candidates=["Zn", "Be", "C"], **kw)
    (warning,) = [w for w in short.warnings if "unexplained" in w]
    assert not short.trusted
    share, lo, hi = map(float, re.search(r"leave (\d+) % .* at ([\d.]+)–([\d.]+) meV", warning).groups())
    assert share > 30 and lo <= 35.0 <= hi + 1.0  # Si's local mode, 35 meV with 7net-0


def test_residual_range_is_where_the_residual_lies():
    from defectnet.grid import EnergyGrid
    from defectnet.unmix import residual_range_mev

    grid = EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=100.0, n_bins=100)
    r = np.exp(-0.5 * ((grid.centers - 40.0) / 2.0) ** 2)
    lo, hi = residual_range_mev(r, grid)
    assert 37 < lo < 40 < hi < 43
    assert np.isnan(residual_range_mev(np.zeros(100), grid)[0])


@pytest.fixture(scope="module")
def gaas_bases(tmp_path_factory):
    """The example basis, altered: on another grid, at two concentrations, simulated with another potential,
    C with no stable site."""
    from dataclasses import replace

    from defectnet.grid import EnergyGrid
    from defectnet.unmix import SignatureBasis

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    b = SignatureBasis.load(ex / "basis.npz")
    out = tmp_path_factory.mktemp("bases")
    sim = dict(b.config["simulation"], potential="chgnet")
    keep = [i for i, el in enumerate(b.elements) if el != "C"]
    no_c = replace(b, elements=tuple(b.elements[i] for i in keep), realised=b.realised[keep],
                   signatures={k: v[keep] for k, v in b.signatures.items()}, curves={k: v[keep] for k, v in b.curves.items()},
                   failed={"C": "C@As: no stable position (imaginary modes)"})
    return {"example": ex / "basis.npz",
            "grid": replace(b, grid=EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=500.0, n_bins=640)).save(out / "grid.npz"),
            "chgnet": replace(b, config=dict(b.config, simulation=sim)).save(out / "chgnet.npz"),
            "two": replace(b, realised=b.realised[:, 1:], curves={k: v[:, 1:] for k, v in b.curves.items()}).save(
                out / "two.npz"),
            "no_c": no_c.save(out / "no_c.npz")}


def test_conditioned_answer_states_or_refuses_what_differs(gaas_bases):
    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"

    def run(basis, candidates=("Si", "Zn", "Be", "C"), **kw):
        return predict_defects("GaAs", ex / "doped.csv", pristine=ex / "pristine.csv", basis=basis,
                               candidates=candidates, **kw)

    with pytest.raises(DefectnetError, match=r"grid.npz is on energy grid linear-.* the conditioned model reads asinh"):
        run(gaas_bases["grid"], method="conditioned")
    with pytest.raises(DefectnetError, match=r"two.npz has curves at 2 concentrations, the conditioned model reads 3"):
        run(gaas_bases["two"], method="conditioned")
    # unasked, a basis the shipped conditioned network cannot read is unmixed, as before it existed, and said so
    fallback = run(gaas_bases["two"])
    assert fallback.model["method"] == "merge" and {r["element"] for r in fallback.rows if r["detected"]} >= {"Si"}
    assert fallback.notes[0].startswith("not answered by the conditioned network, which cannot read this: ")
    assert "two.npz has curves at 2 concentrations" in fallback.notes[0]
    with pytest.raises(DefectnetError, match=r"candidates \['Mg'\] are not in the basis of GaAs"):
        run(gaas_bases["example"], ("Si", "Mg"))
    other = run(gaas_bases["chgnet"])
    assert any(n.startswith(f"{gaas_bases['chgnet']} was simulated with chgnet (0.3.0), tier patch, the conditioned "
                            "model's training bases with sevennet (7net-0), tier patch") for n in other.notes)
    no_c = run(gaas_bases["no_c"])
    rows = {r["element"]: r for r in no_c.rows}
    assert rows["C"] == dict(rows["C"], concentration=0.0, presence=0.0, detected=False)
    assert any("no stable position" in n and "C@As" in n for n in no_c.notes)
    assert rows["Si"]["detected"] and set(rows) == {"Si", "Zn", "Be", "C"}
    # only the candidates listed are answered, the rest of the basis is not
    assert {r["element"] for r in run(gaas_bases["example"], ("Si", "Be")).rows} == {"Si", "Be"}


def test_methods_and_models_that_do_not_go_together_are_refused(model_path):
    from defectnet.model.checkpoint import pretrained_path

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    kw = {"pristine": ex / "pristine.csv", "candidates": ["Si", "Zn"]}
    cases = [({"model": pretrained_path("conditioned")}, "is a conditioned model: .* needs a basis"),
             ({"method": "unmix"}, "'unmix' .* chooses how a basis is read: it needs a basis"),
             ({"basis": ex / "basis.npz", "method": "merge", "model": pretrained_path("conditioned")},
              "--method merge merges the unmixing with the plain network; .*conditioned.pt is a conditioned model"),
             ({"basis": ex / "basis.npz", "method": "conditioned", "model": model_path},
              "--method conditioned needs a conditioned model; .*model.pt is a defectnet model"),
             ({"basis": ex / "basis.npz", "stretch": 0.2, "method": "conditioned"}, "--stretch .* add --method unmix")]
    for extra, message in cases:
        with pytest.raises(DefectnetError, match=message):
            predict_defects("GaAs", ex / "doped.csv", **kw, **extra)
    with pytest.raises(DefectnetError, match="--basis-only is --method unmix, which contradicts --method conditioned"):
        PredictConfig(combine=False, method="conditioned")
    with pytest.raises(DefectnetError, match="unknown method 'nnls'"):
        PredictConfig(method="nnls")
    # a plain model given with a basis: merged as before (the model path names it)
    pred = predict_defects("GaAs", ex / "doped.csv", basis=ex / "basis.npz", model=model_path, **kw)
    assert pred.model["method"] == "merge"
    # unasked, --stretch (an unmixing's option) gets an unmixing, and says so
    pred = predict_defects("GaAs", ex / "doped.csv", basis=ex / "basis.npz", stretch=0.2, **kw)
    assert pred.model["method"] == "merge" and pred.notes[0].startswith("--stretch refines an unmixing")
    # unasked, --refine refines the conditioned network's answer by synthesising the mix
    pred = predict_defects("GaAs", ex / "doped.csv", basis=ex / "basis.npz", refine=1, **kw)
    assert pred.model["method"] == "conditioned+refine"
    assert any(n.startswith("refined by synthesising the mix 1 times") for n in pred.notes)


def test_a_model_without_uncertainty_is_not_merged_with_the_basis():
    from defectnet.grid import DEFAULT_GRID
    from defectnet.model.architectures import build_model
    from defectnet.model.network import ModelConfig
    from defectnet.predict import predict_defects

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    paper = build_model(ModelConfig(arch="paper"), DEFAULT_GRID)  # claims GaAs as a training host
    paper.meta = {"data": {"train_hosts": ["GaAs"]}, "spectrum_mode": "gpdos", "grid_id": DEFAULT_GRID.grid_id}
    pred = predict_defects("GaAs", ex / "doped.csv", pristine=ex / "pristine.csv", basis=ex / "basis.npz",
                           candidates=["Si", "Zn"], model=paper)
    assert pred.model["arch"] == "unmix" and any("no uncertainty" in n for n in pred.notes)


def test_candidates_auto_reads_the_whole_basis_ranked_and_needs_one(capsys, tmp_path):
    """No list given: every candidate of the basis is read and ranked (detected first, then by
    presence); without a basis it is a one-line error naming how to make one."""
    from defectnet.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    files = ["--host", "GaAs", "--pristine", str(example / "pristine.csv"), "--doped", str(example / "doped.csv"),
             "--quiet"]
    assert main(["predict", *files, "--candidates", "auto", "--basis", str(example / "basis.npz"), "--json",
                 str(tmp_path / "auto.json")]) == 0
    out = json.loads((tmp_path / "auto.json").read_text())
    rows = out["candidates"]
    assert {r["element"] for r in rows} == {"Si", "Zn", "Be", "C"} and {r["source"] for r in rows} == {"basis"}
    keys = [(-r["concentration"], -r["presence"]) for r in rows]
    assert keys == sorted(keys) and rows[0]["element"] == "Si"
    capsys.readouterr()
    assert main(["predict", *files, "--candidates", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "defectnet basis GaAs --candidates auto" in err[0]


def test_candidate_pool_is_the_recommenders_best_distinct_dopants_on_their_sites(capsys):
    from ase.build import bulk

    from defectnet.cli import _basis_candidates
    from defectnet.errors import DefectnetError
    from defectnet.recommend import DopantRecommender, candidate_pool

    gaas = bulk("GaAs", "zincblende", a=5.65)
    pool = candidate_pool(gaas, 8)
    els = [c.split("@")[0] for c in pool]
    assert len(pool) == 8 and len(set(els)) == 8 and not {"Ga", "As"} & set(els)
    assert all(c.split("@")[1] in ("Ga", "As") for c in pool)
    ranked = [r.dopant for r in DopantRecommender().fit().recommend(gaas)]
    assert els == list(dict.fromkeys(ranked))[:8]  # the recommender's order, each dopant once
    assert _basis_candidates("GaAs", "Si@Ga, Zn") == ["Si@Ga", "Zn"]
    assert len(_basis_candidates("GaAs", "auto:5")) == 5 and "recommender's 5 best" in capsys.readouterr().out
    with pytest.raises(DefectnetError, match="auto:N"):
        _basis_candidates("GaAs", "auto:five")
    with pytest.raises(DefectnetError, match="positive integer"):
        candidate_pool(gaas, 0)


def test_a_noisy_measurement_with_a_flat_background_is_read_not_refused(tmp_path):
    """2 % flat background to 500 meV and counting noise of 0.1 (~64,000 counts over the grid): the
    background is taken off before the band edge and the host are checked, and the noise is not
    counted as a signature the candidates leave unexplained."""
    from defectnet.io import read_spectrum
    from defectnet.limits import counting_noise
    from defectnet.predict import predict_defects

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    rng = np.random.default_rng(7)
    files = {}
    for name in ("pristine", "doped"):
        s = read_spectrum(ex / f"{name}.csv")
        w = np.diff(s.edges_mev)
        v = 0.98 * s.values / np.sum(s.values * w) + 0.02 / (s.edges_mev[-1] - s.edges_mev[0])
        v = counting_noise(v, type("G", (), {"widths": w}), 0.1, rng.standard_normal(v.size))
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text("energy_meV,intensity\n" + "".join(
            f"{e},{y}\n" for e, y in zip(0.5 * (s.edges_mev[1:] + s.edges_mev[:-1]), v)))
    pred = predict_defects("GaAs", files["doped"], pristine=files["pristine"], basis=ex / "basis.npz",
                           candidates=["Si", "Zn", "Be", "C"])
    assert set(pred.detected) >= {"Si"} and abs(pred.detected["Si"] - 0.020) < 0.006
    assert not [w for w in pred.warnings if "unexplained" in w]
