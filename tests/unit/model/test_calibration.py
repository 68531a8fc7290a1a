"""The calibration map: from the ensemble's rank score to a fraud probability, and its reliability table."""

import json

import numpy as np
import pytest

from model.calibration import RELIABILITY_EDGES, fit_calibration, probability


def calibrated_sample(rng, n=40_000):
    """Scores in [0, 1) whose true fraud probability is score ** 4 (a rank scale, not a probability)."""
    score = rng.random(n)
    return score, rng.random(n) < score**4


def test_the_map_recovers_the_fraud_probability_behind_a_rank_score():
    rng = np.random.default_rng(0)
    score, y = calibrated_sample(rng)
    calibration = fit_calibration(score, y)
    assert calibration["method"] == "isotonic" and calibration["frauds"] == int(y.sum())
    grid = np.linspace(0.05, 0.95, 19)
    assert np.abs(probability(calibration, grid) - grid**4).max() < 0.06
    assert np.all(np.diff(probability(calibration, np.linspace(0, 1, 500))) >= 0)  # monotone in the score
    assert calibration["brier"] < calibration["brier_base_rate"]  # out of fold, it beats the base rate
    json.dumps(calibration)  # plain JSON for the metadata


def test_the_reliability_table_bins_every_event_and_compares_score_rate_and_probability():
    rng = np.random.default_rng(1)
    score, y = calibrated_sample(rng, 10_000)
    table = fit_calibration(score, y)["reliability"]
    assert sum(row["events"] for row in table) == len(score)
    assert [row["low"] for row in table] == pytest.approx(list(RELIABILITY_EDGES[:-1]), abs=1e-6)
    for row in table:
        inside = (score >= row["low"]) & ((score < row["high"]) | (row["high"] == 1.0))
        assert row["events"] == inside.sum()
        assert row["fraud_rate"] == pytest.approx(y[inside].mean(), rel=1e-5, abs=1e-9)
        assert row["low"] <= row["mean_score"] <= row["high"]
        assert row["probability"] == pytest.approx(row["fraud_rate"], abs=0.05)  # the map agrees with the bin


def test_too_few_frauds_give_a_table_and_a_reason_but_no_map():
    score = np.linspace(0, 1, 1000)
    y = np.zeros(1000, dtype=bool)
    y[-3:] = True
    calibration = fit_calibration(score, y)
    assert calibration["method"] is None and "too few" in calibration["why"]
    assert sum(row["events"] for row in calibration["reliability"]) == 1000
    assert np.isnan(probability(calibration, np.array([0.5]))).all()
    with pytest.raises(ValueError):
        fit_calibration(score, y[:10])
