"""The ensemble: detectors on one scale, one combined score, an alert budget, explanations.

Scale
    Every detector's raw score is mapped to its *nines*, ``-log10(1 - F(x))``, where
    ``F`` is the distribution of that detector's scores on training events: 2 nines
    is the top 1 %, 3 the top 0.1 %. The quantile grid is dense in the upper tail
    (down to 1e-6), where alerts live; above the highest training score the nines
    keep rising at the tail's average rate, so events beyond anything seen in
    training still rank among themselves. Monotone: a detector's ranking is kept.

Combination
    With a supervised classifier (trained once enough labels had arrived) the
    combined nines are the classifier's alone: on generated data mixing the
    unsupervised detectors in lowered PR-AUC (0.97 -> 0.86). Without it (cold
    start, or labels off) they are ``w * iforest + (1 - w) * online`` with
    ``w = iforest_weight`` (0.7).

Score
    ``score = nines / (nines + 3)``, in [0, 1): 0.5 is "one in a thousand", 0.75
    one in a billion. Strictly increasing, so no two nines share a score (a clip
    at some maximum would tie the most suspicious events).

Threshold
    ``flagged = score >= threshold``. The threshold is a fixed one when given
    (``threshold`` here or per call), else the :class:`model.threshold.AlertBudget`'s:
    the score above which recent event-days averaged ``alerts_per_day`` alerts. The
    budget is initialised from training and observes every scored batch, after
    the batch is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model.detectors import Detector, IsolationForestDetector, OnlineStandardizedDetector
from model.drift import DriftEvent, DriftMonitor
from model.explain import EventContext, describe_contributions, zscore_contributions
from model.features import FEATURE_NAMES, CategoryNorms
from model.supervised import SupervisedDetector
from model.threshold import AlertBudget

NINES_AT_HALF_SCORE = 3.0
_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 0.99, 100), 1.0 - np.logspace(-2, -6, 121)]))
_TAIL_LEVEL = 0.99  # the extrapolation above the training maximum keeps the slope from here to the top
_SECONDS_PER_DAY = 86_400
# Monitored for drift besides the score. Quantities with a daily cycle (hour, night,
# 24 h windows) would drift by design in batches shorter than a day.
DRIFT_FEATURES: tuple[str, ...] = ("log_amt", "amt_category_logz")


class NinesScale:
    """A raw score's nines among reference scores: ``-log10(1 - F(x))``, >= 0.

    Parameters
    ----------
    reference : numpy.ndarray
        Scores of the reference (training) events; non-finite values are ignored.
    """

    def __init__(self, reference: np.ndarray):
        values = np.asarray(reference, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if not len(values):
            values = np.zeros(1)
        quantiles = np.quantile(values, _LEVELS)
        # A flat stretch (many equal scores) takes its lowest level: a tie is not rare.
        self.quantiles_, first = np.unique(quantiles, return_index=True)
        self.nines_ = -np.log10(1.0 - _LEVELS[first])
        tail = np.flatnonzero(_LEVELS[first] >= _TAIL_LEVEL)
        low = int(tail[0]) if len(tail) and tail[0] < len(first) - 1 else max(len(first) - 2, 0)
        rise = self.quantiles_[-1] - self.quantiles_[low]
        self.slope_ = float((self.nines_[-1] - self.nines_[low]) / rise) if rise > 0 else 1.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        nines = np.interp(x, self.quantiles_, self.nines_, left=0.0, right=self.nines_[-1])
        top = self.quantiles_[-1]
        return np.where(x > top, self.nines_[-1] + (x - top) * self.slope_, nines)


def unit_score(nines: np.ndarray) -> np.ndarray:
    """Nines onto [0, 1): ``nines / (nines + 3)``."""
    nines = np.maximum(np.asarray(nines, dtype=np.float64), 0.0)
    return nines / (nines + NINES_AT_HALF_SCORE)


@dataclass(frozen=True, slots=True)
class BatchScores:
    """One micro-batch's scores: each detector's raw score, the ensemble's, and the verdict.

    ``supervised`` is None when the ensemble has no supervised classifier; ``drift``
    holds the changes the drift monitor detected with this batch.
    """

    iforest: np.ndarray
    online: np.ndarray
    supervised: np.ndarray | None
    score: np.ndarray
    threshold: float
    flagged: np.ndarray
    drift: list[DriftEvent] = field(default_factory=list)


@dataclass
class Ensemble:
    """Isolation Forest + online detector (+ supervised classifier), one score, a budget.

    ``scales`` maps each detector ("iforest", "online", "supervised") and each of
    the Isolation Forest's features ("feature:<name>") to its :class:`NinesScale`.
    """

    iforest: IsolationForestDetector
    online: Detector
    scales: dict[str, NinesScale]
    category_norms: CategoryNorms
    supervised: SupervisedDetector | None = None
    budget: AlertBudget | None = None
    threshold: float | None = None  # a fixed threshold; None: the budget's
    iforest_weight: float = 0.7
    drift: DriftMonitor | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "untrained"))

    # ------------------------------------------------------------------ scoring
    def combine(
        self, iforest_raw: np.ndarray, online_raw: np.ndarray, supervised_raw: np.ndarray | None = None
    ) -> np.ndarray:
        """The ensemble score in [0, 1) from the detectors' raw scores."""
        if supervised_raw is not None:
            return unit_score(self.scales["supervised"](supervised_raw))
        w = self.iforest_weight
        nines = w * self.scales["iforest"](iforest_raw) + (1.0 - w) * self.scales["online"](online_raw)
        return unit_score(nines)

    def raw_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(iforest, online, supervised or None): each detector's raw score, nothing learned."""
        supervised = None if self.supervised is None else self.supervised.score_many(X)
        return self.iforest.score_many(X), self.online.score_many(X), supervised

    def score_many(self, X: np.ndarray) -> np.ndarray:
        """The ensemble score of each row, nothing learned."""
        return self.combine(*self.raw_scores(X))

    def current_threshold(self, override: float | None = None) -> float:
        """The threshold in force: ``override``, else the fixed one, else the budget's."""
        if override is not None:
            return float(override)
        if self.threshold is not None:
            return float(self.threshold)
        if self.budget is not None:
            return self.budget.threshold()
        return 1.0

    def score_batch(
        self,
        X: np.ndarray,
        threshold: float | None = None,
        event_times_s: np.ndarray | None = None,
        sources: np.ndarray | None = None,  # each event's Kafka partition: event time is in order within one
    ) -> BatchScores:
        """Score a micro-batch, flag it, then learn from it.

        Every score comes from the state before this batch. Flagged events are
        kept out of the online detector's learning, so an attack does not teach
        it that attacks are normal. With ``event_times_s`` (epoch seconds of the
        events) the alert budget observes the batch and the drift monitor is
        updated.
        """
        iforest_raw, online_raw, supervised_raw = self.raw_scores(X)
        score = self.combine(iforest_raw, online_raw, supervised_raw)
        used = self.current_threshold(threshold)
        flagged = score >= used
        self.online.learn_many(X[~flagged])
        drift: list[DriftEvent] = []
        if event_times_s is not None and len(score):
            times = np.asarray(event_times_s, dtype=np.int64)
            if self.budget is not None:
                self.budget.observe(score, times // _SECONDS_PER_DAY, sources)
            if self.drift is not None:
                drift = self.drift.update(score, X, FEATURE_NAMES, int(times.max()))
        return BatchScores(iforest_raw, online_raw, supervised_raw, score, used, flagged, drift)

    # ------------------------------------------------------------------ explanations
    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's part in each row's score, from the model that decides it.

        The supervised classifier's tree path contributions (log-odds) when there
        is one. Otherwise the unsupervised evidence as shares summing to 1 per
        row: ``w`` x each Isolation Forest feature's rarity (its nines against
        training, as a share of the row's total) + ``1 - w`` x the online
        z-score detector's shares of its squared upper-tail z-scores.
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if self.supervised is not None:
            return self.supervised.contributions(X)
        rarity = np.zeros_like(X)
        for name in self.iforest.features:
            j = FEATURE_NAMES.index(name)
            rarity[:, j] = self.scales[f"feature:{name}"](X[:, j])
        total = rarity.sum(axis=1, keepdims=True)
        rarity = np.divide(rarity, total, out=np.zeros_like(rarity), where=total > 0)
        w = self.iforest_weight
        if isinstance(self.online, OnlineStandardizedDetector):
            return w * rarity + (1.0 - w) * zscore_contributions(self.online, X)
        return rarity

    def explain(self, X: np.ndarray, contexts: Sequence[EventContext]) -> list[str]:
        """The top contributing features of each row, in words (contributions computed for all rows at once)."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if not len(X):
            return []
        contributions = self.contributions(X)
        return [describe_contributions(contributions[i], X[i], FEATURE_NAMES, contexts[i]) for i in range(len(X))]
