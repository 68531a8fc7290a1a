"""The supervised fraud classifier: gradient-boosted trees on labelled history.

Speaks the detectors' protocol (``model.detectors.Detector``): ``score_many``
returns the fraud probability, so higher means more suspicious, and ``learn_*``
are no-ops: it learns only in batch, from labels that had arrived by the training
cut-off (``model.train.train``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController

from model.explain import boosted_forest, tree_contributions
from model.features import FEATURE_NAMES

_threadpools: ThreadpoolController | None = None  # found once: finding the libraries takes ~20 ms


def _openmp_threads(n: int | None) -> AbstractContextManager[Any]:
    if n is None:
        return nullcontext()
    global _threadpools
    if _threadpools is None:
        _threadpools = ThreadpoolController()
    return _threadpools.limit(limits=n, user_api="openmp")


class SupervisedDetector:
    """scikit-learn's ``HistGradientBoostingClassifier`` behind the detector protocol.

    The defaults are those that did best on a time split of generated data (train on
    months 1-6, test on 7-12: ROC-AUC 0.999, PR-AUC 0.97): a moderate learning rate,
    leaves of at least 100 events and some L2, with early stopping on the loss.

    Parameters
    ----------
    learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization, max_iter
        Passed to ``HistGradientBoostingClassifier``.
    random_state : int
        Seeds the early-stopping validation split.
    n_threads : int or None, default 1
        OpenMP threads for fitting and scoring (None: scikit-learn's default, all
        cores). scikit-learn opens a parallel region per tree (scoring) and per
        split (fitting); on cores shared with other services that costs more than
        it saves: on a busy 2-core machine a 5,000-event batch scored in 3.3 s with
        the default threads and 0.3 s with one, and a 100k-row fit took 31 s
        against 10 s. Raise it on a dedicated training machine.

    Attributes
    ----------
    classifier_ : HistGradientBoostingClassifier
        The fitted model.
    """

    def __init__(
        self,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        l2_regularization: float = 5.0,
        max_iter: int = 500,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: np.ndarray, y: np.ndarray) -> SupervisedDetector:
        """Fit on feature rows ``X`` and their fraud labels ``y`` (both classes needed)."""
        classifier = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_iter=self.max_iter,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=30,
            scoring="loss",
            random_state=self.random_state,
        )
        with _openmp_threads(self.n_threads):
            self.classifier_ = classifier.fit(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=bool))
        return self

    def score_many(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability of each row."""
        if not len(X):
            return np.zeros(0)
        classifier = self.classifier_
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 2 and X.shape[1] == classifier.n_features_in_:
            try:
                forest = boosted_forest(classifier)
            except ValueError:  # categorical features: scikit-learn's way
                pass
            else:
                # classifier._raw_predict(X) to the bit: 0 + the baseline, then tree after tree
                raw = forest.trees.sum_leaf_values(X, forest.expected, 0.0 + classifier._baseline_prediction[0, 0])
                return classifier._loss.predict_proba(raw[:, None])[:, 1]
        with _openmp_threads(self.n_threads):
            return classifier.predict_proba(X)[:, 1]

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.score_many(np.array([[x[name] for name in FEATURE_NAMES]], dtype=np.float64))[0])

    def learn_many(self, X: np.ndarray) -> None:
        return None

    def learn_one(self, x: dict[str, float]) -> None:
        return None

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions (log-odds) of each row's score: the model's own evidence."""
        return tree_contributions(self.classifier_, X)
