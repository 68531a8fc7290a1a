"""Anomaly detectors behind one protocol: higher score = more anomalous.

Every detector has ``score_one(x) -> float`` and ``learn_one(x) -> None`` (river's
protocol, ``x`` a ``{feature: value}`` dict) and a batch form, ``score_many(X)`` /
``learn_many(X)`` on a 2-D array, which the scorer uses for speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from river import anomaly, compose, preprocessing
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from model.features import FEATURE_NAMES
from model.trees import StackedTrees, built_once

# What the unsupervised detectors look at: the amount against its category's norms,
# night time, a night-time burst and the spend burst. Population-level features: they
# mean the same on a card's first day as after a year, so the detectors work from a
# cold start (on generated months 7-12 this set beat wider, card-relative ones).
UNSUPERVISED_FEATURES: tuple[str, ...] = ("amt_category_logz", "night", "night_count_24h", "log_sum_24h")


class Detector(Protocol):
    def score_one(self, x: dict[str, float]) -> float: ...
    def learn_one(self, x: dict[str, float]) -> None: ...
    def score_many(self, X: np.ndarray) -> np.ndarray: ...
    def learn_many(self, X: np.ndarray) -> None: ...


def learn_scaler(scaler: preprocessing.StandardScaler, X: np.ndarray, columns: Sequence[str]) -> None:
    """``scaler.learn_many`` of a frame of ``X`` with these columns, keeping every variance >= 0.

    river's mini-batch variance (E[x^2] - mean^2) can round to just below 0 for a
    column that is constant so far (-1.8e-15 for three rows of 3.7); its square
    root is then complex and ``transform_many`` fails.

    The plain scaler's update is river's own lines, on the column-major array river would
    make of the frame (its sums then add in the same order), without the dataframe round
    trips (~0.6 ms a batch): the same statistics to the bit.
    """
    if scaler.window_size is not None or not scaler.with_std:
        scaler.learn_many(pd.DataFrame(X, columns=list(columns)))
    else:
        X = np.asfortranarray(X, dtype=np.float64)
        new_means = np.nanmean(X, axis=0)
        new_vars = np.einsum("ij,ij->j", X, X) / len(X) - new_means**2
        new_counts = np.sum(~np.isnan(X), axis=0)
        # As Python numbers: the same double arithmetic, without a numpy scalar's cost at every step.
        columns_stats = zip(columns, new_means.tolist(), new_vars.tolist(), new_counts.tolist(), strict=True)
        for col, new_mean, new_var, new_count in columns_stats:
            old_mean, old_var, old_count = scaler.means[col], scaler.vars[col], scaler.counts[col]
            a = old_count / (old_count + new_count)
            b = new_count / (old_count + new_count)
            scaler.means[col] = a * old_mean + b * new_mean
            scaler.vars[col] = a * old_var + b * new_var + a * b * (old_mean - new_mean) ** 2
            scaler.counts[col] += new_count
    for name, var in scaler.vars.items():
        if var < 0:
            scaler.vars[name] = 0.0


def standardise(scaler: preprocessing.StandardScaler, X: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """``scaler.transform_many`` of a frame of ``X`` with these columns, to the bit, without the
    dataframe round trips (~1 ms a batch): river's own steps, ``(x - mean) / var ** 0.5`` where
    the variance is > 0 and ``x - mean`` elsewhere.

    In column-major order, as river computes it: a matrix product of the result (the online
    classifier's) then adds in the same order as river's.
    """
    if scaler.window_size is not None:  # rolling statistics: river's way
        frame = pd.DataFrame(X, columns=list(columns))
        return scaler.transform_many(frame).to_numpy(dtype=np.float64)
    z = np.asfortranarray(X, dtype=np.float64) - np.array([scaler.means[c] for c in columns], dtype=np.float64)
    if scaler.with_std:
        stds = np.array([scaler.vars[c] ** 0.5 for c in columns], dtype=np.float64)
        np.divide(z, stds, where=stds > 0, out=z)
    return z


def _stacked_forest(forest: IsolationForest) -> tuple[StackedTrees, np.ndarray, np.ndarray]:
    """The forest's trees stacked, each node's share of a row's depth when it is the row's leaf,
    and the divisor of the summed depths (``n_trees * c(max_samples)``)."""
    stacked = StackedTrees.of_sklearn([estimator.tree_ for estimator in forest.estimators_])
    paths = zip(forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True)
    leaf_depth = np.concatenate([path + average - 1.0 for path, average in paths])
    return stacked, leaf_depth, len(forest.estimators_) * _average_path_length([forest._max_samples])


def _row(x: dict[str, float]) -> np.ndarray:
    return np.array([[x[name] for name in FEATURE_NAMES]], dtype=np.float64)


class IsolationForestDetector:
    """scikit-learn's Isolation Forest, trained in batch; its sign flipped.

    ``score_samples`` is high for normal points; we return its negation so that
    higher means more anomalous, like every other detector here. It does not learn
    online: ``learn_*`` are no-ops, retraining is a batch job.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int = 2048,
        random_state: int = 0,
        features: Sequence[str] = UNSUPERVISED_FEATURES,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.features = tuple(features)

    def fit(self, X: np.ndarray) -> IsolationForestDetector:
        """Fit on full feature rows (``FEATURE_NAMES`` columns); it uses ``features`` of them."""
        self._idx = [FEATURE_NAMES.index(f) for f in self.features]
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(X)),
            random_state=self.random_state,
        ).fit(X[:, self._idx])
        return self

    def score_many(self, X: np.ndarray) -> np.ndarray:
        forest = self.forest_
        if forest._max_features != len(self._idx) or forest.verbose:  # subsampled features: sklearn's way
            return -forest.score_samples(X[:, self._idx])
        return self._score_many_exactly(np.asarray(X[:, self._idx], dtype=np.float32))

    def _score_many_exactly(self, X: np.ndarray) -> np.ndarray:
        """``-forest_.score_samples(X)``, to the bit, without its per-tree overhead (validation and a
        joblib dispatch for each of the trees: milliseconds per micro-batch).

        The same arithmetic in the same order as scikit-learn's ``_compute_score_samples``:
        ``depths += path_length[leaf] + average_path_length[leaf] - 1`` tree after tree, then
        ``2 ** -(depths / (n_trees * c(max_samples)))``; the per-leaf sums are taken once per forest.
        Every tree is walked in compiled code (:class:`model.trees.StackedTrees`).
        """
        forest = self.forest_
        trees, leaf_depth, denominator = built_once(forest, forest.estimators_, lambda: _stacked_forest(forest))
        depths = trees.sum_leaf_values(X, leaf_depth)
        return 2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.score_many(_row(x))[0])

    def learn_many(self, X: np.ndarray) -> None:
        return None

    def learn_one(self, x: dict[str, float]) -> None:
        return None


