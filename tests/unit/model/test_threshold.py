import pickle

import numpy as np
import pytest

from model.threshold import AlertBudget

EVENTS_PER_DAY = 4000
BUDGET = 25.0


def synthetic_days(rng, first_day, n_days, beta_a=2.0, beta_b=8.0, per_day=EVENTS_PER_DAY):
    """Scores of a stable stream, in day order; each day's event count is Poisson."""
    counts = rng.poisson(per_day, size=n_days)
    days = np.repeat(np.arange(first_day, first_day + n_days), counts)
    return rng.beta(beta_a, beta_b, size=len(days)), days


def replay(budget, scores, days, batch=1000):
    """Flag each micro-batch with the threshold known before it, then let the budget observe it."""
    flagged = np.empty(len(scores), dtype=bool)
    for start in range(0, len(scores), batch):
        part = slice(start, start + batch)
        flagged[part] = scores[part] >= budget.threshold()
        budget.observe(scores[part], days[part])
    return flagged


def realised_alerts_per_day(flagged, days):
    return np.bincount(days - days.min(), weights=flagged).mean()


def test_realised_alerts_per_day_is_within_15_percent_of_the_budget_on_a_stable_stream():
    rng = np.random.default_rng(1)
    budget = AlertBudget.from_training(*synthetic_days(rng, 0, 14), alerts_per_day=BUDGET)
    scores, days = synthetic_days(rng, 14, 30)
    flagged = replay(budget, scores, days)
    assert realised_alerts_per_day(flagged, days) == pytest.approx(BUDGET, rel=0.15)
    assert budget.expected_alerts_per_day(budget.threshold()) == pytest.approx(BUDGET, rel=1e-6)


def test_it_works_from_the_first_event_after_training_whatever_the_day_numbers():
    rng = np.random.default_rng(2)
    budget = AlertBudget.from_training(*synthetic_days(rng, 100, 14), alerts_per_day=BUDGET)
    before = budget.threshold()
    scores, days = synthetic_days(rng, 5, 1)  # a replay of days older than the training window
    flagged = replay(budget, scores, days)
    assert 0.0 < before < 1.0 and budget.threshold() == before  # the first day is not complete yet
    assert flagged.sum() == pytest.approx(BUDGET, rel=0.4)  # one day: Poisson noise around 25


def test_the_threshold_adapts_when_the_score_distribution_shifts():
    rng = np.random.default_rng(3)
    budget = AlertBudget.from_training(*synthetic_days(rng, 0, 14), alerts_per_day=BUDGET, half_life_days=3.0)
    frozen = budget.threshold()
    shifted_scores, days = synthetic_days(rng, 14, 30, beta_a=3.0, beta_b=6.0)  # the whole distribution moves up
    flagged = replay(budget, shifted_scores, days)
    settled = days >= 14 + 15  # after five half lives the old days weigh ~3%
    assert budget.threshold() > frozen
    assert realised_alerts_per_day(flagged[settled], days[settled]) == pytest.approx(BUDGET, rel=0.15)
    assert realised_alerts_per_day(shifted_scores[settled] >= frozen, days[settled]) > 3 * BUDGET


def test_more_traffic_per_day_raises_the_threshold_to_keep_the_alert_count():
    rng = np.random.default_rng(4)
    budget = AlertBudget.from_training(*synthetic_days(rng, 0, 7), alerts_per_day=BUDGET, half_life_days=1.0)
    quiet = budget.threshold()
    replay(budget, *synthetic_days(rng, 7, 10, per_day=2 * EVENTS_PER_DAY), batch=4000)
    assert budget.threshold() > quiet
    assert budget.expected_alerts_per_day(budget.threshold()) == pytest.approx(BUDGET, rel=1e-6)


