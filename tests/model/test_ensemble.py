"""Ensembles: the mixture's quantiles, members answering as one, checkpoint round trip, refusals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from defectnet.errors import DefectnetError
from defectnet.model import checkpoint as ck
from defectnet.model.augment import Augment
from defectnet.model.conditioned import BasisTable
from defectnet.model.conditioned_train import ConditionedTrainConfig, predict_conditioned, train_conditioned
from defectnet.model.ensemble import Ensemble, combine, mixture_quantile
from defectnet.model.network import DefectNet
from defectnet.model.synthetic import make_synthetic

from .test_checkpoint_conditioned import GRID, SMALL, _bases


@pytest.fixture(scope="module")
def members():
    """Two tiny conditioned models of one recipe, other seeds and validation hosts, with their data and bases."""
    data = make_synthetic(4, 16, seed=5, grid=GRID)
    bases = _bases(data, np.random.default_rng(0))
    table = BasisTable(bases, data.vocabulary, GRID)
    idx, out = np.arange(len(data)), []
    for seed, val_host in ((0, 3), (1, 2)):
        cfg = ConditionedTrainConfig(model=SMALL, epochs=2, batch_size=16, max_minutes=1.0, augment=Augment(),
                                     threads=1, seed=seed)
        model, _ = train_conditioned(data, table, idx[(data.host_id != val_host)], idx[data.host_id == val_host], cfg,
                                     progress=False)
        names = [str(h) for h in data.host_names]
        model.meta["basis"] = ck.basis_requirements(bases.values(), GRID)
        model.meta["data"] = {"train_hosts": [n for i, n in enumerate(names) if i != val_host],
                              "val_hosts": [names[val_host]], "test_hosts": ["elsewhere"]}
        out.append(model)
    return data, table, out


def test_mixture_of_one_member_repeated_is_that_member():
    rng = torch.Generator().manual_seed(0)
    prob, mu, s = torch.rand(7, 5, generator=rng), torch.randn(7, 5, generator=rng), 0.2 + torch.rand(7, 5, generator=rng)
    loc = mu * 1.2 + np.log(0.02)  # DefectNet's mixture_quantile takes the standardised mean
    for level in (0.1587, 0.5, 0.8413):
        one = DefectNet.mixture_quantile(prob, mu, s, level)
        many = mixture_quantile(prob[None].expand(3, -1, -1), loc[None].expand(3, -1, -1), s[None].expand(3, -1, -1),
                                level)
        torch.testing.assert_close(many, one, rtol=1e-5, atol=1e-9)


def test_mixture_median_lies_between_the_members_medians():
    rng = torch.Generator().manual_seed(1)
    prob = 0.6 + 0.4 * torch.rand(4, 50, generator=rng)  # all members say present more often than not
    loc, s = -4 + torch.randn(4, 50, generator=rng), 0.1 + torch.rand(4, 50, generator=rng)
    each = torch.stack([mixture_quantile(prob[m:m + 1], loc[m:m + 1], s[m:m + 1], 0.5) for m in range(4)])
    mixed = mixture_quantile(prob, loc, s, 0.5)
    assert torch.all(mixed >= each.amin(0) * (1 - 1e-5)) and torch.all(mixed <= each.amax(0) * (1 + 1e-5))
    # members that disagree: the mixture is wider than the narrowest member
    hi, lo = mixture_quantile(prob, loc, s, 0.8413), mixture_quantile(prob, loc, s, 0.1587)
    assert torch.all(hi >= mixed) and torch.all(mixed >= lo)
    p0 = torch.tensor([[0.9], [0.1]])  # one says present, one absent: mass at zero 0.5 ≥ the level 0.5 -> 0
    assert float(mixture_quantile(p0, torch.full((2, 1), -4.0), torch.full((2, 1), 0.3), 0.5)[0]) == 0.0


def test_ensemble_answers_as_the_mixture_of_its_members(members):
    data, table, models = members
    ens = combine(models)
    idx = np.arange(len(data))
    e = predict_conditioned(ens, data, table, idx)
    each = [predict_conditioned(m, data, table, idx) for m in models]
    np.testing.assert_allclose(e["presence"], np.mean([o["presence"] for o in each], 0), rtol=1e-6)
    assert np.all(e["concentration"][~data.candidates] == 0) and np.all(e["sigma"][~data.candidates] == 0)
    lo = np.minimum(each[0]["concentration"], each[1]["concentration"])
    hi = np.maximum(each[0]["concentration"], each[1]["concentration"])
    both_present = (each[0]["concentration"] > 0) & (each[1]["concentration"] > 0)
    c = e["concentration"][both_present]
    assert np.all(c >= lo[both_present] * (1 - 1e-4)) and np.all(c <= hi[both_present] * (1 + 1e-4))
    # two copies of one member are that member
    same = combine([models[0], models[0]])
    one = predict_conditioned(same, data, table, idx)
    for key in ("concentration", "sigma", "presence"):
        np.testing.assert_allclose(one[key], each[0][key], rtol=1e-4, atol=1e-7)


def test_ensemble_checkpoint_round_trip(members, tmp_path):
    data, table, models = members
    ens = combine(models)
    path = ck.save_checkpoint(ens, tmp_path / "ensemble.pt")
    loaded = ck.load_model(path, arch="conditioned")
    assert isinstance(loaded, Ensemble) and loaded.config.ensemble == 2 and len(loaded.members) == 2
    names = sorted(str(h) for h in data.host_names)
    assert loaded.meta["data"]["train_hosts"] == names  # each member's validation host the other trained on
    assert loaded.meta["data"]["test_hosts"] == ["elsewhere"] and len(loaded.meta["data"]["members"]) == 2
    idx = np.arange(len(data))
    a, b = predict_conditioned(ens, data, table, idx), predict_conditioned(loaded, data, table, idx)
    for key in ("concentration", "sigma", "presence"):
        np.testing.assert_array_equal(a[key], b[key])


def test_ensemble_says_its_sigma_is_calibrated_on_held_out_hosts(members, tmp_path):
    from defectnet.analysis.estimators import calibration_note

    _, _, models = members
    loaded = ck.load_model(ck.save_checkpoint(combine(models), tmp_path / "e.pt"))
    assert loaded.sigma_scale_unseen == pytest.approx(np.mean([float(m.sigma_scale) for m in models]))
    assert "held out of training" in calibration_note(loaded, "Elsewhere", False)


def test_combine_refuses_members_that_differ(members):
    _, _, models = members
    with pytest.raises(DefectnetError, match="≥ 2"):
        combine(models[:1])
    other = DefectNet(replace(SMALL, arch="defectnet"), GRID, models[0].vocabulary, models[0].host_elements)
    other.meta = dict(models[0].meta)
    with pytest.raises(DefectnetError, match="model config"):
        combine([models[0], other])
    with pytest.raises(DefectnetError, match="single conditioned networks"):
        combine([other, other])
    with pytest.raises(DefectnetError, match="not trained as one"):
        combine(models).loss({}, None, None)
