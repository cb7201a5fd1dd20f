"""defectnet.analysis: the estimators behind one protocol, their registry, and the frozen Prediction's JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from defectnet.analysis.estimators import (ESTIMATORS, CandidateEstimate, ConditionedEstimator, DopantEstimate,
                                           Estimator, MergeEstimator, NetworkEstimator, RefineEstimator,
                                           UnmixEstimator, make_estimator)
from defectnet.analysis.result import Message, Prediction
from defectnet.analysis.spectra import AlignedSpectra
from defectnet.errors import DefectnetError
from defectnet.predict import predict_defects

EX = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
CANDIDATES = ["Si", "Zn", "Be", "C"]


@pytest.fixture(scope="module")
def unmixed():
    """The README's basis example read by the unmixing alone: its Prediction."""
    return predict_defects("GaAs", EX / "doped.csv", pristine=EX / "pristine.csv", basis=EX / "basis.npz",
                           candidates=CANDIDATES, method="unmix", truth=EX / "meta.json")


@pytest.fixture(scope="module")
def spectra(unmixed):
    return AlignedSpectra(unmixed.pristine, unmixed.doped, "GaAs", {"Ga": 0.5, "As": 0.5}, "gpdos")


@pytest.fixture(scope="module")
def basis():
    from defectnet.unmix import SignatureBasis

    return SignatureBasis.load(EX / "basis.npz")


def _check(est, name: str):
    assert isinstance(est, DopantEstimate) and est.estimator == name
    assert list(est.candidates) == CANDIDATES
    for c in est.candidates.values():
        assert isinstance(c, CandidateEstimate)
        assert 0.0 <= c.concentration <= 1.0 and c.uncertainty >= 0.0 and 0.0 <= c.presence <= 1.0
    assert all(isinstance(m, Message) for m in est.messages)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.estimator = "other"


def test_the_registry_names_every_estimator_and_refuses_an_unknown_one(basis):
    assert set(ESTIMATORS) == {"network", "conditioned", "unmix", "refine", "merge"}
    assert all(cls.name == name for name, cls in ESTIMATORS.items())
    est = make_estimator("unmix", basis=basis, stretch=0.1)
    assert isinstance(est, UnmixEstimator) and isinstance(est, Estimator) and est.stretch == 0.1
    with pytest.raises(DefectnetError) as err:
        make_estimator("nnls", basis=basis)
    assert str(err.value) == "unknown estimator 'nnls'; expected one of network, conditioned, unmix, refine, merge"


def test_the_unmixing_is_unmix_typed(spectra, basis, unmixed):
    from defectnet.unmix import unmix

    est = UnmixEstimator(basis).estimate(spectra, CANDIDATES)
    _check(est, "unmix")
    by_hand = unmix(spectra.pristine.values, spectra.doped.values, basis, kind="gpdos", candidates=CANDIDATES)
    assert est.fit["residual_fraction"] == by_hand.fit["residual_fraction"]
    for el in CANDIDATES:
        assert est.candidates[el].concentration == by_hand[el]["concentration"]
    assert {m.code for m in est.messages} >= {"explained"}
    assert est.model["arch"] == "unmix" and est.model["method"] == "unmix"
    # the same numbers predict reported
    assert {r["element"]: r["concentration"] for r in unmixed.rows} == \
        {el: c.concentration for el, c in est.candidates.items()}


def test_the_networks_and_the_merge_return_the_typed_estimate(spectra, basis):
    plain = NetworkEstimator().estimate(spectra, CANDIDATES)
    _check(plain, "network")
    assert plain.fit is None and plain.model["path"] == "shipped"
    assert plain.messages[0].code == "calibration"
    conditioned = ConditionedEstimator(basis).estimate(spectra, CANDIDATES)
    _check(conditioned, "conditioned")
    assert conditioned.model["method"] == "conditioned" and conditioned.model["basis_file"] == "in memory"
    merged = MergeEstimator(UnmixEstimator(basis)).estimate(spectra, CANDIDATES)
    _check(merged, "merge")
    assert merged.model["arch"] == "unmix+defectnet" and merged.model["method"] == "merge"  # GaAs: a training host
    assert merged.messages[-1].code == "merged" and merged.fit is not None


def test_refine_returns_the_typed_estimate(spectra, basis):
    est = RefineEstimator(basis, iterations=1).estimate(spectra, CANDIDATES)
    _check(est, "refine")
    assert est.messages[0].code == "refined" and est.fit["model"] == "refined"
    assert "from the unmixing's answer" in est.messages[0].text


