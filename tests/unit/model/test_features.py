import numpy as np

from model.behavior import CardBehavior
from model.features import FEATURE_NAMES, Txn, featurize, is_night

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}
T0 = 1_546_300_800  # 2019-01-01 00:00:00


def test_features_describe_the_event_against_prior_history_only():
    txns = [Txn("a", T0 + i * 86_400 + 12 * 3600, 20.0, "grocery_pos", 1980) for i in range(5)]
    txns.append(Txn("a", T0 + 4 * 86_400 + 23 * 3600, 400.0, "grocery_pos", 1980))
    X = featurize(txns, {}, {"grocery_pos": 20.0})
    first, last = X[0], X[-1]
    assert first[COL["log_card_history"]] == 0.0  # nothing known before the first event
    assert last[COL["amt_to_card_mean"]] == np.float64(401 / 21)
    assert last[COL["night"]] == 1.0 and last[COL["hour"]] == 23.0
    assert last[COL["count_24h"]] == 1.0  # noon the same day; the day before is 35 h ago
    assert last[COL["age"]] == 2019 - 1980


def test_state_is_updated_in_place_and_redelivery_is_not_applied_twice():
    states: dict[str, CardBehavior] = {}
    txn = Txn("card", T0, 10.0, "travel", 1990, position=(2, 41))
    featurize([txn], states, {})
    featurize([txn], states, {})  # the same Kafka message, redelivered
    assert states["card"].count == 1
    assert states["card"].watermark == (2, 41)


def test_cards_do_not_share_state():
    X = featurize([Txn("a", T0, 10.0, "travel", 1990), Txn("b", T0 + 1, 10.0, "travel", 1990)], {}, {})
    assert X[1][COL["count_1h"]] == 0.0


def test_night_is_22_to_04():
    assert [h for h in range(24) if is_night(h)] == [0, 1, 2, 3, 22, 23]
