import math
import random

import numpy as np
import pandas as pd
import pytest

from model.behavior import CardBehavior
from model.features import FEATURE_NAMES, CategoryNorms, Txn, apply_txn, featurize, featurize_columns, is_night
from tests.unit.model.event_sequences import random_batches, random_events

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}
T0 = 1_546_300_800  # 2019-01-01 00:00:00, a Tuesday
NO_NORMS = CategoryNorms({}, {}, {})


def norms(**medians: float) -> CategoryNorms:
    return CategoryNorms(medians, {k: 3.0 for k in medians}, {k: 1.0 for k in medians})


def test_features_describe_the_event_against_prior_history_only():
    txns = [Txn("a", T0 + i * 86_400 + 12 * 3600, 20.0, "grocery_pos", 1980) for i in range(5)]
    txns.append(Txn("a", T0 + 4 * 86_400 + 23 * 3600, 400.0, "grocery_pos", 1980))
    X = featurize(txns, {}, norms(grocery_pos=20.0))
    first, last = X[0], X[-1]
    assert first[COL["log_card_history"]] == 0.0  # nothing known before the first event
    assert last[COL["amt_to_card_mean"]] == np.float64(401 / 21)
    assert last[COL["night"]] == 1.0 and last[COL["hour"]] == 23.0
    assert last[COL["count_24h"]] == 1.0  # noon the same day; the day before is 35 h ago
    assert last[COL["age"]] == 2019 - 1980


def test_state_is_updated_in_place_and_redelivery_is_not_applied_twice():
    states: dict[str, CardBehavior] = {}
    txn = Txn("card", T0, 10.0, "travel", 1990, position=(2, 41))
    featurize([txn], states, NO_NORMS)
    featurize([txn], states, NO_NORMS)  # the same Kafka message, redelivered
    assert states["card"].count == 1
    assert states["card"].watermark == (2, 41)


def test_cards_do_not_share_state():
    X = featurize([Txn("a", T0, 10.0, "travel", 1990), Txn("b", T0 + 1, 10.0, "travel", 1990)], {}, NO_NORMS)
    assert X[1][COL["count_1h"]] == 0.0


def test_night_is_22_to_04():
    assert [h for h in range(24) if is_night(h)] == [0, 1, 2, 3, 22, 23]


def test_the_new_features_against_a_hand_computed_history():
    # Three daytime grocery purchases on three days, then a night burst: two shopping_net at 23:00 and 23:10.
    txns = [Txn("a", T0 + d * 86_400 + 12 * 3600, amt, "grocery_pos", 1980, city_pop=2500)
            for d, amt in enumerate((20.0, 30.0, 40.0))]  # fmt: skip
    txns += [Txn("a", T0 + 2 * 86_400 + 23 * 3600 + m * 60, 900.0, "shopping_net", 1980, city_pop=2500)
             for m in (0, 10)]  # fmt: skip
    X = featurize(txns, {}, CategoryNorms({"shopping_net": 100.0}, {"shopping_net": 4.0}, {"shopping_net": 0.5}))
    row = dict(zip(FEATURE_NAMES, X[-1], strict=True))
    first_burst = dict(zip(FEATURE_NAMES, X[-2], strict=True))
    assert first_burst["category_new"] == 1.0 and row["category_new"] == 0.0
    assert row["amt_to_card_max"] == pytest.approx(901 / 901)
    assert first_burst["amt_to_card_max"] == pytest.approx(901 / 41)
    assert row["amt_card_category_zscore"] == 0.0  # the same amount as this card's one shopping_net purchase
    assert row["amt_category_logz"] == pytest.approx((np.log1p(900.0) - 4.0) / 0.5)
    assert row["night_count_24h"] == 1.0 and row["card_night_share"] == pytest.approx(1 / 4)
    assert row["weekday"] == 3.0  # Thursday 3 January 2019
    assert row["count_7d"] == 4.0 and row["log_sum_7d"] == pytest.approx(np.log1p(990.0))
    days = (2 * 86_400 + 23 * 3600 + 600 - 12 * 3600) / 86_400
    assert row["count_24h_to_rate"] == pytest.approx((2 + 1) / (4 / days + 1))
    assert row["sum_24h_to_daily_spend"] == pytest.approx((940 + 1) / (990 / days + 1))
    assert row["log_card_age_days"] == pytest.approx(np.log1p(days))
    assert row["log_city_pop"] == pytest.approx(np.log1p(2500))
    assert row["log_secs_since_last"] == pytest.approx(np.log1p(600))


def test_category_norms_are_fitted_per_category_and_fall_back_for_unseen_ones():
    frame = pd.DataFrame({"category": ["a", "a", "a", "b"], "amt": [10.0, 20.0, 30.0, 5.0]})
    fitted = CategoryNorms.fit(frame["category"], frame["amt"])
    assert fitted.lookup("a", 99.0)[0] == 20.0
    assert fitted.lookup("a", 99.0)[1] == pytest.approx(np.log1p([10.0, 20.0, 30.0]).mean())
    assert fitted.lookup("b", 99.0)[2] == 1.0  # one purchase: no spread, a unit one
    assert fitted.lookup("unseen", 99.0) == (99.0, fitted.default_log_mean, fitted.default_log_std)


