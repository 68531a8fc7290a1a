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


def kafka_order(days, partitions, fetch):
    """Arrival order of a consumer with a backlog: ``fetch`` events of each partition in turn.

    Each partition stays in event-time order; across partitions, event days go back
    and forth by weeks, as the scorer saw them in a replay.
    """
    queues = [np.flatnonzero(partitions == p) for p in range(partitions.max() + 1)]
    pieces = []
    for start in range(0, max(len(q) for q in queues), fetch):
        pieces += [q[start : start + fetch] for q in queues]
    return np.concatenate(pieces)


def replay_sources(budget, scores, days, sources, batch=1000):
    flagged = np.empty(len(scores), dtype=bool)
    for start in range(0, len(scores), batch):
        part = slice(start, start + batch)
        flagged[part] = scores[part] >= budget.threshold()
        budget.observe(scores[part], days[part], None if sources is None else sources[part])
    return flagged


@pytest.mark.parametrize("with_sources", [True, False])
def test_a_shifted_stream_from_partitions_read_weeks_apart_converges_to_the_budget_within_days(with_sources):
    rng = np.random.default_rng(9)
    training = synthetic_days(rng, 0, 14)
    budget = AlertBudget.from_training(*training, alerts_per_day=BUDGET, half_life_days=2.0)
    scores, days = synthetic_days(rng, 100, 60, beta_a=3.0, beta_b=6.0)  # serving scores run higher than training's
    # Four partitions of unequal size: read in equal fetches, the small ones run ahead by weeks.
    partitions = rng.choice(4, size=len(days), p=[0.4, 0.3, 0.2, 0.1])
    order = kafka_order(days, partitions, fetch=6000)
    arrival_lag = np.maximum.accumulate(days[order]) - days[order]
    assert arrival_lag.max() > 14  # events arrive weeks behind the latest one seen
    if with_sources:
        budget.expect_sources(range(4))  # the scorer's partitions, on assignment
    flagged = np.empty(len(days), dtype=bool)
    flagged[order] = replay_sources(budget, scores[order], days[order], partitions[order] if with_sources else None)

    per_day = np.bincount(days - 100, weights=flagged)
    if with_sources:
        assert per_day[:3].mean() < 6 * BUDGET  # the first days: the training threshold, on higher scores
        assert per_day[5:].mean() == pytest.approx(BUDGET, rel=0.15)  # within a few days, on budget
    else:  # a day closed by the first partition past it: a fraction of its events, a threshold far too low
        assert per_day[5:].mean() > 1.5 * BUDGET


def test_a_day_counts_only_once_every_expected_partition_has_moved_past_it():
    budget = AlertBudget.from_training(np.full(7000, 0.5), np.repeat(np.arange(7), 1000), alerts_per_day=10.0)
    events_per_day = budget.volume_events_ / budget.volume_days_
    budget.expect_sources([0, 1])
    budget.observe(np.full(1500, 0.5), np.repeat(np.arange(100, 103), 500), np.zeros(1500, dtype=int))
    assert budget.volume_events_ / budget.volume_days_ == pytest.approx(events_per_day)  # partition 1: nothing yet
    budget.observe(np.full(1000, 0.5), np.repeat(np.arange(100, 102), 500), np.ones(1000, dtype=int))
    assert budget.closed_through_ == 100  # partition 1 is into day 101: day 100 is complete
    assert budget.volume_events_ / budget.volume_days_ == pytest.approx(events_per_day)  # 2 x 500 events: as before
    assert set(budget.open_events_) == {101, 102}

    unexpected = AlertBudget.from_training(np.full(7000, 0.5), np.repeat(np.arange(7), 1000), alerts_per_day=10.0)
    unexpected.observe(np.full(1500, 0.5), np.repeat(np.arange(100, 103), 500), np.zeros(1500, dtype=int))
    assert unexpected.closed_through_ == 101  # the only partition seen closes days alone

    budget.forget_sources()  # the partitions moved to another consumer: partition 1 no longer holds days open
    budget.observe(np.full(500, 0.5), np.full(500, 105), np.zeros(500, dtype=int))
    assert budget.closed_through_ == 104


def test_one_source_gives_the_threshold_it_gave_before_sources_and_old_budgets_still_load():
    rng = np.random.default_rng(10)
    budget = AlertBudget.from_training(*synthetic_days(rng, 0, 7), alerts_per_day=BUDGET)
    scores, days = synthetic_days(rng, 7, 5)
    replay(budget, scores, days)
    # Without sources the volume is the histogram's own: events / days of the closed days.
    assert budget.volume_events_ == pytest.approx(budget.history_counts_.sum(), rel=1e-12)
    assert budget.volume_days_ == budget.history_days_
    assert budget.expected_alerts_per_day(budget.threshold()) == pytest.approx(BUDGET, rel=1e-6)

    saved_before_sources = {
        k: v
        for k, v in budget.__dict__.items()
        if k not in {"volume_events_", "volume_days_", "closed_through_", "open_events_", "source_days_"}
    }
    old = AlertBudget.__new__(AlertBudget)
    old.__setstate__(saved_before_sources)
    assert old.threshold() == pytest.approx(budget.threshold(), rel=1e-9)
    old.observe(scores[:500], days[:500] + 6)
    budget.observe(scores[:500], days[:500] + 6)
    assert old.threshold() == pytest.approx(budget.threshold(), rel=1e-9)


def test_scorers_sharing_a_stream_spend_one_budget_between_them_not_one_each():
    rng = np.random.default_rng(11)
    scores, days = synthetic_days(rng, 100, 30)
    halves = [np.arange(len(scores)) % 2 == i for i in (0, 1)]  # two scorers, the stream split between them
    budgets = [AlertBudget(BUDGET) for _ in halves]
    flagged = np.zeros(len(scores), dtype=bool)
    for budget, half in zip(budgets, halves, strict=True):
        budget.share = 0.5
        flagged[half] = replay(budget, scores[half], days[half])
    last_weeks = days >= 110
    assert realised_alerts_per_day(flagged[last_weeks], days[last_weeks]) == pytest.approx(BUDGET, rel=0.15)
    alone = AlertBudget(BUDGET)
    replay(alone, scores, days)
    assert budgets[0].threshold() == pytest.approx(alone.threshold(), abs=0.01)
    assert pickle.loads(pickle.dumps(budgets[0])).share == 0.5


def test_the_threshold_kept_between_batches_is_always_the_one_computed_afresh():
    """The budget keeps its last threshold while only today's counts change: a closed day, a late
    event or a new budget must each give what computing it from the state would."""
    rng = np.random.default_rng(7)
    budget = AlertBudget(BUDGET)
    seen = []
    for day in range(6):
        for _ in range(3):
            scores = rng.beta(2.0, 8.0, size=50)
            days = np.full(50, day)
            days[:3] = max(day - 2, 0)  # late events of a closed day: into the history
            budget.observe(scores, days, np.arange(50) % 2)
            seen.append(budget.threshold())
            assert seen[-1] == budget._threshold()
        budget.alerts_per_day = BUDGET * (1 + day % 2)  # a changed budget is not the kept one
        assert budget.threshold() == budget._threshold()
    assert len(set(seen)) > 3  # it did move
