"""The online classifier: learns fraud from labelled feature rows, in mini-batches."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from model.features import FEATURE_NAMES
from model.online_classifier import OnlineClassifier
from tests.unit.model.rows import BATCH_SIZES, random_rows

AMOUNT = FEATURE_NAMES.index("amt_category_logz")
NIGHT = FEATURE_NAMES.index("night")


def labelled(n: int, fraud_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where fraud means a large amount for the category, mostly at night."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = rng.random(n) < fraud_rate
    X[y, AMOUNT] += 3.0
    X[:, NIGHT] = np.where(y, rng.random(n) < 0.7, rng.random(n) < 0.1)
    return X, y


def test_it_learns_to_rank_frauds_on_later_rows_and_joins_only_when_ready():
    clf = OnlineClassifier(min_frauds=50, min_labels=1000, min_auc=0.8)  # what this synthetic signal allows
    X, y = labelled(20_000, 0.01, seed=0)
    assert np.array_equal(clf.score_many(X[:10]), np.zeros(10))  # nothing learned: no opinion
    clf.learn_many(X[:500], y[:500])
    assert not clf.snapshot().ready  # too few frauds and labels so far
    clf.learn_many(X[500:], y[500:], learned_until="2019-07-08T00:00:00")
    snapshot = clf.snapshot()
    described = snapshot.describe()
    assert described.pop("checked_auc") >= clf.min_auc  # scored before learned, slice by slice
    assert snapshot.ready and described == {
        "version": "online-2", "labels": 20_000, "frauds": int(y.sum()),
        "learned_until": "2019-07-08T00:00:00", "ready": True,
    }  # fmt: skip
    later_X, later_y = labelled(20_000, 0.01, seed=1)
    assert roc_auc_score(later_y, snapshot.score_many(later_X)) > 0.9  # chance is 0.5
    nines = snapshot.to_nines(snapshot.score_many(later_X))
    assert np.all(nines >= 0) and nines[later_y].mean() > 1.5 > nines[~later_y].mean()


def test_a_snapshot_scores_like_the_learner_and_carries_no_training_rows():
    clf = OnlineClassifier()
    X, y = labelled(5_000, 0.05, seed=2)
    clf.learn_many(X, y)
    snapshot = clf.snapshot()
    assert len(snapshot.reference_) == 0 and len(clf.reference_) == 5_000
    assert np.array_equal(snapshot.score_many(X), clf.score_many(X))
    clf.learn_many(X, y)  # the learner goes on; the published snapshot does not move
    assert not np.array_equal(snapshot.score_many(X), clf.score_many(X))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf, on both sides
@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_scores_and_contributions_are_rivers_to_the_bit(n, missing):
    clf = OnlineClassifier()
    clf.learn_many(*labelled(2_000, 0.05, seed=4))
    rows = random_rows(n, seed=n, missing=missing)
    standardised = clf.scaler_.transform_many(pd.DataFrame(rows, columns=list(FEATURE_NAMES)))
    proba = clf.classifier_.predict_proba_many(standardised)[True].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(clf.score_many(rows), proba)
    weights = np.array([clf.classifier_.weights[name] for name in FEATURE_NAMES])
    np.testing.assert_array_equal(clf.contributions(rows), standardised.to_numpy(dtype=np.float64) * weights)


def test_contributions_are_each_features_part_of_the_log_odds():
    clf = OnlineClassifier()
    X, y = labelled(5_000, 0.05, seed=3)
    clf.learn_many(X, y)
    contributions = clf.contributions(X[y][:20])
    intercept = clf.classifier_.intercept
    log_odds = np.log(clf.score_many(X[y][:20]) / (1 - clf.score_many(X[y][:20])))
    assert contributions.sum(axis=1) + intercept == pytest.approx(log_odds, rel=1e-6, abs=1e-9)
    assert np.argmax(contributions.mean(axis=0)) in (AMOUNT, NIGHT)


def test_a_column_constant_so_far_never_gets_a_negative_variance():
    clf = OnlineClassifier()
    X, y = labelled(3, 0.0, seed=4)
    X[:, AMOUNT] = 3.7  # E[x^2] - mean^2 rounds below zero for this value (-1.8e-15)
    clf.learn_many(X, y)
    assert all(v >= 0 for v in clf.scaler_.vars.values())
    assert np.all(np.isfinite(clf.score_many(X)))


def test_labels_it_cannot_rank_keep_it_out_of_the_ensemble():
    """Enough frauds and labels, but its test-then-train ROC-AUC is chance: not ready."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(20_000, len(FEATURE_NAMES))), rng.random(20_000) < 0.02  # labels unrelated to X
    clf = OnlineClassifier()
    clf.learn_many(X, y)
    snapshot = clf.snapshot()
    assert snapshot.frauds_ >= snapshot.min_frauds and snapshot.checked_auc_ < 0.7
    assert not snapshot.ready