def reference_feature_row(state: CardBehavior, t: int, amt: float, category: str, birth_year: int, city_pop: int,
                          norms: CategoryNorms) -> list[float]:  # fmt: skip
    """``FEATURE_NAMES`` of one event against its card's state before it, one float at a time: the
    formulas as the scorer computed them per event before they were taken a column at a time."""
    hour = (t // 3600) % 24
    n = state.count
    if n:
        card_mean = state.mean
        zscore = (amt - card_mean) / max(state.std, 5.0)
        n_category = state.category_counts.get(category, 0)
        if n_category:
            category_mean = state.category_means[category]
            category_z = (amt - category_mean) / max(state.category_std(category), 5.0)
        else:
            category_mean, category_z = card_mean, zscore
        last_seen = state.last_seen if state.last_seen is not None else t
        first_seen = state.first_seen if state.first_seen is not None else t
        since_last = max(t - last_seen, 0)
        age_s = max(t - first_seen, 0)
        days = max(age_s / 86_400, 1.0)
        daily_rate = n / days
        daily_spend = state.sum_cents / 100 / days
        night_share = state.night_count / n
        max_amt = state.max_amt
        category_share = n_category / n
        category_new = 0.0 if n_category else 1.0
    else:
        card_mean, zscore, category_mean, category_z, since_last = amt, 0.0, amt, 0.0, 30 * 86_400
        age_s, daily_rate, daily_spend, night_share, max_amt = 0, 0.0, 0.0, 0.0, amt
        category_share = category_new = 0.0
    n_1h, c_1h, n_24h, c_24h, night_24h, n_7d, c_7d = state.windows(t)
    median, log_mean, log_std = norms.lookup(category, amt)
    log_amt = math.log1p(amt)
    return [
        log_amt, (amt + 1.0) / (card_mean + 1.0), zscore, (amt + 1.0) / (max_amt + 1.0),
        (amt + 1.0) / (category_mean + 1.0), category_z, (amt + 1.0) / (median + 1.0), (log_amt - log_mean) / log_std,
        1.0 if is_night(hour) else 0.0, float(hour), float((t // 86_400 + 3) % 7), night_share,
        math.log1p(since_last), float(n_1h), math.log1p(c_1h / 100), float(n_24h), math.log1p(c_24h / 100),
        float(night_24h), float(n_7d), math.log1p(c_7d / 100), (n_24h + 1.0) / (daily_rate + 1.0),
        (c_24h / 100 + 1.0) / (daily_spend + 1.0), category_share, category_new, math.log1p(n),
        math.log1p(age_s / 86_400), float(t // 31_557_600 + 1970 - birth_year), math.log1p(max(city_pop, 0)),
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_column_wise_features_equal_the_per_event_formulas_to_the_bit(seed):
    """``featurize_columns`` against ``reference_feature_row`` + ``apply_txn`` event by event, on random
    sequences (see ``event_sequences``), with a category the norms never saw and stored states reloaded."""
    events = random_events(seed, 1200)
    rng = random.Random(seed)
    birth_years = {token: rng.randrange(1930, 2005) for token, *_ in events}
    city_pops = {token: rng.choice([0, 1, 2500, 3_000_000]) for token, *_ in events}
    fitted = CategoryNorms({"grocery_pos": 40.0, "travel": 300.0}, {"grocery_pos": 3.2}, {"travel": 1.3})
    expected_states: dict[str, CardBehavior] = {}
    states: dict[str, CardBehavior] = {}
    for batch in random_batches(seed, events):
        expected = []
        for token, t, amt, category, position, trans_num in batch:
            state = expected_states.setdefault(token, CardBehavior())
            expected.append(reference_feature_row(state, t, amt, category, birth_years[token], city_pops[token],
                                                  fitted))  # fmt: skip
            apply_txn(state, Txn(token, t, amt, category, birth_years[token], position=position, trans_num=trans_num))
        tokens, times, amts, categories, positions, trans_nums = (list(c) for c in zip(*batch, strict=True))
        X = featurize_columns(tokens, times, amts, categories, [birth_years[k] for k in tokens],
                              [city_pops[k] for k in tokens], positions, trans_nums, states, fitted)  # fmt: skip
        assert X.tobytes() == np.array(expected, dtype=np.float64).tobytes()
        if rng.random() < 0.3:
            states = {k: CardBehavior.from_dict(v.to_dict()) for k, v in states.items()}
    assert states == expected_states
    assert featurize_columns([], [], [], [], [], [], [], [], states, fitted).shape == (0, len(FEATURE_NAMES))


def test_a_small_batch_looks_its_categories_up_as_a_large_one_does():
    table = norms(grocery_pos=40.0, travel=900.0)
    category = ["travel", "unknown", "grocery_pos", "travel", "other_unknown"] * 20  # 100: the factorizing path
    amt = np.linspace(1.0, 500.0, len(category))
    large = table.lookup_many(category, amt)
    for size in (1, 5, 64):
        small = table.lookup_many(category[:size], amt[:size])
        for got, want in zip(small, large, strict=True):
            np.testing.assert_array_equal(got, want[:size])
