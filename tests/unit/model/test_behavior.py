import math
import random
import statistics

import pytest

from model.behavior import PRIOR_STATE_COLUMNS, CardBehavior, is_night_second, observe_then_apply
from tests.unit.model.event_sequences import random_batches, random_events, reference_prior_states

AMOUNTS = [12.5, 3.99, 250.0, 42.42, 7.01, 99.99]


def apply_all(state: CardBehavior, start: int = 1_546_300_800, step: int = 600) -> CardBehavior:
    for i, amt in enumerate(AMOUNTS):
        state.apply(start + i * step, amt, "grocery_pos" if i % 2 else "gas_transport", (0, i))
    return state


def test_aggregates_match_batch_statistics():
    s = apply_all(CardBehavior())
    assert s.count == len(AMOUNTS)
    assert s.sum_cents == round(sum(AMOUNTS) * 100)
    assert s.mean == pytest.approx(statistics.mean(AMOUNTS))
    assert s.std == pytest.approx(statistics.stdev(AMOUNTS))
    assert (s.min_amt, s.max_amt) == (min(AMOUNTS), max(AMOUNTS))
    assert s.category_counts == {"gas_transport": 3, "grocery_pos": 3}
    assert s.category_means["grocery_pos"] == pytest.approx(statistics.mean(AMOUNTS[1::2]))
    assert s.last_category == "grocery_pos"


def test_windows_count_only_events_inside_them():
    s = CardBehavior()
    t0 = 1_546_300_800
    for dt in (0, 1800, 7200, 90_000):
        s.apply(t0 + dt, 10.0, "misc_pos")
    now = t0 + 90_000
    assert s.window(now, 3600) == (1, 1000)
    assert s.window(now, 86_400) == (2, 2000)  # 7200 is 82,800 s before now
    assert s.window(now, 7 * 86_400) == (4, 4000)


def test_old_events_leave_the_seven_day_window():
    s = CardBehavior()
    s.apply(0, 1.0, "travel")
    s.apply(8 * 86_400, 1.0, "travel")
    assert len(s.recent) == 1


def test_watermark_marks_applied_positions():
    s = apply_all(CardBehavior())
    assert s.already_applied(0, 5) and s.already_applied(0, 0)
    assert not s.already_applied(0, 6)
    assert not s.already_applied(1, 0)


def test_round_trip_through_plain_data():
    s = apply_all(CardBehavior())
    back = CardBehavior.from_dict(s.to_dict())
    assert back == s
    assert CardBehavior.from_dict(CardBehavior().to_dict()).min_amt == math.inf


def test_one_pass_windows_agree_with_each_window():
    import random

    rng = random.Random(7)
    s = CardBehavior()
    t = 1_546_300_800
    for _ in range(300):
        t += rng.choice([30, 600, 3600, 20_000, 90_000])
        s.apply(t, round(rng.uniform(1, 500), 2), "misc_net")
        for now in (t, t + 1800, t + 50_000, t - 4000):
            n1, c1 = s.window(now, 3600)
            n24, c24 = s.window(now, 86_400)
            n7, c7 = s.window(now, 7 * 86_400)
            night24 = sum(1 for u, _ in s.recent if now - 86_400 < u <= now and is_night_second(u))
            assert s.windows(now) == (n1, c1, n24, c24, night24, n7, c7)


def test_the_same_transaction_published_twice_counts_once():
    s = CardBehavior()
    assert s.apply(100, 10.0, "travel", (0, 1), "a" * 32)
    assert not s.apply(100, 10.0, "travel", (0, 7), "a" * 32)  # resent by a restarted producer
    assert s.count == 1 and s.watermark == (0, 7)
    assert s.apply(200, 10.0, "travel", (0, 8), "b" * 32)
    later = 200 + 8 * 86_400
    s.apply(later, 1.0, "travel", (0, 9), "c" * 32)
    assert list(s.recent_ids) == ["c" * 16]  # ids leave with the 7-day window
    assert CardBehavior.from_dict(s.to_dict()) == s


def test_per_category_spread_and_night_habit_are_exact_and_old_stored_states_still_load():
    s = apply_all(CardBehavior(), start=1_546_300_800 + 21 * 3600)  # 21:00, then every 10 minutes
    assert s.category_std("grocery_pos") == pytest.approx(statistics.stdev(AMOUNTS[1::2]))
    assert s.category_std("travel") == 0.0
    assert s.night_count == 0 + sum(1 for i in range(len(AMOUNTS)) if 21 * 3600 + i * 600 >= 22 * 3600)
    assert s.recent_cents == round(sum(AMOUNTS) * 100)
    back = CardBehavior.from_dict(s.to_dict())
    assert back == s and "recent_cents" not in s.to_dict()  # derived, recomputed on load
    legacy = {k: v for k, v in s.to_dict().items() if k not in ("category_m2", "night_count")}
    old = CardBehavior.from_dict(legacy)
    assert (old.category_m2, old.night_count, old.count) == ({}, 0, s.count)


@pytest.mark.parametrize("seed", range(12))
def test_the_batch_path_records_and_applies_exactly_what_windows_and_apply_do(seed):
    """``observe_then_apply`` against ``windows`` + ``apply`` event by event: the same recorded values to
    the bit and the same states, through redeliveries, republished events, times out of order, exact
    window boundaries, and states stored and loaded again between batches."""
    events = random_events(seed, 1500)
    expected_states: dict[str, CardBehavior] = {}
    states: dict[str, CardBehavior] = {}
    restore = random.Random(seed)
    for batch in random_batches(seed, events):
        expected = reference_prior_states(expected_states, batch)
        got = observe_then_apply(states, *(list(column) for column in zip(*batch, strict=True)))
        assert got.tobytes() == expected.tobytes()
        assert states == expected_states
        if restore.random() < 0.3:  # a checkpoint, then a restart loading the stored states
            states = {k: CardBehavior.from_dict(v.to_dict()) for k, v in states.items()}
    assert {k: v.to_dict() for k, v in states.items()} == {k: v.to_dict() for k, v in expected_states.items()}
    assert sum(s.count for s in states.values()) < len(events)  # some events were not applied twice


def test_the_batch_path_creates_missing_cards_in_order_of_first_event_and_takes_empty_batches():
    states: dict[str, CardBehavior] = {"old": CardBehavior()}
    prior = observe_then_apply(states, ["b", "old", "a", "b"], [10, 20, 30, 40], [1.0, 2.0, 3.0, 4.0],
                               ["travel"] * 4, [(0, 1), (0, 2), (0, 3), (0, 4)], ["w", "x", "y", "z"])  # fmt: skip
    assert list(states) == ["old", "b", "a"]
    assert prior.shape == (4, len(PRIOR_STATE_COLUMNS)) and prior[3, 0] == 1.0  # b's second event sees its first
    assert observe_then_apply(states, [], [], [], [], [], []).shape == (0, len(PRIOR_STATE_COLUMNS))


def test_an_event_that_cannot_be_applied_leaves_its_card_as_the_events_before_it_did():
    events = [("a", 100, 1.0, "travel", (0, 1), None), ("a", 200, math.nan, "travel", (0, 2), None),
              ("a", 300, 2.0, "travel", (0, 3), None)]  # fmt: skip
    expected: dict[str, CardBehavior] = {}
    states: dict[str, CardBehavior] = {}
    with pytest.raises(ValueError):
        reference_prior_states(expected, events)
    with pytest.raises(ValueError):
        observe_then_apply(states, *(list(column) for column in zip(*events, strict=True)))
    assert states == expected and states["a"].count == 1 and states["a"].watermark == (0, 2)
