"""Shapes, hard masking, non-negativity, batch independence and determinism of both architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defectnet.elements import DOPANTS
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.model.synthetic import make_synthetic
from defectnet.model.architectures import ARCHITECTURES, build_model
from defectnet.model.network import ARCHITECTURE_NAMES, ModelConfig, host_calibration, n_parameters

#: The architectures that read the spectra alone (the conditioned one: tests/model/test_conditioned.py).
PLAIN = sorted(set(ARCHITECTURES) - {"conditioned"})
SMALL = {"channels": (8, 16, 16), "d_model": 16, "n_heads": 2, "n_layers": 1, "element_embedding": 4}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(4, 6, seed=3)


def _model(arch="defectnet", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, **({**SMALL, **kw} if arch == "defectnet" else kw))
    return build_model(cfg, DEFAULT_GRID).eval()


def _inputs(data, idx=slice(None)):
    return tuple(torch.from_numpy(a[idx]) for a in (data.pristine, data.doped, data.composition, data.candidates))


@pytest.mark.parametrize("arch", PLAIN)
def test_shapes_and_hard_mask(data, arch):
    model = _model(arch)
    with torch.no_grad():
        out = model(*_inputs(data))
    n, v = data.candidates.shape
    mask = torch.from_numpy(data.candidates)
    for key in ("concentration", "sigma", "presence"):
        assert out[key].shape == (n, v) == (n, len(DOPANTS))
        assert torch.all(out[key][~mask] == 0), f"{arch}: {key} is not exactly 0 off the candidates"
    loss, _ = model.loss(model(*_inputs(data)), torch.from_numpy(data.targets), mask)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_magnitude_anchor_scales_concentrations_with_the_signature(data):
    model = _model(magnitude_anchor=True)
    with torch.no_grad():  # a head that adds nothing: every candidate present, ln c = ln‖Δq‖₁ + a
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([20.0, 0.0, -5.0]))
        model.anchor_offset.fill_(-4.0)  # c ≪ 1, where the smooth cap at c = 1 is inactive
    pristine, doped, comp, cand = _inputs(data)
    with torch.no_grad():
        full = model(pristine, doped, comp, cand)["concentration"]
        half = model(pristine, 0.5 * (pristine + doped), comp, cand)["concentration"]  # Δq halved
    p, q = model.probabilities(pristine), model.probabilities(doped)
    expected = (q - p).abs().mean(-1) * torch.exp(model.anchor_offset.detach())  # (B,) ‖Δq‖₁ e^a
    mask = torch.from_numpy(data.candidates)
    assert torch.allclose(full, torch.where(mask, expected[:, None], torch.zeros_like(full)), rtol=0.05)
    ratio = half[mask] / full[mask]
    assert torch.allclose(ratio, torch.full_like(ratio, 0.5), rtol=0.03)
    assert not hasattr(_model(), "anchor_offset")  # off by default: older checkpoints load unchanged


def test_defectnet_outputs_are_non_negative_and_probabilities(data):
    model = _model()
    with torch.no_grad():  # exaggerate the weights so raw heads take extreme values
        for p in model.parameters():
            p.mul_(4.0)
        out = model(*_inputs(data))
    mask = torch.from_numpy(data.candidates)
    assert torch.all(out["concentration"] >= 0) and torch.all(out["sigma"] >= 0)
    assert torch.all((out["presence"][mask] >= 0) & (out["presence"][mask] <= 1))
    assert torch.all(out["concentration"] <= 1)  # an atomic fraction
    assert torch.all(torch.isfinite(out["concentration"])) and torch.all(torch.isfinite(out["sigma"]))


def test_paper_reference_size_matches_publication():
    """The paper reports about 0.24 M parameters for Conv 3→32→64→128, 8-head attention, MLP 128→256→256→V."""
    n = n_parameters(_model("paper"))
    assert 230_000 <= n <= 245_000, n


def test_default_defectnet_is_small():
    n = n_parameters(build_model(ModelConfig(), DEFAULT_GRID))
    assert 50_000 <= n <= 400_000, n


def test_prediction_does_not_depend_on_the_rest_of_the_batch(data):
    """Candidate padding (K = the batch's largest candidate list) must not leak into other samples."""
    model = _model()
    order = np.argsort(data.candidates.sum(1))
    small, big = order[0], order[-1]
    assert data.candidates[small].sum() < data.candidates[big].sum()
    with torch.no_grad():
        alone = model(*_inputs(data, [small]))["concentration"]
        together = model(*_inputs(data, [small, big]))["concentration"][:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-7)


def test_candidates_are_treated_as_a_set(data):
    """One query per candidate with shared weights: reordering the vocabulary permutes the outputs, nothing else."""
    model = _model(element_embedding=0)
    perm = np.random.default_rng(0).permutation(len(DOPANTS))
    vocab = tuple(DOPANTS[i] for i in perm)
    torch.manual_seed(0)
    other = build_model(model.config, DEFAULT_GRID, vocabulary=vocab).eval()
    state = {k: v for k, v in model.state_dict().items() if k not in ("dopant_feats", "dopant_mass")}
    other.load_state_dict(state, strict=False)
    x = _inputs(data)
    with torch.no_grad():
        a = model(*x)
        b = other(x[0], x[1], x[2], x[3][:, perm])
    for key in ("concentration", "sigma", "presence"):
        torch.testing.assert_close(a[key][:, perm], b[key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", PLAIN)
def test_seeded_construction_is_deterministic(data, arch):
    a, b, c = _model(arch, seed=7), _model(arch, seed=7), _model(arch, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    with torch.no_grad():
        torch.testing.assert_close(a(*_inputs(data))["concentration"], b(*_inputs(data))["concentration"],
                                   rtol=0, atol=0)


def test_predict_numpy_api(data):
    model = _model()
    model.meta = {"grid_id": DEFAULT_GRID.grid_id}
    res = model.predict(data.pristine[0], data.doped[0], {"Ga": 1, "As": 1}, ["Si", "Ge"])
    assert set(res) == {"Si", "Ge"}
    for v in res.values():
        assert set(v) == {"concentration", "uncertainty", "presence"}
        assert v["concentration"] >= 0 and v["uncertainty"] >= 0 and 0 < v["presence"] < 1
    many = model.predict(data.pristine[:3], data.doped[:3], data.composition[:3], [["Si"], ["Ge", "C"], ["O"]])
    assert [sorted(r) for r in many] == [["Si"], ["C", "Ge"], ["O"]]
    with pytest.raises(DefectnetError, match="vocabulary"):
        model.predict(data.pristine[0], data.doped[0], {"Si": 1}, ["Xe"])
    with pytest.raises(DefectnetError, match="grid"):
        model.predict(data.pristine[0][:320], data.doped[0][:320], {"Si": 1}, ["Ge"])
    with pytest.raises(DefectnetError, match="resample"):
        model.predict(data.pristine[0], data.doped[0], {"Si": 1}, ["Ge"], grid=EnergyGrid(e_max_mev=400.0))


def test_host_calibration_leaves_the_model_passed_in_unchanged(data):
    model = _model()
    model.sigma_scale.fill_(1.5)
    model.sigma_scale_unseen = 3.0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert host_calibration(model, seen=True) is model
    unseen = host_calibration(model, seen=False)
    assert float(unseen.sigma_scale) == 3.0 and unseen.conv[0].weight is model.conv[0].weight  # weights shared
    with torch.no_grad():
        wide, own = unseen(*_inputs(data)), model(*_inputs(data))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the σ scale too
    assert float(model.sigma_scale) == 1.5
    with torch.no_grad():  # the copy answers as the model would with the unseen scale in place
        model.sigma_scale.fill_(3.0)
        torch.testing.assert_close(model(*_inputs(data))["sigma"], wide["sigma"], rtol=0, atol=0)
    assert torch.all(wide["sigma"] >= own["sigma"]) and not torch.equal(wide["sigma"], own["sigma"])
    model.sigma_scale_unseen = float("nan")  # no unseen-host scale: the model itself
    assert host_calibration(model, seen=False) is model


def test_unknown_config_key_is_rejected():
    with pytest.raises(DefectnetError, match="unknown model config keys"):
        ModelConfig.from_dict({"arch": "defectnet", "n_layer": 3})
    with pytest.raises(DefectnetError, match="unknown architecture"):
        ModelConfig(arch="transformer")


@pytest.mark.parametrize("arch", ["defectnet", "paper"])
def test_channels_last_conv_stack_equals_the_conv1d_layers(arch):
    from defectnet.model.network import conv_stack

    model = _model(arch, seed=3)
    x = torch.randn(5, model.conv[0].in_channels, DEFAULT_GRID.n_bins, requires_grad=True)
    fast, ref = conv_stack(model.conv, x), model.conv(x)
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
    g_fast = torch.autograd.grad(fast.square().sum(), model.conv[0].weight)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), model.conv[0].weight)[0]
    torch.testing.assert_close(g_fast, g_ref, atol=1e-4, rtol=1e-3)


def test_registry_names_every_architecture_a_config_accepts():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