def test_refine_from_the_conditioned_answer(spectra, basis):
    """Started from the network's answer when its synthesis is closer; a dilute answer is left as it is."""
    conditioned = ConditionedEstimator(basis)
    first = conditioned.estimate(spectra, CANDIDATES)
    est = RefineEstimator(basis, iterations=1, start=conditioned).estimate(spectra, CANDIDATES)
    _check(est, "refine")
    assert est.model["method"] == "conditioned+refine" and est.model["arch"] == "conditioned"
    start = {el: c.concentration for el, c in first.candidates.items()}
    began_there = est.fit["start"] == pytest.approx(start)
    assert began_there or est.fit["start"] == est.fit["unmixed"]
    assert ("the conditioned network's answer" in est.messages[0].text) == began_there
    total = sum(start.values())  # the example's mix is dilute (~2.7 %): above its total nothing is refined
    kept = RefineEstimator(basis, iterations=1, start=conditioned, from_total=total + 0.01).estimate(spectra, CANDIDATES)
    assert kept.candidates == first.candidates and kept.messages[-1].code == "not-refined"
    assert kept.fit is None and kept.estimator == "conditioned"
    held = RefineEstimator(basis, iterations=1, start=conditioned, hold_absent=True).estimate(spectra, CANDIDATES)
    absent = [el for el, c in first.candidates.items() if c.presence < 0.5]
    assert all(held.candidates[el].concentration == 0.0 for el in absent)
    assert ("held at 0" in held.messages[0].text) == bool(absent)


def test_a_prediction_is_frozen_and_its_json_round_trips(unmixed, tmp_path):
    with pytest.raises(dataclasses.FrozenInstanceError):
        unmixed.rows = ()
    text = unmixed.to_json()
    back = Prediction.from_json(text)
    assert back.to_json() == text
    assert back.table() == unmixed.table() and back.config == unmixed.config
    assert back.notes == unmixed.notes and back.messages == unmixed.messages and back.trusted == unmixed.trusted
    assert Prediction.from_json(unmixed.write_json(tmp_path / "p.json").read_text()).to_json() == text
    d = json.loads(text)
    assert d["notes"] == list(unmixed.notes) and d["warnings"] == list(unmixed.warnings)
    assert [m["text"] for m in d["messages"] if m["level"] == "note"] == d["notes"]
    with pytest.raises(DefectnetError, match="not a prediction written by defectnet"):
        Prediction.from_json(json.dumps({"host": "GaAs"}))


def test_messages_carry_a_code_and_a_level(unmixed):
    codes = [m.code for m in unmixed.messages]
    assert codes[0] == "answered-by" and "explained" in codes
    assert all(m.level in ("note", "warning") and m.code and m.text for m in unmixed.messages)
    assert unmixed.notes[0].startswith("analysis by synthesis")
    with pytest.raises(DefectnetError, match="unknown message level 'error'"):
        Message("error", "x", "y")


def test_the_plain_network_doubts_what_no_basis_can_check(spectra):
    from types import SimpleNamespace

    from defectnet.analysis.estimators import UNCHECKED_TOTAL, unchecked_network

    model = SimpleNamespace(meta={"metrics": {"test_ood": {"mae_at_pct": 2.06}}})
    assert unchecked_network(model, "GaAs", True, UNCHECKED_TOTAL - 1e-6) == []
    assert unchecked_network(model, "GaAs", None, 0.02) == []  # unknown: the calibration note says so
    new = unchecked_network(model, "BAs", False, 0.02)
    assert [m.code for m in new] == ["host-not-trained"] and new[0].level == "warning" and "2.06" in new[0].text
    large = unchecked_network(model, "GaAs", True, 0.12)
    assert [m.code for m in large] == ["unchecked-total"] and "12.0 at.%" in large[0].text
    # the README example (2.7 at.% in truth) on a training host: answered, trusted, no way out suggested
    plain = NetworkEstimator().estimate(spectra, CANDIDATES)
    assert plain.model["host_in_training"] is True
    assert not [m for m in plain.messages if m.level == "warning"]
    assert "basis-suggested" not in {m.code for m in plain.messages}


def test_the_conditioned_route_refines_by_default_when_the_basis_can_synthesise(basis):
    """``refine=None`` (auto): the conditioned answer refined as AUTO_REFINE says, absent candidates held;
    ``refine=0``: the network alone; a basis without host and patches: the network, with a note."""
    from defectnet.analysis.config import AUTO_REFINE, PredictConfig
    from defectnet.analysis.routes import plan_prediction

    def plan(config, b=basis):
        return plan_prediction("GaAs", config, basis=b, pristine_given=True)

    auto = plan(PredictConfig(candidates=CANDIDATES))
    assert isinstance(auto.estimator, RefineEstimator) and isinstance(auto.estimator.start, ConditionedEstimator)
    assert (auto.estimator.iterations, auto.estimator.from_total) == (AUTO_REFINE["iterations"],
                                                                      AUTO_REFINE["from_total"])
    assert auto.estimator.hold_absent
    assert isinstance(plan(PredictConfig(candidates=CANDIDATES, refine=0)).estimator, ConditionedEstimator)
    asked = plan(PredictConfig(candidates=CANDIDATES, refine=2)).estimator
    assert asked.iterations == 2 and asked.from_total == 0.0
    bare = plan(PredictConfig(candidates=CANDIDATES), dataclasses.replace(basis, synthesis={}))
    assert isinstance(bare.estimator, ConditionedEstimator) and [m.code for m in bare.after] == ["not-refined"]
    # the unmixing is not refined unasked
    assert isinstance(plan(PredictConfig(candidates=CANDIDATES, method="unmix")).estimator, UnmixEstimator)
    assert not isinstance(plan(PredictConfig(candidates=CANDIDATES, method="unmix")).estimator, RefineEstimator)
