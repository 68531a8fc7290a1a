from datetime import datetime

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from model.detectors import OnlineStandardizedDetector
from model.explain import (
    NOTHING_STANDS_OUT,
    PHRASES,
    EventContext,
    describe_contributions,
    linear_contributions,
    tree_bias,
    tree_contributions,
    zscore_contributions,
)
from model.features import FEATURE_NAMES

NAMED_FEATURES = (
    "log_amt amt_to_card_mean amt_zscore amt_to_card_category_mean amt_to_category_median night hour weekday "
    "log_secs_since_last count_1h log_sum_1h count_24h log_sum_24h count_7d night_count_24h category_share "
    "category_new log_card_history age log_city_pop"
).split()
NIGHT_OUT = EventContext(amt=1020.0, category="shopping_net", event_time=datetime(2020, 6, 21, 2, 13))


@pytest.fixture(scope="module")
def boosted():
    """A small boosted model on 5 features: 0 and 2 matter, 2 has missing values, 4 is noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    X[rng.random(2000) < 0.1, 2] = np.nan
    y = (X[:, 0] + 2 * np.nan_to_num(X[:, 2], nan=2.0) + rng.normal(size=2000) > 1.5).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, learning_rate=0.2, random_state=0).fit(X, y)
    return model, X


def test_tree_contributions_plus_bias_add_up_to_the_raw_score_including_missing_values(boosted):
    model, X = boosted
    contributions = tree_contributions(model, X)
    assert contributions.shape == X.shape
    np.testing.assert_allclose(tree_bias(model) + contributions.sum(axis=1), model.decision_function(X), atol=1e-6)
    assert np.isnan(X[:, 2]).any()


def test_tree_contributions_credit_the_features_the_model_uses(boosted):
    model, X = boosted
    strength = np.abs(tree_contributions(model, X)).mean(axis=0)
    assert strength[2] > strength[0] > 3 * max(strength[1], strength[3], strength[4])
    row = np.array([[0.0, 0.0, 3.0, 0.0, 0.0]])  # high on feature 2 alone
    assert int(np.argmax(tree_contributions(model, row)[0])) == 2


def test_tree_contributions_reject_what_they_cannot_reproduce(boosted):
    model, X = boosted
    with pytest.raises(ValueError, match="features"):
        tree_contributions(model, X[:, :3])
    with pytest.raises(ValueError, match="not fitted"):
        tree_contributions(HistGradientBoostingClassifier(), X)
    rng = np.random.default_rng(1)
    three_classes = HistGradientBoostingClassifier(max_iter=3).fit(X[:300], rng.integers(0, 3, 300))
    with pytest.raises(ValueError, match="binary"):
        tree_contributions(three_classes, X[:5])
    categories = np.column_stack([rng.integers(0, 4, 300), rng.normal(size=300)])
    categorical = HistGradientBoostingClassifier(max_iter=3, categorical_features=[0])
    categorical.fit(categories, rng.integers(0, 2, 300))
    with pytest.raises(ValueError, match="categorical"):
        tree_contributions(categorical, categories[:5])


def test_linear_contributions_are_weight_times_standardised_value():
    weights = np.array([0.5, -1.0, 2.0])
    assert linear_contributions(weights, np.array([2.0, 1.0, 0.25])).tolist() == [1.0, -1.0, 0.5]
    assert linear_contributions(weights, np.ones((4, 3))).shape == (4, 3)
    with pytest.raises(ValueError):
        linear_contributions(weights, np.ones(2))


def test_zscore_contributions_are_each_risk_features_share_of_the_squared_upper_tail():
    rng = np.random.default_rng(2)
    detector = OnlineStandardizedDetector()
    assert not zscore_contributions(detector, np.ones((1, len(FEATURE_NAMES)))).any()  # nothing learned yet
    detector.learn_many(rng.normal(size=(500, len(FEATURE_NAMES))))
    rows = rng.normal(size=(3, len(FEATURE_NAMES)))
    spiked = FEATURE_NAMES.index("night_count_24h")  # one of the features the detector uses
    rows[0, spiked] = 6.0
    rows[1] = -5.0  # everything below average: no evidence at all
    shares = zscore_contributions(detector, rows)
    assert shares.shape == rows.shape
    assert int(np.argmax(shares[0])) == spiked and shares[0, spiked] > 0.5
    assert shares[0].sum() == pytest.approx(1.0) and not shares[1].any()
    unused = [i for i, name in enumerate(FEATURE_NAMES) if name not in detector.features]
    assert not shares[:, unused].any()
    # The shares split the detector's own score: mean of z^2 over its features.
    z_squared = detector.score_many(rows[:1])[0] ** 2 * len(detector.features)
    assert z_squared * shares[0, spiked] == pytest.approx(min(6.0, 10.0) ** 2, rel=0.3)


def describe(contributions: dict[str, float], values: dict[str, float], context=NIGHT_OUT) -> str:
    names = list(values)
    return describe_contributions(
        np.array([contributions.get(n, 0.0) for n in names]), np.array([values[n] for n in names]), names, context
    )


def test_the_top_three_positive_contributors_are_worded_with_the_events_numbers_in_contribution_order():
    values = {
        "amt_to_card_mean": 14.2,
        "count_1h": 2.0,
        "night": 1.0,
        "amt_to_category_median": 8.2,
        "category_new": 1.0,
        "age": 67.0,
    }
    text = describe({"night": 0.9, "amt_to_category_median": 1.4, "amt_to_card_mean": 0.7, "age": -2.0}, values)
    assert text == (
        "$1,020.00 is 8.2x the typical shopping_net amount; 02:13, at night; amount 14x this card's average"
    )
    text = describe({"count_1h": 0.5, "category_new": 0.4}, values)
    assert text == "3rd transaction in 1 hour; first shopping_net purchase on this card"


def test_words_that_repeat_are_said_once_and_the_next_contributor_is_taken():
    values = {"night": 1.0, "hour": 2.0, "log_sum_24h": np.log1p(1234.5), "count_7d": 11.0}
    text = describe({"night": 3.0, "hour": 2.0, "log_sum_24h": 1.0, "count_7d": 0.5}, values)
    assert text == "02:13, at night; $1,234.50 spent on this card in the 24 hours before; 12th transaction in 7 days"


def test_nothing_positive_means_nothing_named_and_unknown_features_get_a_generic_phrase():
    assert describe({"age": -1.0}, {"age": 30.0, "count_1h": 0.0}) == NOTHING_STANDS_OUT
    assert describe({"merchant_risk": 1.0}, {"merchant_risk": 0.9}) == "merchant_risk unusually high"
    long_names = {f"feature_{'x' * 300}_{i}": 1.0 for i in range(3)}
    assert len(describe(long_names, long_names)) == 500


@pytest.mark.parametrize("name", sorted(set(NAMED_FEATURES) | set(FEATURE_NAMES)))
def test_every_current_and_planned_feature_has_its_own_short_phrase(name):
    plausible = {"log_amt": 6.9, "log_secs_since_last": np.log1p(120), "log_card_history": np.log1p(3)}
    text = describe(
        {name: 1.0},
        {name: plausible.get(name, 3.0)},
        {"amt": 12.5, "category": "gas_transport", "event_time": datetime(2020, 1, 4, 13, 5)},
    )
    assert name in PHRASES and "unusually high" not in text and 0 < len(text) <= 120


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("log_secs_since_last", np.log1p(120), "2 minutes after this card's previous transaction"),
        ("log_secs_since_last", np.log1p(30 * 86_400), "first transaction on this card in 30 days or more"),
        ("log_card_history", 0.0, "first transaction seen on this card"),
        ("hour", 13.0, "at 13:05, an unusual hour"),
        ("weekday", 5.0, "on a Saturday"),
        ("count_24h", 0.0, "1st transaction in 24 hours"),
        ("count_24h", 10.0, "11th transaction in 24 hours"),
        ("category_share", 0.02, "gas_transport is 2% of this card's past purchases"),
        ("log_city_pop", np.log1p(2500), "home city of 2,500 people"),
        (
            "amt_category_logz",
            -6.6,
            "$12.50 is 6.6 standard deviations below typical gas_transport amounts (log scale)",
        ),
        ("amt_zscore", 4.0, "amount 4.0 standard deviations above this card's mean"),
        ("log_card_history", np.log1p(1), "only 1 earlier transaction on this card"),
    ],
)
def test_phrases_read_the_features_units(name, value, expected):
    day = {"amt": 12.5, "category": "gas_transport", "event_time": datetime(2020, 1, 4, 13, 5), "merchant": "m"}
    assert describe({name: 1.0}, {name: value}, day) == expected