def test_a_batch_spanning_days_equals_the_same_events_split_by_day_and_late_events_are_aged():
    rng = np.random.default_rng(5)
    scores, days = synthetic_days(rng, 0, 3, per_day=500)
    # A budget that is not a whole number of events per day: at a whole number, the
    # day weights' last-bit rounding can decide which side of a tie the tail falls on.
    whole, split = AlertBudget(5.3), AlertBudget(5.3)
    whole.observe(scores, days)
    for day in range(3):
        split.observe(scores[days == day], days[days == day])
    assert whole.threshold() == pytest.approx(split.threshold(), rel=1e-12)
    assert np.allclose(whole.history_counts_, split.history_counts_, rtol=1e-12)

    late = AlertBudget(5.3)
    late.observe(scores[days == 2], days[days == 2])
    late.observe(scores[days < 2], days[days < 2])  # arrive after day 2 opened
    assert np.allclose(late.history_counts_, whole.history_counts_, rtol=1e-12)  # aged as if on time
    assert late.history_days_ == 0.0  # but days before the first one seen are not counted as days


def test_state_is_deterministic_small_and_picklable():
    rng = np.random.default_rng(6)
    scores, days = synthetic_days(rng, 0, 5, per_day=1000)
    first, second = AlertBudget(10.0), AlertBudget(10.0)
    for budget in (first, second):
        replay(budget, scores, days, batch=333)
    restored = pickle.loads(pickle.dumps(first))
    assert first.threshold() == second.threshold() == restored.threshold()
    assert len(pickle.dumps(first)) < 500_000
    restored.observe(scores[:10], days[:10] + 5)
    first.observe(scores[:10], days[:10] + 5)
    assert restored.threshold() == first.threshold()


def test_edge_cases_empty_small_and_zero_budgets():
    assert AlertBudget(5.0).threshold() == 1.0  # nothing seen: alert nothing
    few = AlertBudget(5.0)
    few.observe(np.array([0.1, 0.2, np.nan]), np.array([0, 0, 0]))
    assert few.threshold() == 0.0  # two events a day fit in a budget of five
    zero = AlertBudget(0.0)
    zero.observe(np.array([0.1, 0.9]), np.array([0, 1]))
    assert zero.threshold() == 1.0
    with pytest.raises(ValueError):
        AlertBudget(-1.0)
    with pytest.raises(ValueError):
        few.observe(np.zeros(2), np.zeros(3))


def separable_labels(rng, n):
    """2% fraud scoring U(0.6, 1); legitimate events score U(0, 0.7)."""
    is_fraud = rng.random(n) < 0.02
    scores = np.where(is_fraud, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.7, n))
    return scores, is_fraud


def precision_at(threshold, scores, is_fraud):
    flagged = scores >= threshold
    return is_fraud[flagged].mean()


def test_precision_mode_reaches_the_target_on_separable_data_without_exceeding_the_budget():
    rng = np.random.default_rng(7)
    scores, is_fraud = separable_labels(rng, 20 * EVENTS_PER_DAY)
    days = np.repeat(np.arange(20), EVENTS_PER_DAY)
    budget = AlertBudget.from_training(scores, days, alerts_per_day=0.1 * EVENTS_PER_DAY)
    budget.observe_labels(scores, is_fraud)

    chosen = budget.threshold_for_precision(0.9)
    fresh_scores, fresh_labels = separable_labels(rng, 200_000)
    assert chosen > budget.threshold()  # the budget alone would let too many legitimate events through
    assert precision_at(budget.threshold(), fresh_scores, fresh_labels) < 0.9
    assert precision_at(chosen, fresh_scores, fresh_labels) >= 0.88  # target, up to sampling noise
    assert precision_at(chosen - 0.02, fresh_scores, fresh_labels) < 0.9  # and it is the lowest such


def test_precision_mode_never_goes_below_the_budget_threshold_and_needs_labels():
    rng = np.random.default_rng(8)
    scores, is_fraud = separable_labels(rng, 10 * EVENTS_PER_DAY)
    days = np.repeat(np.arange(10), EVENTS_PER_DAY)
    tight = AlertBudget.from_training(scores, days, alerts_per_day=20.0)
    assert tight.threshold_for_precision(0.5) == tight.threshold()  # no labels yet
    tight.observe_labels(scores, is_fraud)
    assert tight.threshold_for_precision(0.5) == tight.threshold()  # the budget is already stricter
    with pytest.raises(ValueError):
        tight.threshold_for_precision(0.0)
