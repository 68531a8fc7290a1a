"""Trees walked together in compiled code land in the very leaves scikit-learn's own walk finds."""

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from model.trees import StackedTrees, built_once


def with_missing_and_infinite(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    X = X.copy()
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.03] = np.inf
    X[rng.random(X.shape) < 0.03] = -np.inf
    return X


def test_the_sums_over_leaves_are_those_of_scikit_learns_apply_to_the_bit_missing_and_infinite_values_included():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0], nan=3.0) + rng.normal(size=3000)
    trees = [DecisionTreeRegressor(max_depth=depth, random_state=depth).fit(X, y).tree_ for depth in (1, 4, 9)]
    stacked = StackedTrees.of_sklearn(trees)
    assert stacked.missing_right.any() and not stacked.missing_right.all()  # both sides taken by NaN
    values = rng.normal(size=len(stacked.feature))  # a value per node: a wrong leaf shows
    for rows in (X[:1], X[:2], X[:17], X[:1000], with_missing_and_infinite(rng.normal(size=(200, 5)) * 3, rng)):
        rows = rows.astype(np.float32)  # as scikit-learn's trees take them (float64 rows: test_supervised)
        expected = np.full(len(rows), 0.25)
        for root, tree in zip(stacked.roots, trees, strict=True):
            expected += values[root + tree.apply(rows)]
        np.testing.assert_array_equal(stacked.sum_leaf_values(rows, values, 0.25), expected)
    assert stacked.sum_leaf_values(X[:0], values).shape == (0,)


def test_what_is_built_once_is_built_again_after_a_refit():
    class Model:
        fitted = [1]

    model, builds = Model(), []

    def build() -> int:
        builds.append(model.fitted)
        return len(builds)

    assert built_once(model, model.fitted, build) == built_once(model, model.fitted, build) == 1
    model.fitted = [1]  # equal, but another fit
    assert built_once(model, model.fitted, build) == 2