class OnlineStandardizedDetector:
    """river online detector: distance from the running mean, in running std units.

    A river ``StandardScaler`` tracks each feature's mean and variance as events
    arrive, so the notion of "normal" follows drift without retraining. The score
    is the root mean square of the *upper-tail* z-scores of its features
    (big amounts, bursts, night): being unusually small is not suspicious.
    """

    def __init__(self, features: Sequence[str] = UNSUPERVISED_FEATURES, clip: float = 10.0):
        self.features = tuple(features)
        self.clip = clip
        self.scaler_ = preprocessing.StandardScaler()
        self._idx = [FEATURE_NAMES.index(f) for f in self.features]

    def _z(self, X: np.ndarray) -> np.ndarray:
        return standardise(self.scaler_, X[:, self._idx], self.features)

    def score_many(self, X: np.ndarray) -> np.ndarray:
        if not self.scaler_.counts:
            return np.zeros(len(X))
        z = np.clip(self._z(X), 0.0, self.clip)
        return np.sqrt(np.mean(z * z, axis=1))

    def learn_many(self, X: np.ndarray) -> None:
        if len(X):
            learn_scaler(self.scaler_, X[:, self._idx], self.features)

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.score_many(_row(x))[0])

    def learn_one(self, x: dict[str, float]) -> None:
        self.learn_many(_row(x))

    def rebase(self, base: OnlineStandardizedDetector, onto: OnlineStandardizedDetector) -> OnlineStandardizedDetector:
        """``onto`` plus what this detector learned since it was ``base``: a new detector.

        Running means and variances combine exactly (Chan et al.), so scorers that each
        learn from their own partitions and rebase onto the shared checkpoint end up with
        the statistics of all the events they learned from together, whatever the order.
        """
        merged = OnlineStandardizedDetector(self.features, self.clip)
        for name in self.features:
            learned = _moments_difference(_moments(self.scaler_, name), _moments(base.scaler_, name))
            n, mean, m2 = _moments_sum(_moments(onto.scaler_, name), learned)
            if n:
                merged.scaler_.counts[name] = n
                merged.scaler_.means[name] = mean
                merged.scaler_.vars[name] = m2 / n
        return merged


# (count, mean, sum of squared deviations) of one feature: the form in which moments add up.
Moments = tuple[int, float, float]


def _moments(scaler: preprocessing.StandardScaler, name: str) -> Moments:
    n = scaler.counts.get(name, 0)
    return (n, scaler.means.get(name, 0.0), scaler.vars.get(name, 0.0) * n) if n else (0, 0.0, 0.0)


def _moments_sum(a: Moments, b: Moments) -> Moments:
    (na, ma, m2a), (nb, mb, m2b) = a, b
    n = na + nb
    if not nb or not na:
        return a if nb == 0 else b
    delta = mb - ma
    return n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n


def _moments_difference(total: Moments, part: Moments) -> Moments:
    """The moments of the events in ``total`` but not in ``part`` (``part`` a prefix of them)."""
    (n, m, m2), (na, ma, m2a) = total, part
    nb = n - na
    if nb <= 0:
        return 0, 0.0, 0.0
    mb = (n * m - na * ma) / nb
    return nb, mb, max(m2 - m2a - (mb - ma) ** 2 * na * nb / n, 0.0)


class HalfSpaceTreesDetector:
    """river's Half-Space Trees, event by event: accurate on drift, ~30 us/event.

    Slower than :class:`OnlineStandardizedDetector`; pick it with
    ``--online-detector hst`` when throughput matters less than fidelity.
    """

    def __init__(
        self,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int = 0,
        features: Sequence[str] = UNSUPERVISED_FEATURES,
    ):
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.features = tuple(features)
        self._idx = [FEATURE_NAMES.index(f) for f in self.features]
        self.model_ = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=seed),
        )

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.model_.score_one({f: x[f] for f in self.features}))

    def learn_one(self, x: dict[str, float]) -> None:
        self.model_.learn_one({f: x[f] for f in self.features})

    def score_many(self, X: np.ndarray) -> np.ndarray:
        names = self.features
        return np.array(
            [float(self.model_.score_one(dict(zip(names, r, strict=True)))) for r in X[:, self._idx].tolist()]
        )

    def learn_many(self, X: np.ndarray) -> None:
        names = self.features
        for r in X[:, self._idx].tolist():
            self.model_.learn_one(dict(zip(names, r, strict=True)))


ONLINE_DETECTORS = {"zscore": OnlineStandardizedDetector, "hst": HalfSpaceTreesDetector}
