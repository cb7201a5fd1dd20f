"""Metrics on hand-made cases, and the baselines' mask semantics."""

from __future__ import annotations

import numpy as np
import pytest

from defectnet.grid import DEFAULT_GRID
from defectnet.model.baselines import BASELINES
from defectnet.model.synthetic import make_synthetic
from defectnet.model.evaluate import compute_metrics, per_sample_mse

# Two samples, four vocabulary columns. Sample 0: dopants col 0 (5 at.%) and col 1 (0.5 at.%),
# distractor col 2. Sample 1: dopant col 3 (2 at.%), distractor col 0.
TRUE = np.array([[0.05, 0.005, 0.0, 0.0], [0.0, 0.0, 0.0, 0.02]])
CAND = np.array([[True, True, True, False], [True, False, False, True]])


def test_perfect_prediction():
    m = compute_metrics(TRUE, TRUE, CAND)
    assert m["mae_at_pct"] == 0 and m["rmse_at_pct"] == 0 and m["r2"] == 1
    assert m["detection"]["f1"] == 1 and m["distractor_mean_at_pct"] == 0


def test_hand_computed_case():
    pred = np.array([[0.04, 0.0005, 0.002, 0.0], [0.0, 0.0, 0.0, 0.03]])
    m = compute_metrics(pred, TRUE, CAND, vocabulary=("H", "Li", "Be", "B"))
    errors = np.array([0.01, 0.0045, 0.002, 0.0, 0.01])  # the five candidate entries
    assert m["n_candidates"] == 5 and m["n_true"] == 3 and m["n_distractors"] == 2
    assert m["mae_at_pct"] == pytest.approx(100 * errors.mean())
    assert m["rmse_at_pct"] == pytest.approx(100 * np.sqrt(np.mean(errors**2)))
    t = np.array([0.05, 0.005, 0.0, 0.0, 0.02])
    assert m["r2"] == pytest.approx(1 - np.sum(errors**2) / np.sum((t - t.mean()) ** 2))
    assert m["mae_true_at_pct"] == pytest.approx(100 * np.mean([0.01, 0.0045, 0.01]))
    assert m["distractor_mean_at_pct"] == pytest.approx(100 * 0.002 / 2)
    # Detected at 0.1 at.%: col 0 (TP), col 1 0.05 at.% (FN), distractor 0.2 at.% (FP), col 3 (TP).
    d = m["detection"]
    assert (d["tp"], d["fp"], d["fn"]) == (2, 1, 1)
    assert d["precision"] == pytest.approx(2 / 3) and d["recall"] == pytest.approx(2 / 3)
    # ≥ 1 at.%: the 0.5 at.% dopant is left out, so no FN remains.
    d1 = m["detection_ge1pct"]
    assert (d1["tp"], d1["fp"], d1["fn"]) == (2, 1, 0) and d1["f1"] == pytest.approx(0.8)
    assert m["by_decade"]["<1 at.%"]["n"] == 1 and m["by_decade"]["1–10 at.%"]["n"] == 2
    assert m["by_n_dopants"]["2"]["n_samples"] == 1 and m["by_n_dopants"]["1"]["n_samples"] == 1
    assert m["per_element"]["H"] == pytest.approx({"n_true": 1, "n_distractor": 1, "mae_true_at_pct": 1.0,
                                                   "recall": 1.0, "distractor_mean_at_pct": 0.0})
    assert "B" in m["per_element"] and m["per_element"]["Be"]["n_true"] == 0


def test_f1_is_undefined_without_positives_and_zero_when_all_are_missed():
    true = np.array([[0.005, 0.0]])  # one dopant below 1 at.%: no positive for detection_ge1pct
    cand = np.array([[True, True]])
    m = compute_metrics(np.array([[0.005, 0.002]]), true, cand)
    assert np.isnan(m["detection_ge1pct"]["f1"]) and m["detection_ge1pct"]["fp"] == 1
    missed = compute_metrics(np.array([[0.0, 0.002]]), true, cand)["detection"]
    assert (missed["tp"], missed["fn"]) == (0, 1) and missed["f1"] == 0.0


def test_reference_scores_are_what_knowing_nothing_gets():
    # 3 of the 5 candidates are true: calling all present gives precision 3/5, recall 1.
    m = compute_metrics(TRUE, TRUE, CAND)
    assert m["reference"]["f1_all_present"] == pytest.approx(2 * 0.6 / 1.6)
    assert m["reference"]["mae_zero_at_pct"] == pytest.approx(100 * (0.05 + 0.005 + 0.02) / 5)
    everything = compute_metrics(np.where(CAND, 0.01, 0.0), TRUE, CAND)
    assert everything["detection"]["f1"] == pytest.approx(m["reference"]["f1_all_present"])
    assert compute_metrics(np.zeros_like(TRUE), TRUE, CAND)["mae_at_pct"] == pytest.approx(m["reference"]["mae_zero_at_pct"])


