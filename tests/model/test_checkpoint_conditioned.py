"""Checkpoints of the conditioned network: round trip, what a basis must match, refusals, the shipped file."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.model import checkpoint as ck
from defectnet.model.augment import Augment
from defectnet.model.conditioned import BasisTable
from defectnet.model.conditioned_train import ConditionedTrainConfig, predict_conditioned, predict_with_basis, \
    train_conditioned
from defectnet.model.synthetic import make_synthetic
from defectnet.model.network import ModelConfig
from defectnet.unmix import SignatureBasis

GRID = EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=160.0, n_bins=128)
KNOTS = (0.01, 0.05, 0.15)
SMALL = ModelConfig(arch="conditioned", n_bins=GRID.n_bins, channels=(8, 16, 16), d_model=16, n_heads=2, n_layers=1,
                    dropout=0.0)
SIM = {"potential": "sevennet", "tier": "patch"}


def _bases(data, rng) -> dict:
    """Per host of ``data``, a basis of every element that is ever its candidate: a Gaussian mode at a random energy."""
    out = {}
    for h, name in enumerate(data.host_names):
        rows = data.host_id == h
        els = tuple(data.vocabulary[v] for v in np.flatnonzero(data.candidates[rows].any(0)))
        pristine = data.pristine[rows][0]
        sig = []
        for _ in els:
            mode = np.exp(-0.5 * ((GRID.centers - rng.uniform(40, 150)) / 2.0) ** 2)
            sig.append(0.5 * (mode / (mode @ GRID.widths) - pristine))
        sig = np.array(sig)
        curves = np.array([[x * s for x in KNOTS] for s in sig])
        out[str(name)] = SignatureBasis(host=str(name), elements=els, grid=GRID,
                                        pristine={"pdos": pristine, "gpdos": pristine},
                                        signatures={"pdos": sig, "gpdos": sig}, curves={"pdos": curves, "gpdos": curves},
                                        realised=np.tile(KNOTS, (len(els), 1)), config={"simulation": dict(SIM)})
    return out


@pytest.fixture(scope="module")
def trained():
    """A tiny conditioned model trained (2 epochs) on synthetic data, calibrated, with its bases."""
    data = make_synthetic(4, 16, seed=5, grid=GRID)
    bases = _bases(data, np.random.default_rng(0))
    table = BasisTable(bases, data.vocabulary, GRID)
    cfg = ConditionedTrainConfig(model=SMALL, epochs=2, batch_size=16, max_minutes=1.0, augment=Augment(), threads=1)
    idx = np.arange(len(data))
    model, history = train_conditioned(data, table, idx[data.host_id < 3], idx[data.host_id == 3], cfg, progress=False)
    model.meta["basis"] = ck.basis_requirements(bases.values(), GRID)
    model.meta["data"] = {"train_hosts": [str(h) for h in data.host_names[:3]]}
    return data, bases, table, model, history


def test_round_trip_gives_identical_outputs(trained, tmp_path):
    data, bases, table, model, history = trained
    assert float(model.sigma_scale) == pytest.approx(history["sigma_scale"])  # calibrated: a buffer to keep
    assert history["sigma_scale"] != 1.0
    path = ck.save_checkpoint(model, tmp_path / "conditioned.pt", metrics={"history": history})
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == "conditioned" and raw["spectrum_mode"] == "gpdos" and raw["grid_id"] == GRID.grid_id
    assert raw["basis"] == {"kind": "gpdos", "grid_id": GRID.grid_id, "n_knots": 3,
                            "simulation": [{"potential": "sevennet", "model": "7net-0", "tier": "patch"}]}
    assert raw["normalisation"]["sigma_scale"] == pytest.approx(history["sigma_scale"])
    assert raw["normalisation"]["target"].startswith("ln c")
    loaded = ck.load_model(path)
    assert type(loaded) is type(model) and not loaded.training and loaded.meta["basis"] == raw["basis"]
    idx = np.arange(len(data))
    a, b = predict_conditioned(model, data, table, idx), predict_conditioned(loaded, data, table, idx)
    for key in ("concentration", "sigma", "presence"):
        np.testing.assert_array_equal(a[key], b[key])
    # one spectrum through the predict API: the same numbers as the batch, and nothing but the candidates
    i = int(np.flatnonzero(data.host_id == 3)[0])
    host = str(data.host_names[3])
    cands = [data.vocabulary[v] for v in np.flatnonzero(data.candidates[i])]
    comp = {el: float(x) for el, x in zip(data.host_elements, data.composition[i]) if x > 0}
    one = predict_with_basis(loaded, data.pristine_gpdos[i], data.doped_gpdos[i], comp, cands, bases[host])
    assert set(one) == set(cands)
    for el in cands:
        v = data.vocabulary.index(el)
        assert one[el]["concentration"] == pytest.approx(a["concentration"][i, v], rel=1e-5, abs=1e-9)
        assert one[el]["uncertainty"] == pytest.approx(a["sigma"][i, v], rel=1e-5, abs=1e-9)


def test_arch_is_checked_and_the_plain_api_refuses(trained, tmp_path):
    *_, model, _ = trained
    path = ck.save_checkpoint(model, tmp_path / "c.pt")
    with pytest.raises(DefectnetError, match="holds a conditioned model; a defectnet one is needed"):
        ck.load_model(path, arch="defectnet")
    with pytest.raises(DefectnetError, match="predict_with_basis"):
        model.predict(np.ones(GRID.n_bins), np.ones(GRID.n_bins), {"Si": 1.0}, ["Ge"])
    bare = ck.load_model(path)
    bare.meta.pop("basis")
    with pytest.raises(DefectnetError, match=r"needs model.meta\['basis'\]"):
        ck.save_checkpoint(bare, tmp_path / "bare.pt")


def test_tampered_conditioned_checkpoints_are_refused_in_one_line(trained, tmp_path):
    *_, model, _ = trained
    path = ck.save_checkpoint(model, tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)
    raw.pop("basis")
    torch.save(raw, tmp_path / "nobasis.pt")
    with pytest.raises(DefectnetError, match="without what a basis must match .* re-export"):
        ck.load_model(tmp_path / "nobasis.pt")
    # weights of an older (or newer) architecture: named, on one line
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["query.9.weight"] = torch.zeros(2)
    raw["state_dict"].pop("signature_bias")
    torch.save(raw, tmp_path / "arch.pt")
    with pytest.raises(DefectnetError) as err:
        ck.load_model(tmp_path / "arch.pt")
    msg = str(err.value)
    assert "weights do not fit the conditioned architecture" in msg and "missing signature_bias" in msg
    assert "unexpected query.9.weight" in msg and "\n" not in msg


def test_a_basis_is_checked_against_what_the_model_read(trained):
    _, bases, _, model, _ = trained
    req, b = model.meta["basis"], next(iter(bases.values()))
    assert ck.check_basis(req, b, "b.npz") == []
    with pytest.raises(DefectnetError, match="b.npz is on energy grid .* the conditioned model reads"):
        ck.check_basis(req, replace(b, grid=EnergyGrid(kind="linear", e_min_mev=0.0, e_max_mev=200.0, n_bins=128)),
                       "b.npz")
    with pytest.raises(DefectnetError, match="b.npz holds no gpdos curves"):
        ck.check_basis(req, replace(b, curves={"pdos": b.curves["pdos"]}), "b.npz")
    with pytest.raises(DefectnetError, match="b.npz has curves at 2 concentrations, the conditioned model reads 3"):
        ck.check_basis(req, replace(b, realised=b.realised[:, :2], curves={k: v[:, :2] for k, v in b.curves.items()}),
                       "b.npz")
    # another potential is read, with a note naming both; an alias of the same one is the same
    chg = replace(b, config={"simulation": {"potential": "chgnet", "tier": "patch"}})
    (note,) = ck.check_basis(req, chg, "b.npz")
    assert note.startswith("b.npz was simulated with chgnet (0.3.0), tier patch") and "sevennet (7net-0)" in note
    assert ck.check_basis(req, replace(b, config={"simulation": {"potential": "7net-0", "tier": "patch"}})) == []
    assert ck.check_basis(req, replace(b, config={"simulation": {"potential": "sevennet", "tier": "mass"}}))


def test_shipped_conditioned_model_loads_and_records_its_bases():
    path = ck.pretrained_path("conditioned")
    if not path.is_file():
        pytest.fail(f"the shipped conditioned model {path} is missing")
    import defectnet

    model = defectnet.load_model(arch="conditioned")
    assert model.config.arch == "conditioned" and model.meta["grid_id"] == DEFAULT_GRID.grid_id
    assert model.meta["basis"]["kind"] == "gpdos" and model.meta["basis"]["n_knots"] == 3
    assert {"potential": "sevennet", "model": "7net-0", "tier": "patch"} in model.meta["basis"]["simulation"]
    assert 0 < model.meta["metrics"]["test_ood"]["mae_at_pct"] < 2.5  # below answering 0 on its test hosts (2.51)
    data = model.meta["data"]  # its test hosts (and the family test hosts) were never trained or validated on
    held = set(data["test_hosts"]) | {"KI-wurtzite", "SrBr2-CdI2", "PrOI-matlockite", "ZnAl2S4-thiogallate",
                                      "RbCl-CsCl", "ZrSe2-MoS2-2H", "BaCl2-rutile", "SrBr2-cotunnite",
                                      "RbCoBr3-perovskite", "Ag2O-cuprite"}
    assert len(data["test_hosts"]) == 10 and not held & (set(data["train_hosts"]) | set(data["val_hosts"]))


def test_missing_shipped_conditioned_model_gives_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(DefectnetError, match="no paper model is shipped"):
        ck.load_model(arch="paper")
    monkeypatch.setattr(ck, "pretrained_path", lambda arch="defectnet": tmp_path / f"{arch}.pt")
    with pytest.raises(DefectnetError, match="no conditioned model is shipped .* benchmarks/conditioned.py"):
        ck.load_model(arch="conditioned")
