"""Checkpoints: round trip with weights_only, refusal of mismatched or unsafe files, the shipped model."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.model import checkpoint as ck
from defectnet.model.synthetic import make_synthetic
from defectnet.model.architectures import build_model
from defectnet.model.network import ModelConfig

SMALL = {"channels": (8, 16, 16), "d_model": 16, "n_heads": 2, "n_layers": 1, "element_embedding": 4}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(3, 5, seed=2)


def _saved(tmp_path, arch="defectnet"):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, **(SMALL if arch == "defectnet" else {})), DEFAULT_GRID)
    model.meta = {"grid": DEFAULT_GRID.to_dict(), "spectrum_mode": "gpdos"}
    if arch == "defectnet":
        model.sigma_scale.fill_(1.7)
    path = ck.save_checkpoint(model, tmp_path / f"{arch}.pt", metrics={"test_ood": {"mae_at_pct": 0.5}},
                              data={"potential": "chgnet", "train_hosts": ["Si"]})
    return model.eval(), path


def _out(model, data):
    with torch.no_grad():
        return model(*(torch.from_numpy(a) for a in (data.pristine, data.doped, data.composition, data.candidates)))


@pytest.mark.parametrize("arch", ["defectnet", "paper"])
def test_round_trip(tmp_path, data, arch):
    model, path = _saved(tmp_path, arch)
    raw = torch.load(path, weights_only=True)  # plain data and tensors only
    assert raw["arch"] == arch and raw["grid_id"] == DEFAULT_GRID.grid_id and len(raw["vocabulary"]) == 51
    assert raw["spectrum_mode"] == "gpdos" and raw["code_version"] and raw["metrics"]["test_ood"]["mae_at_pct"] == 0.5
    loaded = ck.load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.meta["spectrum_mode"] == "gpdos" and loaded.meta["data"]["potential"] == "chgnet"
    a, b = _out(model, data), _out(loaded, data)
    for key in ("concentration", "sigma", "presence"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    if arch == "defectnet":
        assert float(loaded.sigma_scale) == pytest.approx(1.7)


def test_mismatched_grid_and_vocabulary_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    with pytest.raises(DefectnetError, match="energy grid .* resample"):
        ck.load_model(path, grid=EnergyGrid(n_bins=320))
    with pytest.raises(DefectnetError, match="vocabulary"):
        ck.load_model(path, vocabulary=["H", "Li"])
    assert ck.load_model(path, grid=DEFAULT_GRID, vocabulary=ck.read_checkpoint(path)["vocabulary"]) is not None


def test_a_checkpoint_with_the_old_id_of_an_integer_grid_loads_with_the_canonical_id(tmp_path):
    grid = EnergyGrid.from_dict({"e_max_mev": 400})
    digest = hashlib.sha1(json.dumps(grid.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    model = build_model(ModelConfig(**SMALL), grid)
    model.meta = {"grid": grid.to_dict(), "spectrum_mode": "gpdos"}
    path = ck.save_checkpoint(model, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["grid_id"] = f"asinh-0-400meV-640-{digest}"  # as saved before ids were canonical
    torch.save(raw, path)
    assert ck.read_checkpoint(path)["grid_id"] == grid.grid_id
    assert ck.load_model(path, grid=EnergyGrid(e_max_mev=400.0)).meta["grid_id"] == grid.grid_id


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_unsafe_and_foreign_files_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "x": _Payload()}, evil)
    with pytest.raises(DefectnetError, match="refusing to load"):
        ck.load_model(evil)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(DefectnetError, match="not a defectnet model checkpoint"):
        ck.load_model(other)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(DefectnetError, match="not a readable torch checkpoint"):
        ck.load_model(text)
    with pytest.raises(DefectnetError, match="does not exist"):
        ck.load_model(tmp_path / "missing.pt")


def test_tampered_checkpoints_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    raw["grid"] = EnergyGrid(n_bins=320).to_dict()
    torch.save(raw, tmp_path / "grid.pt")
    with pytest.raises(DefectnetError, match="grid"):
        ck.load_model(tmp_path / "grid.pt")
    raw = torch.load(path, weights_only=True)
    raw["arch"], raw["model_config"]["arch"] = "paper", "paper"
    torch.save(raw, tmp_path / "arch.pt")
    with pytest.raises(DefectnetError, match="weights do not fit"):
        ck.load_model(tmp_path / "arch.pt")
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, tmp_path / "version.pt")
    with pytest.raises(DefectnetError, match="format version"):
        ck.load_model(tmp_path / "version.pt")


def test_missing_shipped_model_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "pretrained_path", lambda arch="defectnet": tmp_path / "nothing.pt")
    with pytest.raises(DefectnetError, match="no model is shipped"):
        ck.load_model()


def test_shipped_model_loads_and_predicts(data):
    if not ck.pretrained_path().is_file():
        pytest.fail(f"the shipped model {ck.pretrained_path()} is missing")
    import defectnet

    model = defectnet.load_model()
    assert model.meta["grid_id"] == DEFAULT_GRID.grid_id and model.meta["spectrum_mode"] in ("total", "gpdos")
    res = model.predict(data.pristine[0], data.doped[0], data.composition[0], ["Si", "Ge"])
    assert all(np.isfinite(v["concentration"]) and 0 <= v["concentration"] <= 1 for v in res.values())
