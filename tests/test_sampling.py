"""Tests of the seeded co-doping sampler (synthetic records: no pymatgen needed)."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from defectnet.errors import DefectnetError
from defectnet.recommend import DopantRecord
from defectnet.sampling import DopingScenario, SamplerConfig, sample_candidates, sample_scenario

GAAS = {"Ga": 1, "As": 1}


def _records(pairs):
    return [DopantRecord(d, s, score, "periodic") for d, s, score in pairs]


@pytest.fixture(scope="module")
def gaas_records():
    return _records([
        ("Al", "Ga", 0.98), ("Zn", "Ga", 0.97), ("Ge", "Ga", 0.96), ("Si", "Ga", 0.81),
        ("Be", "Ga", 0.75), ("Mg", "Ga", 0.57), ("In", "Ga", 0.54), ("Cd", "Ga", 0.47),
        ("Ge", "As", 1.0), ("Se", "As", 1.0), ("Si", "As", 0.91), ("P", "As", 0.81),
        ("S", "As", 0.75), ("Te", "As", 0.59), ("C", "As", 0.50), ("Sb", "As", 0.55),
    ])


@pytest.fixture(scope="module")
def many(gaas_records):
    rng = np.random.default_rng(2024)
    return [sample_scenario(gaas_records, GAAS, SamplerConfig(), rng) for _ in range(1500)]


def _site_sums(scenario):
    sums = defaultdict(float)
    for _, site, conc in scenario.dopants:
        sums[site] += conc
    return sums


def test_counts_in_range(many):
    counts = np.bincount([len(s.dopants) for s in many], minlength=7)
    assert counts[0] == 0 and counts[1:].min() > 150  # every count 1..6 occurs (≈ 250 each)
    assert all(1 <= len(s.distractors) <= 4 for s in many)


def test_concentrations_and_bounds(many):
    config = SamplerConfig()
    for s in many:
        for _, _, conc in s.dopants:
            assert config.conc_range[0] <= conc <= config.conc_range[1]
        assert s.total_concentration <= config.max_total + 1e-12
        for site, total in _site_sums(s).items():
            assert total <= GAAS[site] / sum(GAAS.values()) + 1e-12


def test_single_dopant_concentration_is_log_uniform(gaas_records):
    config = SamplerConfig(n_dopants=(1, 1))
    rng = np.random.default_rng(7)
    logs = np.log10([sample_scenario(gaas_records, GAAS, config, rng).dopants[0][2] for _ in range(3000)])
    lo, hi = np.log10(config.conc_range)
    # Uniform in log10 c on [lo, hi]: mean at the midpoint, std = width / sqrt(12).
    assert abs(logs.mean() - (lo + hi) / 2) < 0.03
    assert abs(logs.std() - (hi - lo) / np.sqrt(12)) < 0.03


def test_scenario_invariants(many, gaas_records):
    recommended = {(r.dopant, r.site) for r in gaas_records}
    for s in many:
        elements = [d for d, _, _ in s.dopants]
        assert len(elements) == len(set(elements))
        assert all(d != site for d, site, _ in s.dopants)
        assert all((d, site) in recommended for d, site, _ in s.dopants)
        assert not set(s.distractors) & set(elements)
        assert set(s.distractors) <= {r.dopant for r in gaas_records}
        assert set(s.candidates) == set(elements) | set(s.distractors)
        assert len(s.candidates) == len(set(s.candidates))


def test_same_seed_same_scenario(gaas_records):
    config = SamplerConfig()
    a = sample_scenario(gaas_records, GAAS, config, np.random.default_rng(11))
    b = sample_scenario(gaas_records, GAAS, config, np.random.default_rng(11))
    assert a == b
    # The recorded seed rebuilds the scenario, whatever the record order.
    assert sample_scenario(list(reversed(gaas_records)), GAAS, config, a.seed) == a
    assert sample_scenario(gaas_records, GAAS, config, 5) == sample_scenario(gaas_records, GAAS, config, 5)
    seeds = {sample_scenario(gaas_records, GAAS, config, s).to_dict()["seed"] for s in range(20)}
    assert seeds == set(range(20))


def test_counts_capped_by_availability():
    records = _records([("Al", "Ga", 0.9), ("Zn", "Ga", 0.8), ("Al", "As", 0.1)])
    config = SamplerConfig(n_dopants=(4, 6), n_distractors=(2, 4))
    for seed in range(30):
        s = sample_scenario(records, GAAS, config, seed)
        assert sorted(s.elements) == ["Al", "Zn"]  # only two distinct dopants exist
        assert s.distractors == ()
        assert s.candidates == ("Al", "Zn")  # atomic-number order (13, 30)


def test_small_site_bounds_and_scaling_fallback():
    # Ga holds 1 atom in 500: share 0.002 — exactly one dopant at the minimum fits.
    records = _records([("Al", "Ga", 1.0), ("In", "Ga", 1.0), ("Sb", "As", 1.0), ("P", "As", 1.0)])
    host = {"Ga": 1, "As": 499}
    for seed in range(50):
        s = sample_scenario(records, host, SamplerConfig(), seed)
        assert _site_sums(s).get("Ga", 0.0) <= 1 / 500 + 1e-12
    # Six dopants on a site holding 1.2 %: only the point "all at 0.2 %" is feasible,
    # so resampling fails and the draws are scaled down to it.
    six = _records([(d, "Ga", 1.0) for d in ("B", "Al", "In", "Zn", "Cd", "Si")])
    s = sample_scenario(six, {"Ga": 6, "As": 494}, SamplerConfig(n_dopants=(6, 6)), 3)
    concs = np.array([c for _, _, c in s.dopants])
    assert len(concs) == 6
    np.testing.assert_allclose(concs, 0.002, rtol=1e-9)
    assert concs.sum() <= 0.012 + 1e-12


def test_sites_too_small_for_the_minimum_are_skipped():
    records = _records([("Al", "Ga", 1.0), ("Sb", "As", 0.1)])
    s = sample_scenario(records, {"Ga": 1, "As": 999}, SamplerConfig(), 0)  # Ga share 0.001
    assert s.dopants[0][:2] == ("Sb", "As") and len(s.dopants) == 1


def test_sample_candidates(gaas_records):
    rng = np.random.default_rng(0)
    candidates, distractors = sample_candidates(["Si", "Zn"], gaas_records, 3, rng)
    assert len(distractors) == 3 and not {"Si", "Zn"} & set(distractors)
    assert set(candidates) == {"Si", "Zn"} | set(distractors)
    candidates, distractors = sample_candidates(["Si"], gaas_records, (0, 0), rng)
    assert candidates == ("Si",) and distractors == ()
    _, distractors = sample_candidates(["Si"], gaas_records, 100, rng)
    assert len(distractors) == len({r.dopant for r in gaas_records}) - 1


def test_scenario_round_trip(many):
    for s in many[:50]:
        assert DopingScenario.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def _scenario(dopants, candidates, distractors, **extra):
    return {"dopants": dopants, "candidates": candidates, "distractors": distractors, **extra}


@pytest.mark.parametrize(
    "data, message",
    [
        (_scenario([["Ga", "Ga", 0.01]], ["Ga"], [], seed=0), "own element"),
        (_scenario([["Si", "Ga", 0.01], ["Si", "As", 0.01]], ["Si"], [], seed=0), "appears twice"),
        (_scenario([["Si", "Ga", 0.01]], ["Si", "Zn"], ["Si"], seed=0), "are true dopants"),
        (_scenario([["Si", "Ga", 0.01]], ["Si"], ["Zn"], seed=0), "candidates"),
        (_scenario([["Si", "Ga", 1.5]], ["Si"], [], seed=0), "not in"),
        (_scenario([["Si", "Ga", 0.01]], ["Si"], []), "needs keys"),
    ],
)
def test_bad_scenarios_raise(data, message):
    with pytest.raises(DefectnetError, match=message):
        DopingScenario.from_dict(data)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_dopants": (0, 3)}, "n_dopants must be >= 1"),
        ({"n_dopants": (4, 2)}, "'n_dopants': expected min <= max"),
        ({"n_dopants": (1.5, 3)}, "'n_dopants': expected an integer"),
        ({"n_dopants": "1-6"}, "pair"),
        ({"n_dopants": (1, 2, 3)}, "pair"),
        ({"conc_range": (0.0, 0.1)}, "conc_range must lie in"),
        ({"conc_range": (0.1, 1.5)}, "conc_range must lie in"),
        ({"conc_range": (0.3, 0.1)}, "'conc_range': expected min <= max"),
        ({"max_total": 0.0}, "max_total must be in"),
        ({"max_total": 1.5}, "max_total must be in"),
        ({"max_total": "0.3"}, "'max_total': expected a number"),
        ({"max_total": 0.01}, "cannot hold 6 dopants"),
        ({"n_distractors": (-1, 2)}, "n_distractors must be >= 0"),
        ({"supercell_atoms": (500, 433)}, "'supercell_atoms': expected min <= max"),
        ({"supercell_atoms": (0, 10)}, "supercell_atoms must be >= 1"),
        ({"conc_range": (0.0005, 0.25)}, "less than half an atom"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(DefectnetError, match=message) as info:
        SamplerConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_round_trip_and_unknown_keys():
    config = SamplerConfig(n_dopants=[2, 3], conc_range=[0.01, 0.1])
    assert config.n_dopants == (2, 3)  # lists from JSON become tuples
    assert SamplerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(DefectnetError, match="unknown SamplerConfig keys"):
        SamplerConfig.from_dict({"n_dopant": (1, 2)})


def test_bad_inputs_raise(gaas_records):
    config = SamplerConfig()
    with pytest.raises(DefectnetError, match="not in host_counts"):
        sample_scenario(gaas_records, {"Ga": 1, "N": 1}, config, 0)
    with pytest.raises(DefectnetError, match="no recommended dopant"):
        sample_scenario([], GAAS, config, 0)
    with pytest.raises(DefectnetError, match="positive integer"):
        sample_scenario(gaas_records, {"Ga": 1, "As": 0}, config, 0)
    with pytest.raises(DefectnetError, match="unknown element"):
        sample_scenario(gaas_records, {"Ga": 1, "As": 1, "Qq": 1}, config, 0)
    with pytest.raises(DefectnetError, match="rng must be"):
        sample_scenario(gaas_records, GAAS, config, -1)
    with pytest.raises(DefectnetError, match="SamplerConfig"):
        sample_scenario(gaas_records, GAAS, {"n_dopants": (1, 2)}, 0)


def test_scenario_order_is_canonical():
    a = DopingScenario((("Zn", "Ga", 0.01), ("Si", "Ga", 0.02)), ("Zn", "Si", "B"), ("B",), 1)
    b = DopingScenario.from_dict(_scenario([["Si", "Ga", 0.02], ["Zn", "Ga", 0.01]], ["B", "Si", "Zn"], ["B"], seed=1))
    assert a == b
    assert a.candidates == ("B", "Si", "Zn") and a.elements == ("Si", "Zn")
    with pytest.raises(DefectnetError, match="seed must be"):
        DopingScenario((("Si", "Ga", 0.02),), ("Si",), (), -3)
