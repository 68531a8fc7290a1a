"""Every detector, and the ensemble, through the same checks (in the manner of river's
``test_estimators.py``): higher means more anomalous, scoring comes before learning and
does not learn, a seed makes it deterministic, and its state survives the registry."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from river import preprocessing

from model.detectors import (
    HalfSpaceTreesDetector,
    IsolationForestDetector,
    OnlineStandardizedDetector,
    learn_scaler,
    standardise,
)
from model.ensemble import Ensemble
from model.features import FEATURE_NAMES, CategoryNorms
from model.registry import ModelRegistry, read_joblib, write_joblib
from model.supervised import SupervisedDetector
from model.train import feature_matrix, train
from producer.cards import CardProtector
from producer.history import load_history
from producer.source import CsvSource
from tests.conftest import FIXTURES
from tests.unit.model.rows import BATCH_SIZES, random_rows


@dataclass(frozen=True)
class Case:
    """How to fit one kind of estimator and score without learning with it."""

    name: str
    fit: Callable[[int], Any]  # seed -> fitted estimator
    score: Callable[[Any, np.ndarray], np.ndarray]  # scores of rows, no learning
    learn: Callable[[Any, np.ndarray], None]
    save_load: Callable[[Any, Any], Any]  # (estimator, tmp_path) -> the estimator back from disk


_history = load_history(CsvSource(str(FIXTURES / "kaggle_rows2301_2900.csv")), CardProtector(b"unit-test-key-0123"))
HISTORY = _history.sort_values("event_time", kind="stable").reset_index(drop=True)
NORMS = CategoryNorms.fit(HISTORY["category"], HISTORY["amt"])
X = feature_matrix(HISTORY, NORMS)
TRAIN, FRESH = X[:450], X[450:]


def outlier() -> np.ndarray:
    """A typical row made extreme: a huge amount for the card, at night, in a burst."""
    row = np.median(X, axis=0)
    extreme = {
        "log_amt": np.log1p(25_000),
        "amt_to_card_mean": 300.0,
        "amt_zscore": 80.0,
        "amt_to_card_max": 50.0,
        "amt_to_card_category_mean": 300.0,
        "amt_card_category_zscore": 80.0,
        "amt_to_category_median": 300.0,
        "amt_category_logz": 8.0,
        "night": 1.0,
        "hour": 3.0,
        "log_secs_since_last": np.log1p(60),
        "count_1h": 12.0,
        "log_sum_1h": np.log1p(60_000),
        "count_24h": 30.0,
        "log_sum_24h": np.log1p(90_000),
        "night_count_24h": 30.0,
        "count_24h_to_rate": 20.0,
        "sum_24h_to_daily_spend": 300.0,
    }
    for name, value in extreme.items():
        row[FEATURE_NAMES.index(name)] = value
    return row[None, :]


def _supervised(seed: int) -> SupervisedDetector:
    """Fitted on the fixture's labels plus frauds shaped like the outlier (5 real frauds are too few to learn)."""
    rng = np.random.default_rng(seed)
    frauds = outlier() * rng.uniform(0.7, 1.3, size=(40, X.shape[1]))
    rows = np.vstack([TRAIN, frauds])
    labels = np.concatenate([HISTORY["is_fraud"].to_numpy(dtype=bool)[:450], np.ones(len(frauds), bool)])
    return SupervisedDetector(min_samples_leaf=5, random_state=seed).fit(rows, labels)


def _learned(detector: Any) -> Any:
    detector.learn_many(TRAIN)
    return detector


def _round_trip(estimator: Any, tmp_path: Any) -> Any:
    return read_joblib(write_joblib(estimator, tmp_path / "estimator.joblib"))


def _ensemble_round_trip(model: Ensemble, tmp_path: Any) -> Ensemble:
    registry = ModelRegistry(tmp_path / "models")
    registry.save(model)
    return registry.load()


def _ensemble_score(model: Ensemble, rows: np.ndarray) -> np.ndarray:
    return model.score_many(rows)


def _detector_case(name: str, fit: Callable[[int], Any]) -> Case:
    return Case(name, fit, lambda d, rows: d.score_many(rows), lambda d, rows: d.learn_many(rows), _round_trip)


CASES = [
    _detector_case("iforest", lambda seed: IsolationForestDetector(random_state=seed).fit(TRAIN)),
    _detector_case("zscore", lambda seed: _learned(OnlineStandardizedDetector())),
    _detector_case("hst", lambda seed: _learned(HalfSpaceTreesDetector(seed=seed))),
    _detector_case("supervised", _supervised),
    Case(
        "ensemble",
        lambda seed: train(HISTORY.iloc[:450], random_state=seed)[0],
        _ensemble_score,
        lambda m, rows: m.online.learn_many(rows),
        _ensemble_round_trip,
    ),
]
DETECTORS = [c for c in CASES if c.name != "ensemble"]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request) -> Case:
    return request.param


def test_higher_score_means_more_anomalous(case: Case):
    estimator = case.fit(0)
    typical = case.score(estimator, FRESH)
    assert case.score(estimator, outlier())[0] > np.quantile(typical, 0.99)


def test_scoring_does_not_learn(case: Case):
    estimator = case.fit(0)
    first = case.score(estimator, FRESH)
    assert np.array_equal(case.score(estimator, FRESH), first)


def test_a_score_is_computed_before_the_event_is_learned(case: Case):
    estimator = case.fit(0)
    untouched = copy.deepcopy(estimator)
    scores = []
    for row in FRESH[:20]:  # prequential: score the event, then learn it
        scores.append(case.score(estimator, row[None, :])[0])
        case.learn(estimator, row[None, :])
    expected = []
    for row in FRESH[:20]:
        expected.append(case.score(untouched, row[None, :])[0])
        case.learn(untouched, row[None, :])
    assert scores == expected


