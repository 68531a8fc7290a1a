"""The supervised classifier scores small batches with all its trees at once, to scikit-learn's bit."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from model.features import FEATURE_NAMES
from model.supervised import SupervisedDetector
from tests.unit.model.rows import BATCH_SIZES, random_rows


@pytest.fixture(scope="module")
def supervised() -> SupervisedDetector:
    """Fitted on rows with missing values in two features, so that splits send them either way."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, len(FEATURE_NAMES)))
    X[rng.random(4000) < 0.2, 0] = np.nan
    X[rng.random(4000) < 0.2, 3] = np.nan
    y = np.nan_to_num(X[:, 0], nan=2.0) + X[:, 1] - np.nan_to_num(X[:, 3], nan=-1.0) + rng.normal(size=4000) > 2.5
    return SupervisedDetector(max_iter=60, min_samples_leaf=20).fit(X, y)


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_scores_are_scikit_learns_predict_proba_to_the_bit(supervised, n, missing):
    rows = random_rows(n, seed=n, missing=missing)
    np.testing.assert_array_equal(supervised.score_many(rows), supervised.classifier_.predict_proba(rows)[:, 1])


def test_a_model_with_categorical_features_is_scored_by_scikit_learn():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 4, 500), rng.normal(size=500)]).astype(np.float64)
    y = (X[:, 0] == 2) | (X[:, 1] > 1)
    detector = SupervisedDetector(max_iter=10, min_samples_leaf=5)
    detector.classifier_ = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(X, y)
    np.testing.assert_array_equal(detector.score_many(X[:20]), detector.classifier_.predict_proba(X[:20])[:, 1])
