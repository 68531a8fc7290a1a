"""Drift of the score and of key features, detected with river's ADWIN on per-batch means.

Feeding ADWIN every event would cost a Python call per event and per quantity; its
input here is one number per micro-batch and quantity, the batch mean, so the
cost is O(1) Python per batch whatever the batch size. A sustained shift of a
mean is what matters for the model (retrain, re-calibrate the threshold), and
batch means carry it with far less noise than single events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from river.drift import ADWIN

SCORE = "score"  # the quantity name under which the ensemble score is monitored

EventTime = datetime | int | float  # whatever clock the caller uses: datetime or epoch seconds


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """A detected change in the mean of one monitored quantity.

    ``mean_before`` and ``mean_after`` are the means of the batch means on either
    side of the most likely change point within ADWIN's window, in the
    quantity's own units.
    """

    quantity: str
    detected_at_event_time: EventTime
    mean_before: float
    mean_after: float


@dataclass(slots=True)
class _QuantityMonitor:
    """ADWIN on one quantity's batch means, in units of their spread during a warm-up.

    ADWIN's bound has a term that assumes values in [0, 1] and does not scale with
    the data: on a quantity whose batch means barely vary (a mean score of
    0.50 +- 0.005) it would hide any shift smaller than ~0.2. Dividing by the
    warm-up spread puts every quantity on the same footing. The warm-up batches
    only set that scale; ADWIN sees the batches after them.

    ``recent`` mirrors ADWIN's window (river restarts the window on the update
    after a detection) in the quantity's own units, so a detection can report the
    means on either side of the change, which ADWIN does not expose.
    """

    detector: ADWIN
    warmup_batches: int
    max_recent: int
    warmup_means: list[float] = field(default_factory=list)
    scale: float | None = None
    recent: list[float] = field(default_factory=list)

    def update(self, batch_mean: float) -> tuple[float, float] | None:
        """Feed one batch mean; (mean_before, mean_after) when a change is detected."""
        if self.scale is None:
            self.warmup_means.append(batch_mean)
            if len(self.warmup_means) >= self.warmup_batches:
                spread = float(np.std(self.warmup_means, ddof=1)) if len(self.warmup_means) > 1 else 0.0
                # A quantity constant during the warm-up keeps its own units: any later move is news.
                self.scale = spread if spread > 0 and np.isfinite(spread) else 1.0
                self.warmup_means = []
            return None
        if self.detector.drift_detected:
            self.recent = []
        self.recent.append(batch_mean)
        if len(self.recent) > self.max_recent:
            del self.recent[: len(self.recent) - self.max_recent]
        self.detector.update(batch_mean / self.scale)
        if not self.detector.drift_detected:
            return None
        return _means_around_change(np.asarray(self.recent))


def _means_around_change(values: np.ndarray) -> tuple[float, float]:
    """Means before and after the split of ``values`` that best separates two levels.

    The split maximises ``k (n - k) / n * (mean_before - mean_after) ** 2``, the
    between-group sum of squares, i.e. the least-squares change point.
    """
    n = len(values)
    if n < 2:
        return float(values[-1]), float(values[-1])
    k = np.arange(1, n)
    prefix = np.cumsum(values)[:-1]
    before = prefix / k
    after = (values.sum() - prefix) / (n - k)
    best = int(np.argmax(k * (n - k) / n * (before - after) ** 2))
    return float(before[best]), float(after[best])


class DriftMonitor:
    """Watches the mean of the ensemble score and of chosen features, batch by batch.

    Parameters
    ----------
    features : sequence of str
        Feature names to monitor, looked up in the ``feature_names`` given to
        :meth:`update`.
    delta : float, default=0.002
        ADWIN's significance: lower means fewer false alarms and later detection.
    monitor_score : bool, default=True
        Whether to monitor the ensemble score too (as quantity ``"score"``).
    warmup_batches : int, default=20
        Batches whose means set each quantity's scale before ADWIN sees them.
    min_window_length : int, default=5
        ADWIN's smallest sub-window, in batches.
    grace_period : int, default=10
        Batches ADWIN sees (after the warm-up) before it may report a change.
    max_recent : int, default=5000
        Most batch means kept per quantity to locate a change (about 45 kB pickled each).

    Notes
    -----
    Quantities with a daily cycle (``hour``, ``night``) drift by design when
    batches are much shorter than a day; monitor them only with day-long batches.
    """

    def __init__(
        self,
        features: Sequence[str],
        delta: float = 0.002,
        *,
        monitor_score: bool = True,
        warmup_batches: int = 20,
        min_window_length: int = 5,
        grace_period: int = 10,
        max_recent: int = 5000,
    ):
        self.features = tuple(features)
        self.delta = delta
        self.monitor_score = monitor_score
        self.warmup_batches = warmup_batches
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self.max_recent = max_recent
        quantities = ((SCORE,) if monitor_score else ()) + self.features
        self.monitors_: dict[str, _QuantityMonitor] = {
            name: _QuantityMonitor(
                # clock=1: check at every batch mean; they are few, and the default
                # of 32 would delay a detection by up to 32 batches.
                ADWIN(delta=delta, clock=1, min_window_length=min_window_length, grace_period=grace_period),
                warmup_batches=max(int(warmup_batches), 1),
                max_recent=max(int(max_recent), 2),
            )
            for name in quantities
        }
        self.n_batches_ = 0

    @property
    def quantities(self) -> tuple[str, ...]:
        """Names of the monitored quantities, the score first."""
        return tuple(self.monitors_)

    def update(
        self,
        score: np.ndarray,
        X: np.ndarray,
        feature_names: Sequence[str],
        event_time_max: EventTime,
    ) -> list[DriftEvent]:
        """Feed one micro-batch; the changes it revealed, if any.

        Parameters
        ----------
        score : numpy.ndarray
            Ensemble scores of the batch, shape (n,).
        X : numpy.ndarray
            Feature rows of the batch, shape (n, len(feature_names)).
        feature_names : sequence of str
            Names of the columns of ``X``.
        event_time_max : datetime or int or float
            Latest event time in the batch: when a change is reported.

        Returns
        -------
        list of DriftEvent
            Empty for an empty batch; quantities that are all NaN in the batch are skipped.
        """
        score = np.asarray(score, dtype=np.float64).ravel()
        if not len(score):
            return []
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(score):
            raise ValueError(f"X of shape {X.shape} does not hold one row per score ({len(score)})")
        column = {name: i for i, name in enumerate(feature_names)}
        missing = [f for f in self.features if f not in column]
        if missing:
            raise ValueError(f"monitored features not in this batch's feature names: {missing}")
        self.n_batches_ += 1

        means = {name: _finite_mean(X[:, column[name]]) for name in self.features}
        if self.monitor_score:
            means[SCORE] = _finite_mean(score)
        events = []
        for name, monitor in self.monitors_.items():
            batch_mean = means[name]
            if batch_mean is None:
                continue
            change = monitor.update(batch_mean)
            if change is not None:
                events.append(DriftEvent(name, event_time_max, change[0], change[1]))
        return events


def _finite_mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