@pytest.mark.parametrize("case", DETECTORS, ids=lambda c: c.name)
def test_one_event_and_batch_forms_agree(case: Case):
    detector = case.fit(0)
    rows = FRESH[:10]
    one = [detector.score_one(dict(zip(FEATURE_NAMES, r, strict=True))) for r in rows]
    assert np.allclose(one, detector.score_many(rows), rtol=1e-12, atol=1e-12)


def test_the_ensemble_returns_scores_from_before_its_online_learning():
    model = train(HISTORY.iloc[:450], random_state=0)[0]
    before = copy.deepcopy(model)
    result = model.score_batch(FRESH)
    assert np.array_equal(result.online, before.online.score_many(FRESH))
    assert np.array_equal(result.score, _ensemble_score(before, FRESH))
    assert not np.array_equal(model.online.score_many(FRESH), result.online)  # and then it learned
    learned_only_normal = copy.deepcopy(before)
    learned_only_normal.online.learn_many(FRESH[~result.flagged])
    assert np.array_equal(model.online.score_many(FRESH), learned_only_normal.online.score_many(FRESH))


def test_deterministic_for_a_seed(case: Case):
    assert np.array_equal(case.score(case.fit(7), FRESH), case.score(case.fit(7), FRESH))


def test_state_survives_save_and_load(case: Case, tmp_path):
    estimator = case.fit(0)
    case.learn(estimator, FRESH[:50])
    back = case.save_load(estimator, tmp_path)
    assert np.array_equal(case.score(back, FRESH), case.score(estimator, FRESH))
    case.learn(back, FRESH[50:])  # and it keeps learning from where it was
    case.learn(estimator, FRESH[50:])
    assert np.array_equal(case.score(back, FRESH), case.score(estimator, FRESH))


def test_zscore_detectors_that_learn_apart_rebase_to_the_state_of_learning_together():
    rng = np.random.default_rng(3)
    shared = rng.normal(2.0, 1.5, (400, len(FEATURE_NAMES)))
    part_a = rng.normal(5.0, 0.5, (300, len(FEATURE_NAMES)))  # two processes, unlike traffic
    part_b = rng.exponential(3.0, (700, len(FEATURE_NAMES)))
    together = OnlineStandardizedDetector()
    for X in (shared, part_a, part_b):
        together.learn_many(X)
    base = OnlineStandardizedDetector()
    base.learn_many(shared)
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    a.learn_many(part_a)
    b.learn_many(part_b)

    checkpoint = a.rebase(base, base)  # the first to save: base plus what a learned
    checkpoint = b.rebase(base, checkpoint)  # the second adds what b learned
    probe = rng.normal(3.0, 2.0, (200, len(FEATURE_NAMES)))
    assert dict(checkpoint.scaler_.counts) == dict(together.scaler_.counts)
    for name in checkpoint.features:
        assert checkpoint.scaler_.means[name] == pytest.approx(together.scaler_.means[name], rel=1e-9)
        assert checkpoint.scaler_.vars[name] == pytest.approx(together.scaler_.vars[name], rel=1e-9)
    assert np.allclose(checkpoint.score_many(probe), together.score_many(probe))
    assert a.rebase(a, base).scaler_.counts == base.scaler_.counts  # nothing learned: nothing added


@pytest.fixture(scope="module")
def isolation_forest() -> IsolationForestDetector:
    return IsolationForestDetector(n_estimators=50).fit(random_rows(3000, seed=1, missing=False))


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_the_isolation_forest_scores_as_scikit_learn_to_the_bit(isolation_forest, n, missing):
    rows = random_rows(n, seed=n, missing=missing)
    expected = -isolation_forest.forest_.score_samples(rows[:, isolation_forest._idx])
    np.testing.assert_array_equal(isolation_forest.score_many(rows), expected)


def learned_scaler(seed: int) -> preprocessing.StandardScaler:
    """A river scaler that learned some rows; one of its columns constant so far (variance 0)."""
    scaler = preprocessing.StandardScaler()
    rows = random_rows(500, seed, missing=False)[:, :6] + 2.0
    rows[:, 5] = 3.7
    scaler.learn_many(pd.DataFrame(rows, columns=FEATURE_NAMES[:6]))
    scaler.vars[FEATURE_NAMES[5]] = 0.0
    return scaler


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_standardise_is_rivers_transform_many_to_the_bit(n, missing):
    scaler, columns = learned_scaler(seed=0), FEATURE_NAMES[:6]
    rows = random_rows(n, seed=n, missing=missing)[:, :6]
    expected = scaler.transform_many(pd.DataFrame(rows, columns=columns)).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(standardise(scaler, rows, columns), expected)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN rows, on both sides
def test_learn_scaler_learns_as_rivers_learn_many_to_the_bit():
    columns = FEATURE_NAMES[:6]
    ours, rivers = learned_scaler(seed=1), learned_scaler(seed=1)
    for n in (1, 2, 100, 1000, 1, 3000, 17):
        rows = random_rows(n, seed=n, missing=n == 17)[:, :6]  # with NaN last: the variances become NaN
        learn_scaler(ours, rows, columns)
        rivers.learn_many(pd.DataFrame(rows, columns=columns))
        for name, var in rivers.vars.items():
            rivers.vars[name] = 0.0 if var < 0 else var
        for statistic in ("counts", "means", "vars"):
            np.testing.assert_array_equal(
                [getattr(ours, statistic)[c] for c in columns], [getattr(rivers, statistic)[c] for c in columns]
            )
