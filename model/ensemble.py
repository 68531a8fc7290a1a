"""The ensemble: detectors on one scale, one combined score, an alert budget, explanations.

Scale
    Every detector's raw score is mapped to its *nines*, ``-log10(1 - F(x))``, where
    ``F`` is the distribution of that detector's scores on training events: 2 nines
    is the top 1 %, 3 the top 0.1 %. The quantile grid is dense in the upper tail
    (down to 1e-6), where alerts live; above the highest training score the nines
    keep rising at the tail's average rate, so events beyond anything seen in
    training still rank among themselves. Monotone: a detector's ranking is kept.

Combination
    With a batch supervised classifier (trained once enough labels had arrived)
    the combined nines are the classifier's: on generated data mixing the
    unsupervised detectors in lowered PR-AUC (0.97 -> 0.86). Without it (cold
    start, or labels off) they are ``w * iforest + (1 - w) * online`` with
    ``w = iforest_weight`` (0.7). The online classifier (``learned``, fed by the
    learner from the labels topic) joins once it is ready: ``learned_weight`` of
    the nines beside the batch classifier (0.1), or half of them beside the
    unsupervised detectors when there is no batch classifier.

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
from model.online_classifier import OnlineClassifier
from model.scale import NinesScale, unit_score
from model.supervised import SupervisedDetector
from model.threshold import AlertBudget

_SECONDS_PER_DAY = 86_400
# Monitored for drift besides the score. Quantities with a daily cycle (hour, night,
# 24 h windows) would drift by design in batches shorter than a day.
DRIFT_FEATURES: tuple[str, ...] = ("log_amt", "amt_category_logz")


@dataclass(frozen=True, slots=True)
class BatchScores:
    """One micro-batch's scores: each detector's raw score, the ensemble's, and the verdict.

    ``supervised`` is None when the ensemble has no supervised classifier, ``learned``
    when its online classifier is not ready; ``drift``
    holds the changes the drift monitor detected with this batch.
    """

    iforest: np.ndarray
    online: np.ndarray
    supervised: np.ndarray | None
    learned: np.ndarray | None
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
    # The online classifier: trained on the labelled history with the model, then replaced
    # by the learner's snapshots as the labels topic teaches it (the scorer sets them).
    learned: OnlineClassifier | None = None
    learned_weight: float = 0.1

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "untrained"))

    # ------------------------------------------------------------------ scoring
    def _learned(self) -> OnlineClassifier | None:
        return self.learned if self.learned is not None and self.learned.ready else None

    def combine(
        self,
        iforest_raw: np.ndarray,
        online_raw: np.ndarray,
        supervised_raw: np.ndarray | None = None,
        learned_nines: np.ndarray | None = None,
    ) -> np.ndarray:
        """The ensemble score in [0, 1) from the detectors' raw scores (the online classifier's in nines)."""
        if supervised_raw is not None:
            nines = self.scales["supervised"](supervised_raw)
            weight = self.learned_weight
        else:
            w = self.iforest_weight
            nines = w * self.scales["iforest"](iforest_raw) + (1.0 - w) * self.scales["online"](online_raw)
            weight = 0.5
        if learned_nines is not None:
            nines = (1.0 - weight) * nines + weight * learned_nines
        return unit_score(nines)

    def prepare(self) -> Ensemble:
        """Build now what scoring builds at its first call (each forest's stacked trees, the compiled
        walk loaded or compiled): a model loaded or swapped in scores its first batch without that
        delay (~0.5 s on the reference machine, most of the first second's latency)."""
        self.raw_scores(np.zeros((1, len(FEATURE_NAMES))))
        return self

    def raw_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(iforest, online, supervised, learned): each detector's raw score, nothing learned.

        ``supervised`` is None without a batch classifier; ``learned`` is the online
        classifier's fraud probability, None until it is ready.
        """
        supervised = None if self.supervised is None else self.supervised.score_many(X)
        learned = self._learned()
        return (
            self.iforest.score_many(X),
            self.online.score_many(X),
            supervised,
            None if learned is None else learned.score_many(X),
        )

    def _score(self, raw: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]) -> np.ndarray:
        iforest_raw, online_raw, supervised_raw, learned_raw = raw
        learned = self._learned()
        learned_nines = None if learned is None or learned_raw is None else learned.to_nines(learned_raw)
        return self.combine(iforest_raw, online_raw, supervised_raw, learned_nines)

    def score_many(self, X: np.ndarray) -> np.ndarray:
        """The ensemble score of each row, nothing learned."""
        return self._score(self.raw_scores(X))

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
        raw = self.raw_scores(X)
        score = self._score(raw)
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
        return BatchScores(*raw, score, used, flagged, drift)

    # ------------------------------------------------------------------ explanations
    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's part in each row's score, from the model that decides it.

        The batch classifier's tree path contributions (log-odds) when there is
        one. Otherwise the unsupervised evidence as shares summing to 1 per row:
        ``w`` x each Isolation Forest feature's rarity (its nines against
        training, as a share of the row's total) + ``1 - w`` x the online
        z-score detector's shares of its squared upper-tail z-scores; with a
        ready online classifier, half of that and half its shares of the row's
        positive log-odds contributions.
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        if self.supervised is not None:
            return self.supervised.contributions(X)
        unsupervised = self._unsupervised_shares(X)
        learned = self._learned()
        if learned is None:
            return unsupervised
        return 0.5 * unsupervised + 0.5 * _shares(np.maximum(learned.contributions(X), 0.0))

    def _unsupervised_shares(self, X: np.ndarray) -> np.ndarray:
        rarity = np.zeros_like(X)
        for name in self.iforest.features:
            j = FEATURE_NAMES.index(name)
            rarity[:, j] = self.scales[f"feature:{name}"](X[:, j])
        rarity = _shares(rarity)
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


def _shares(values: np.ndarray) -> np.ndarray:
    """Non-negative values as shares of their row's total (all 0 for a row of zeros)."""
    total = values.sum(axis=1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)
