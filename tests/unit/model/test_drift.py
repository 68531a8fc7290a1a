import dataclasses
import pickle

import numpy as np
import pytest

from model.drift import SCORE, DriftEvent, DriftMonitor

FEATURES = ("amt_to_card_mean", "count_24h", "night")
NAMES = ("log_amt", "amt_to_card_mean", "count_24h", "night")
BATCH = 500


def batch(rng, score_shift=0.0, amount_scale=1.0):
    """One micro-batch: scores, and feature rows in the column order NAMES."""
    score = np.clip(rng.beta(2.0, 8.0, BATCH) + score_shift, 0.0, 1.0)
    X = np.column_stack(
        [
            rng.normal(3.5, 1.0, BATCH),
            rng.lognormal(0.0, 0.5, BATCH) * amount_scale,
            rng.poisson(4.0, BATCH),
            rng.random(BATCH) < 0.25,
        ]
    ).astype(np.float64)
    return score, X


def run(monitor, rng, n_batches, first_batch=0, **shift):
    found = []
    for i in range(first_batch, first_batch + n_batches):
        found += monitor.update(*batch(rng, **shift), NAMES, event_time_max=i)
    return found


def test_a_stationary_stream_of_200_batches_raises_no_drift():
    monitor = DriftMonitor(FEATURES)
    assert run(monitor, np.random.default_rng(11), 200) == []
    assert monitor.n_batches_ == 200
    assert monitor.quantities == (SCORE, *FEATURES)


@pytest.mark.parametrize(
    ("quantity", "shift"),
    [(SCORE, {"score_shift": 0.02}), ("amt_to_card_mean", {"amount_scale": 1.1})],
)
def test_a_mean_shift_is_detected_within_a_bounded_number_of_batches(quantity, shift):
    rng = np.random.default_rng(12)
    monitor = DriftMonitor(FEATURES)
    assert run(monitor, rng, 100) == []
    found = run(monitor, rng, 30, first_batch=100, **shift)  # ~4 standard errors of a batch mean
    assert [e.quantity for e in found] == [quantity]
    event = found[0]
    assert 100 <= event.detected_at_event_time < 120  # ~10 batches across seeds
    if quantity == SCORE:
        assert event.mean_before == pytest.approx(0.2, abs=0.005)
        assert event.mean_after - event.mean_before == pytest.approx(0.02, abs=0.005)
    else:
        assert event.mean_after / event.mean_before == pytest.approx(1.1, abs=0.05)


def test_drift_events_are_frozen_and_the_monitor_pickles_mid_stream():
    rng = np.random.default_rng(13)
    monitor = DriftMonitor(FEATURES)
    run(monitor, rng, 120, score_shift=0.0)
    restored = pickle.loads(pickle.dumps(monitor))
    shifted = [batch(rng, score_shift=0.03) for _ in range(30)]
    original_events = [e for i, b in enumerate(shifted) for e in monitor.update(*b, NAMES, 120 + i)]
    restored_events = [e for i, b in enumerate(shifted) for e in restored.update(*b, NAMES, 120 + i)]
    assert original_events == restored_events != []
    with pytest.raises(dataclasses.FrozenInstanceError):
        original_events[0].quantity = "other"  # type: ignore[misc]


def test_empty_batches_nan_columns_and_unknown_features():
    monitor = DriftMonitor(["count_24h"], monitor_score=False)
    assert monitor.update(np.empty(0), np.empty((0, 4)), NAMES, 0) == []
    score, X = batch(np.random.default_rng(14))
    X[:, NAMES.index("count_24h")] = np.nan
    assert monitor.update(score, X, NAMES, 1) == []  # nothing to learn from, nothing fed
    assert monitor.monitors_["count_24h"].warmup_means == []
    with pytest.raises(ValueError, match="count_24h"):
        monitor.update(score, X[:, :1], ["log_amt"], 2)


def test_a_quantity_constant_during_warm_up_is_watched_in_its_own_units():
    monitor = DriftMonitor(["night"], monitor_score=False, warmup_batches=5)
    rng = np.random.default_rng(15)
    quiet = np.zeros((BATCH, 1))
    found = [e for i in range(40) for e in monitor.update(rng.random(BATCH), quiet, ["night"], i)]
    found += [e for i in range(40, 100) for e in monitor.update(rng.random(BATCH), quiet + 1.0, ["night"], i)]
    assert [(e.quantity, e.mean_before, e.mean_after) for e in found][:1] == [("night", 0.0, 1.0)]
    assert isinstance(found[0], DriftEvent) and 40 < found[0].detected_at_event_time < 100
