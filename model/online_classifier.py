"""The online supervised classifier: river logistic regression learning from delayed labels.

One ``learner`` process owns it: each label arriving on the ``labels`` topic is
joined with the feature row its event was *scored* with, so it learns exactly what
serving saw, and the learner publishes snapshots that every scorer loads (one
model state however many scorers run). Learning is in mini-batches (river's
``learn_many``), so it keeps up with the label stream without a Python loop per
label.

Frauds are rare (~0.5 %): most legitimate labels are skipped at random
(``negative_rate``), which keeps the gradient from being all negatives; the
probability is then not calibrated, but only its ranking is used (it is put on
the nines scale of the recent labelled events, like every other detector).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from river import linear_model, optim, preprocessing
from sklearn.metrics import roc_auc_score

from model.detectors import learn_scaler, standardise
from model.features import FEATURE_NAMES
from model.scale import NinesScale

# Rows per gradient step, and labels per scaler update. On generated data (months 7-9 ->
# 10-12) steps of 50 learned rows beat 500 (ROC-AUC 0.975 against 0.96), and updating the
# scaler slice by slice beat fitting it on everything first.
_CHUNK = 50
_SLICE = 5000


class OnlineClassifier:
    """Standardised features -> river ``LogisticRegression``, learned from labels as they arrive.

    Parameters
    ----------
    learning_rate : float
        SGD step (0.5: on generated data, months 1-6 -> 7-12, ROC-AUC 0.98 on its own).
    negative_rate : float
        Share of legitimate labels learned from (all frauds are).
    min_frauds, min_labels : int
        Until it has learned this many frauds and labels it is not ``ready`` and
        the ensemble leaves it out.
    min_auc : float
        Nor until its test-then-train ROC-AUC reaches this: every slice of labels is
        scored before it is learned, and the recent ``reference_size`` of those
        scores are judged. A linear model misreads cards whose state is cold (a
        replay into an empty behaviour table: 0.73-0.82 on generated data), and
        then it would only blur the ensemble.
    reference_size : int
        Recent labelled rows kept for the nines scale (learner side only; a
        snapshot carries the scale, not the rows).
    seed : int
        Seeds the subsampling of negatives.

    Attributes
    ----------
    labels_, frauds_ : int
        Labels and frauds learned so far.
    learned_until_ : str or None
        Event time of the latest label learned (ISO 8601).
    scale_ : NinesScale or None
        The classifier's scores on recent labelled rows, as of the last :meth:`refresh_scale`.
    checked_auc_ : float or None
        Its test-then-train ROC-AUC on recent labels, as of the last :meth:`refresh_scale`
        (None until they hold both classes).
    version : str
        ``online-<n>``: n counts the snapshots published.
    """

    # Class-level defaults: a snapshot pickled before the test-then-train check never joins.
    min_auc = 0.9
    checked_auc_: float | None = None

    def __init__(
        self,
        learning_rate: float = 0.5,
        negative_rate: float = 0.1,
        min_frauds: int = 50,
        min_labels: int = 1000,
        min_auc: float = 0.9,
        reference_size: int = 20_000,
        seed: int = 0,
    ):
        self.learning_rate = learning_rate
        self.negative_rate = negative_rate
        self.min_frauds = min_frauds
        self.min_labels = min_labels
        self.min_auc = min_auc
        self.reference_size = reference_size
        self.scaler_ = preprocessing.StandardScaler()
        self.classifier_ = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate))
        self.labels_ = 0
        self.frauds_ = 0
        self.learned_until_: str | None = None
        self.scale_: NinesScale | None = None
        self.snapshots_ = 0
        self.reference_ = np.empty((0, len(FEATURE_NAMES)))
        self.checked_ = (np.empty(0), np.empty(0, dtype=bool))  # (score before learning, label), recent
        self._rng = np.random.default_rng(seed)

    @property
    def version(self) -> str:
        return f"online-{self.snapshots_}"

    @property
    def ready(self) -> bool:
        """Whether it has learned enough to join the ensemble."""
        return (
            self.scale_ is not None
            and self.frauds_ >= self.min_frauds
            and self.labels_ >= self.min_labels
            and (self.min_auc <= 0 or (self.checked_auc_ is not None and self.checked_auc_ >= self.min_auc))
        )

    def _frame(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.asarray(X, dtype=np.float64), columns=list(FEATURE_NAMES))

    def _standardised(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(self.scaler_.transform_many(self._frame(X)))

    def learn_many(self, X: np.ndarray, y: np.ndarray, learned_until: str | None = None) -> None:
        """Learn labelled rows (``FEATURE_NAMES`` columns, in event order)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        y = np.asarray(y, dtype=bool)
        if not len(X):
            return
        for start in range(0, len(X), _SLICE):  # the same steps whether rows come in one call or many
            Xs, ys = X[start : start + _SLICE], y[start : start + _SLICE]
            if self.labels_:  # test, then train
                scores, labels = self.checked_
                keep_last = self.reference_size
                self.checked_ = (np.concatenate([scores, self.score_many(Xs)])[-keep_last:],
                                 np.concatenate([labels, ys])[-keep_last:])  # fmt: skip
            learn_scaler(self.scaler_, Xs, FEATURE_NAMES)
            keep = ys | (self._rng.random(len(ys)) < self.negative_rate)
            z, target = self._standardised(Xs[keep]), pd.Series(ys[keep])
            for step in range(0, len(z), _CHUNK):
                rows = slice(step, step + _CHUNK)
                self.classifier_.learn_many(z.iloc[rows], target.iloc[rows])
            self.labels_ += len(ys)
            self.frauds_ += int(ys.sum())
        self.learned_until_ = learned_until or self.learned_until_
        self.reference_ = np.concatenate([self.reference_, X])[-self.reference_size :]

    def score_many(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability of each row (0 before anything was learned)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if not self.labels_ or not len(X):
            return np.zeros(len(X))
        # river's predict_proba_many without its dataframes (~1 ms a batch): its logit (a matrix
        # product in column-major order, as it does it) and its sigmoid, to the bit.
        weights = np.array([self.classifier_.weights.get(name, 0.0) for name in FEATURE_NAMES])
        logits = standardise(self.scaler_, X, FEATURE_NAMES) @ weights + self.classifier_.intercept
        return self.classifier_.loss.mean_func(logits)

    def to_nines(self, proba: np.ndarray) -> np.ndarray:
        """Probabilities from :meth:`score_many` on the nines scale of recent labelled events."""
        assert self.scale_ is not None, "refresh_scale() before putting scores on the nines scale"
        return self.scale_(proba)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's part in each row's log-odds: its weight times its standardised value."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        weights = np.array([self.classifier_.weights.get(name, 0.0) for name in FEATURE_NAMES])
        return standardise(self.scaler_, X, FEATURE_NAMES) * weights

    def refresh_scale(self) -> None:
        """Re-fit the nines scale on the recent labelled rows (once there are ``min_labels`` of them)."""
        if len(self.reference_) >= self.min_labels:
            self.scale_ = NinesScale(self.score_many(self.reference_))
        scores, labels = self.checked_
        if 0 < labels.sum() < len(labels):
            self.checked_auc_ = float(roc_auc_score(labels, scores))

    def snapshot(self) -> OnlineClassifier:
        """A copy for the scorers, with a fresh scale and the next version; without the reference rows."""
        self.refresh_scale()
        self.snapshots_ += 1
        reference, self.reference_ = self.reference_, np.empty((0, len(FEATURE_NAMES)))
        try:
            return copy.deepcopy(self)
        finally:
            self.reference_ = reference

    def describe(self) -> dict[str, object]:
        """What it has learned, for logs and ``txguard model list``."""
        return {
            "version": self.version,
            "labels": self.labels_,
            "frauds": self.frauds_,
            "learned_until": self.learned_until_,
            "checked_auc": None if self.checked_auc_ is None else round(self.checked_auc_, 4),
            "ready": self.ready,
        }