def test_detection_auc_ranks_true_dopants_over_distractors():
    assert compute_metrics(TRUE, TRUE, CAND)["detection"]["auc"] == 1.0
    assert compute_metrics(np.where(CAND, 0.01, 0.0), TRUE, CAND)["detection"]["auc"] == 0.5  # all tied
    # one distractor (0.3 at.%) outranks the 0.2 at.% dopant: 5 of the 6 (true, distractor) pairs are in order
    pred = np.array([[0.04, 0.002, 0.003, 0.0], [0.0, 0.0, 0.0, 0.03]])
    assert compute_metrics(pred, TRUE, CAND)["detection"]["auc"] == pytest.approx(5 / 6)


def test_grouped_breakdown_is_each_groups_own_metrics():
    pred = np.array([[0.04, 0.0005, 0.002, 0.0], [0.0, 0.0, 0.0, 0.03]])
    m = compute_metrics(pred, TRUE, CAND, groups={"host": ["A", "B"]})
    a, b = m["by_host"]["A"], m["by_host"]["B"]
    assert a["n_samples"] == b["n_samples"] == 1 and (a["n"], b["n"]) == (3, 2)
    assert a["mae_at_pct"] == pytest.approx(100 * np.mean([0.01, 0.0045, 0.002]))
    assert b["mae_at_pct"] == pytest.approx(100 * np.mean([0.0, 0.01]))
    # A: one TP, one FN (0.05 at.%), one FP distractor; B: one TP, its distractor at 0.
    assert a["f1"] == pytest.approx(0.5) and b["f1"] == 1.0 and a["f1_ge1pct"] == pytest.approx(2 / 3)
    assert a["distractor_mean_at_pct"] == pytest.approx(0.2) and b["distractor_mean_at_pct"] == 0.0
    # one group holding every sample reproduces the overall numbers
    whole = compute_metrics(pred, TRUE, CAND, groups={"family": ["x", "x"]})["by_family"]["x"]
    assert whole["mae_at_pct"] == pytest.approx(m["mae_at_pct"]) and whole["f1"] == pytest.approx(m["detection"]["f1"])


def test_threshold_is_inclusive_and_configurable():
    pred = np.where(CAND, 0.001, 0.0)
    m = compute_metrics(pred, TRUE, CAND)
    assert m["detection"]["tp"] == 3 and m["detection"]["fp"] == 2
    m = compute_metrics(pred, TRUE, CAND, threshold=0.0011)
    assert m["detection"]["tp"] == 0 and m["detection"]["f1"] == 0


def test_calibration_coverage():
    pred = TRUE + np.array([[0.009, 0.001, 0.0, 0.0], [0.0, 0.0, 0.0, -0.004]])
    sigma = np.where(CAND, 0.005, 0.0)
    m = compute_metrics(pred, TRUE, CAND, sigma=sigma, presence=np.where(CAND, 0.9, 0.0))
    c = m["calibration"]
    assert c["coverage_1sigma_true"] == pytest.approx(2 / 3)  # errors 0.009 > σ, 0.001 and 0.004 ≤ σ
    assert c["coverage_2sigma_true"] == pytest.approx(1.0)
    assert c["coverage_1sigma_all"] == pytest.approx(4 / 5)
    assert c["presence_brier"] == pytest.approx((3 * 0.1**2 + 2 * 0.9**2) / 5)
    assert "calibration" not in compute_metrics(pred, TRUE, CAND, sigma=np.zeros_like(sigma))


def test_per_sample_mse():
    pred = TRUE.copy()
    pred[1, 3] += 0.01
    assert per_sample_mse(pred, TRUE, CAND) == pytest.approx([0.0, 0.01**2 / 2])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_follow_the_mask(name):
    d = make_synthetic(4, 15, seed=4)
    kw = {"max_iter": 20, "n_pool": 20} if name == "gbm" else {}
    est = BASELINES[name](DEFAULT_GRID.widths, **kw)
    assert est.fit(d.pristine[:40], d.doped[:40], d.composition[:40], d.candidates[:40], d.targets[:40]) is est
    pred = est.predict(d.pristine[40:], d.doped[40:], d.composition[40:], d.candidates[40:])
    assert pred.shape == d.targets[40:].shape
    assert np.all(pred[~d.candidates[40:]] == 0) and np.all(pred >= 0)
    assert np.any(pred[d.candidates[40:]] > 0)
