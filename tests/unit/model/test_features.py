import numpy as np
import pandas as pd
import pytest

from model.behavior import CardBehavior
from model.features import FEATURE_NAMES, CategoryNorms, Txn, featurize, is_night

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
