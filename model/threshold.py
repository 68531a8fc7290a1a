"""Alert threshold from an alert budget: how many alerts per event-day the analysts can handle.

A fixed score threshold flags a varying number of events as traffic and the score
distribution move. An analyst team has a fixed capacity instead, so the threshold
here is derived from that capacity: the score above which the recent days would
have produced, on average, ``alerts_per_day`` alerts.

State is a few fixed-size histograms of the [0, 1] ensemble score, exponentially
decayed by event-day, and a few numbers per stream partition, so it is small,
picklable and deterministic: the same observations in the same order give the
same threshold, bit for bit.

Events do not arrive in event-time order. Kafka keeps order within a partition
only, and a consumer with a backlog reads each partition in large fetches (up to
8 MB here): replaying months 7-12 of a generated year through 4 partitions, the
scorer reads weeks of one partition before the next one's first event, and events
arrive up to a month or more behind the latest one seen. The budget therefore
keeps apart what this order can and cannot spoil. The *shape* of the score
distribution (the share of events above a score) is a ratio, and every partition
holds a random share of the cards, so it is estimated from whatever has arrived.
The *volume* (events per day) needs complete days, and a day is complete only
when every partition has moved past it: the per-partition event-time watermark of
stream processors. Closing a day as soon as one partition had moved past it
counted a fraction of its events, and the threshold fell until the budget was
spent two to three times over (25.9 alerts a day against 12.2 in that pipeline
run; 27-39 in an offline reproduction, 12.8-14.0 with the watermark).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

_NOTHING_YET = -(2**62)  # the latest day of a source expected but not read yet: it closes no day
# Each budget's last threshold and what it was computed from; beside the budget, not in its pickle.
_last_threshold: WeakKeyDictionary[AlertBudget, tuple[tuple, float]] = WeakKeyDictionary()


class AlertBudget:
    """Streaming alert threshold that spends an alert budget per event-day.

    The score distribution of completed event-days is kept as a histogram on a
    fine uniform grid, each day weighted by ``0.5 ** (age_in_days / half_life_days)``
    (its *shape*), and the traffic as the equally weighted number of events and of
    days (its *volume*). ``histogram / histogram.sum() * events / days`` is then the
    expected number of events per day in each score bin, and the threshold is where
    the expected count above it equals the budget (linear within a bin).

    Only *completed* days enter the estimate: the current day is partial, and
    counting it as a whole day would understate the traffic and lower the
    threshold every morning. The threshold therefore moves once per event-day,
    when the first event of a later day arrives.

    With ``sources`` (the Kafka partition of each event), completed means
    completed in every source seen: the volume counts a day once the slowest
    partition has moved past it (its watermark), and events of a partition that
    lags behind still count in full. The shape's histogram is aged by the latest
    day seen; late events enter it with their age's weight. Sources are forgotten
    with :meth:`forget_sources` (the consumer's partitions moved).

    Optionally, once fraud labels come back, :meth:`threshold_for_precision`
    raises the threshold until the precision on recent labelled events reaches a
    target (see there).

    Parameters
    ----------
    alerts_per_day : float
        The budget: expected alerts per event-day.
    half_life_days : float, default=7.0
        Age in days at which a day's events count half as much as today's.
    n_bins : int, default=10_000
        Resolution of the score histograms (80 kB each at the default).
    score_range : tuple of float, default=(0.0, 1.0)
        Range of the scores; values outside are clipped into the end bins.
    label_half_life : float, default=50_000.0
        Number of labelled events after which a labelled event counts half.
        Labels arrive late and in irregular batches, so their window is measured
        in labelled events rather than days.
    min_labelled_alerts : float, default=20.0
        Least (decayed) number of labelled events above a candidate threshold for
        its precision to be trusted.

    Attributes
    ----------
    history_counts_ : numpy.ndarray
        Decayed counts per score bin of the completed days.
    history_days_ : float
        Decayed number of completed days.
    today_counts_ : numpy.ndarray
        Counts per score bin of the current (latest) day.
    current_day_ : int or None
        The latest event-day seen; None before the first observation.
    fraud_counts_, labelled_counts_ : numpy.ndarray
        Decayed counts per score bin of labelled frauds and of all labelled events.
    volume_events_, volume_days_ : float
        Decayed number of events and of days among the days every source has
        completed (the volume), weighted as of ``closed_through_``.
    closed_through_ : int or None
        The last day every source has completed; None before the first observation.
    open_events_ : dict of int to float
        Events per day of the days after ``closed_through_``.
    source_days_ : dict
        The latest event-day seen from each source (None: events without a source).
    share : float
        The part of the stream this instance observes (its partitions among all of
        them, under scale-out): its volume counts each event as ``1 / share``, so the
        threshold spends the budget over the whole stream, not per scorer.
    """

    def __init__(
        self,
        alerts_per_day: float,
        *,
        half_life_days: float = 7.0,
        n_bins: int = 10_000,
        score_range: tuple[float, float] = (0.0, 1.0),
        label_half_life: float = 50_000.0,
        min_labelled_alerts: float = 20.0,
    ):
        if alerts_per_day < 0:
            raise ValueError(f"alerts_per_day must be >= 0, got {alerts_per_day}")
        if half_life_days <= 0 or label_half_life <= 0:
            raise ValueError("half lives must be positive")
        if n_bins < 2 or not score_range[0] < score_range[1]:
            raise ValueError("need n_bins >= 2 and score_range low < high")
        self.alerts_per_day = float(alerts_per_day)
        self.half_life_days = float(half_life_days)
        self.n_bins = int(n_bins)
        self.score_range = (float(score_range[0]), float(score_range[1]))
        self.label_half_life = float(label_half_life)
        self.min_labelled_alerts = float(min_labelled_alerts)

        self.history_counts_ = np.zeros(self.n_bins)
        self.history_days_ = 0.0
        self.today_counts_ = np.zeros(self.n_bins)
        self.current_day_: int | None = None
        self.fraud_counts_ = np.zeros(self.n_bins)
        self.labelled_counts_ = np.zeros(self.n_bins)
        self.volume_events_ = 0.0
        self.volume_days_ = 0.0
        self.closed_through_: int | None = None
        self.open_events_: dict[int, float] = {}
        self.source_days_: dict[Hashable, int] = {}
        self.share = 1.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a budget saved before it kept the volume apart: its days were its volume."""
        if "volume_days_" not in state:
            current = state.get("current_day_")
            state.update(
                volume_events_=float(state["history_counts_"].sum()),
                volume_days_=float(state["history_days_"]),
                closed_through_=None if current is None else current - 1,
                open_events_={} if current is None else {current: float(state["today_counts_"].sum())},
                source_days_={},  # the sources of the next events, with or without partitions
            )
        state.setdefault("share", 1.0)
        self.__dict__.update(state)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_training(
        cls,
        scores: np.ndarray,
        event_days: np.ndarray,
        alerts_per_day: float,
        **params: Any,
    ) -> AlertBudget:
        """A budget that already knows the score distribution of a training window.

        Every training day counts as completed. The training days are then
        re-anchored to stand for the days just before the first streamed day,
        whatever their day numbers: a replay of older data, or a stream starting
        weeks after training, still starts from the training distribution instead
        of treating its first events as years late or years early.

        Parameters
        ----------
        scores : numpy.ndarray
            Ensemble scores of the training events.
        event_days : numpy.ndarray
            Integer event-day of each training event.
        alerts_per_day : float
            The budget.
        **params
            Other constructor parameters (``half_life_days``, ``n_bins``, ...).

        Returns
        -------
        AlertBudget
        """
        budget = cls(alerts_per_day, **params)
        budget.observe(scores, event_days)
        if budget.current_day_ is not None:
            budget._advance_to(budget.current_day_ + 1)
            budget._close_volume_through(budget.current_day_ - 1)
            budget.current_day_ = budget.closed_through_ = None
            budget.source_days_ = {}
        return budget

    # ------------------------------------------------------------------ streaming
    def observe(self, scores: np.ndarray, event_days: np.ndarray, sources: np.ndarray | None = None) -> None:
        """Add a micro-batch of scored events.

        Events of the latest day seen so far wait in today's histogram; a later
        day closes every day before it. Late events (of an already closed day)
        go straight into the history with their age's weight. For the volume, a
        day closes when every source seen has moved past it.

        Parameters
        ----------
        scores : numpy.ndarray
            Ensemble scores, shape (n,). Non-finite scores are ignored.
        event_days : numpy.ndarray
            Integer event-day of each event (e.g. days since the epoch), shape (n,).
        sources : numpy.ndarray, optional
            Where each event came from, shape (n,): its Kafka partition. Event days
            are in order within a source, not across sources. None: one source.
        """
        days = np.asarray(event_days).ravel().astype(np.int64)
        origin = np.full(len(days), -1, dtype=np.int64) if sources is None else np.asarray(sources).ravel()
        if origin.shape != days.shape:
            raise ValueError(f"event_days {days.shape} and sources {origin.shape} differ in shape")
        scores, keep = _finite_pairs(scores, np.arange(len(days)), "event_days")
        days, origin = days[keep], origin[keep]
        if not len(scores):
            return
        self._observe_volume(days, None if sources is None else origin)
        if self.current_day_ is None:
            self.current_day_ = int(days.min())
        self._advance_to(int(days.max()))

        bins = self._bin(scores)
        is_today = days == self.current_day_
        np.add.at(self.today_counts_, bins[is_today], 1.0)  # not a bincount of all 10,000 bins per batch
        if not is_today.all():
            last_closed_day = self.current_day_ - 1
            weights = self._day_decay ** (last_closed_day - days[~is_today]).astype(np.float64)
            self.history_counts_ += np.bincount(bins[~is_today], weights=weights, minlength=self.n_bins)

    def threshold(self) -> float:
        """The score at or above which the recent days average ``alerts_per_day`` alerts.

        Before any day is complete (and without :meth:`from_training`) the
        current partial day stands in for a day; with no data at all the top of
        the score range is returned.

        Returns
        -------
        float
        """
        if self.history_days_ <= 0 or (self.volume_days_ > 0 and not self.history_counts_.any()):
            return self._threshold()  # from today's counts (see _per_day), which every batch changes
        # From the completed days only: the same until a day closes or a late event lands,
        # so each batch compares its inputs instead of summing 10,000 bins again.
        inputs = (self.alerts_per_day, self.history_days_, self.volume_events_, self.volume_days_,
                  self.history_counts_.tobytes())  # fmt: skip
        last = _last_threshold.get(self)
        if last is None or last[0] != inputs:
            last = _last_threshold[self] = (inputs, self._threshold())
        return last[1]

    def _threshold(self) -> float:
        low, high = self.score_range
        per_day = self._per_day()
        if per_day is None:
            per_day = self.today_counts_
            if not per_day.any():
                return high
        if self.alerts_per_day <= 0:
            return high
        # tail[i]: expected alerts per day if the threshold were the lower edge of bin i.
        tail = np.append(np.cumsum(per_day[::-1])[::-1], 0.0)
        reaching = np.flatnonzero(tail[:-1] >= self.alerts_per_day)
        if not len(reaching):
            return low  # fewer events per day than the budget: every event fits
        i = int(reaching[-1])
        # The budget is crossed inside bin i; scores are taken as uniform within it.
        shortfall = self.alerts_per_day - tail[i + 1]
        return float(self._edges[i + 1] - shortfall / per_day[i] * self._bin_width)

    def expected_alerts_per_day(self, threshold: float) -> float:
        """Alerts per day the recent completed days would give at ``threshold``.

        Parameters
        ----------
        threshold : float

        Returns
        -------
        float
            NaN when no day is complete yet.
        """
        per_day = self._per_day()
        if per_day is None:
            return math.nan
        position = (threshold - self.score_range[0]) / self._bin_width
        i = int(np.clip(math.floor(position), 0, self.n_bins - 1))
        return float(per_day[i + 1 :].sum() + per_day[i] * min(max(i + 1 - position, 0.0), 1.0))

    def expect_sources(self, sources: Iterable[Hashable]) -> None:
        """Wait for these sources (the partitions a consumer was assigned) before a day counts as complete.

        Without it, the first source to arrive would close days alone: a consumer
        with a backlog reads weeks of one partition before the next one's first
        event. A source expected but never read holds the volume where it is (the
        shape still follows the scores), so expect only the partitions assigned.
        """
        for source in sources:
            self.source_days_.setdefault(source, _NOTHING_YET)

    def forget_sources(self) -> None:
        """Forget the sources seen and expected: the consumer's partitions moved (a rebalance, a restart).

        A source that is no longer read would hold the volume's watermark back for
        good. Days already closed stay closed; the next events start the sources anew.
        """
        self.source_days_ = {}

    # ------------------------------------------------------------------ labels
    def observe_labels(self, scores: np.ndarray, is_fraud: np.ndarray) -> None:
        """Add labelled events (scores at scoring time and their fraud outcome).

        Parameters
        ----------
        scores : numpy.ndarray
            Ensemble scores the events had when scored, shape (n,).
        is_fraud : numpy.ndarray
            Their labels, shape (n,), truthy for fraud.
        """
        scores, fraud = _finite_pairs(scores, np.asarray(is_fraud).ravel().astype(bool), "is_fraud")
        if not len(scores):
            return
        forget = 0.5 ** (len(scores) / self.label_half_life)
        bins = self._bin(scores)
        self.labelled_counts_ = self.labelled_counts_ * forget + np.bincount(bins, minlength=self.n_bins)
        self.fraud_counts_ = self.fraud_counts_ * forget + np.bincount(bins[fraud], minlength=self.n_bins)

    def threshold_for_precision(self, target: float) -> float:
        """The lowest threshold, not below the budget's, whose labelled precision reaches ``target``.

        The budget is the analysts' capacity, so precision mode never spends more
        than it: it may only *raise* the threshold, trading alerts (and recall)
        for a higher share of true fraud among them. Candidates are the budget
        threshold and the histogram bin edges above it; a candidate counts only
        with at least ``min_labelled_alerts`` (decayed) labelled events above it,
        so a handful of lucky top scores cannot set it.

        If no supported candidate reaches the target, the one with the highest
        precision is returned (the lowest such); without labels, the budget
        threshold.

        Parameters
        ----------
        target : float
            Wanted precision, in (0, 1].

        Returns
        -------
        float
        """
        if not 0 < target <= 1:
            raise ValueError(f"target precision must be in (0, 1], got {target}")
        budget_threshold = self.threshold()
        first = int(np.clip((budget_threshold - self.score_range[0]) // self._bin_width, 0, self.n_bins - 1))
        labelled_above = np.cumsum(self.labelled_counts_[::-1])[::-1][first:]
        frauds_above = np.cumsum(self.fraud_counts_[::-1])[::-1][first:]
        supported = labelled_above >= self.min_labelled_alerts
        if not supported.any():
            return budget_threshold
        precision = np.where(supported, frauds_above / np.maximum(labelled_above, 1e-300), -1.0)
        reaching = np.flatnonzero(precision >= target)
        i = int(reaching[0]) if len(reaching) else int(np.argmax(precision))
        return max(float(self._edges[first + i]), budget_threshold)

    # ------------------------------------------------------------------ internals
    @property
    def _bin_width(self) -> float:
        return (self.score_range[1] - self.score_range[0]) / self.n_bins

    @property
    def _edges(self) -> np.ndarray:
        return _bin_edges(float(self.score_range[0]), float(self.score_range[1]), self.n_bins)

    @property
    def _day_decay(self) -> float:
        return 0.5 ** (1.0 / self.half_life_days)

    def _bin(self, scores: np.ndarray) -> np.ndarray:
        position = np.floor((scores - self.score_range[0]) / self._bin_width)
        return np.clip(position, 0, self.n_bins - 1).astype(np.intp)

    def _per_day(self) -> np.ndarray | None:
        """Expected events per completed day in each score bin: shape x volume; None before a completed day."""
        if self.history_days_ <= 0:
            return None
        if self.volume_days_ <= 0:
            return self.history_counts_ / self.history_days_  # no day complete in every source yet
        total = self.history_counts_.sum()
        return self.history_counts_ * (self.volume_events_ / self.volume_days_ / total) if total > 0 else None

    def _observe_volume(self, days: np.ndarray, sources: np.ndarray | None) -> None:
        """Count events per day, and close the days every source has moved past."""
        if self.closed_through_ is None:
            self.closed_through_ = int(days.min()) - 1
        if sources is None:
            self.source_days_[None] = max(int(days.max()), self.source_days_.get(None, int(days.min())))
        else:
            order = np.lexsort((days, sources))
            last = np.append(np.flatnonzero(np.diff(sources[order]) != 0), len(order) - 1)
            for source, day in zip(sources[order][last].tolist(), days[order][last].tolist(), strict=True):
                self.source_days_[source] = max(day, self.source_days_.get(source, day))
        decay = self._day_decay
        unique_days, counts = np.unique(days, return_counts=True)
        for day, n in zip(unique_days.tolist(), counts.tolist(), strict=True):
            n = n / self.share  # the whole stream's volume, estimated from this scorer's share
            if day <= self.closed_through_:  # late: its day is already counted as a day
                self.volume_events_ += n * decay ** (self.closed_through_ - day)
            else:
                self.open_events_[day] = self.open_events_.get(day, 0.0) + n
        self._close_volume_through(min(self.source_days_.values()) - 1)

    def _close_volume_through(self, last: int) -> None:
        """Fold the open days up to ``last`` into the volume; days without events count as days."""
        assert self.closed_through_ is not None
        elapsed = last - self.closed_through_
        if elapsed <= 0:
            return
        decay = self._day_decay
        closing = [day for day in self.open_events_ if day <= last]
        arrived = sum(self.open_events_.pop(day) * decay ** (last - day) for day in sorted(closing))
        self.volume_events_ = self.volume_events_ * decay**elapsed + arrived
        self.volume_days_ = self.volume_days_ * decay**elapsed + (1.0 - decay**elapsed) / (1.0 - decay)
        self.closed_through_ = last

    def _advance_to(self, day: int) -> None:
        """Close every day before ``day``: age the history and fold today's counts in."""
        assert self.current_day_ is not None
        elapsed = day - self.current_day_
        if elapsed <= 0:
            return
        decay = self._day_decay
        # The history is weighted as of the last closed day; that day moves `elapsed` days on.
        self.history_counts_ = self.history_counts_ * decay**elapsed + self.today_counts_ * decay ** (elapsed - 1)
        # Sum of decay**k for k < elapsed. Days without events are real days too: they
        # count, with no events in them.
        self.history_days_ = self.history_days_ * decay**elapsed + (1.0 - decay**elapsed) / (1.0 - decay)
        self.today_counts_ = np.zeros(self.n_bins)
        self.current_day_ = day


@functools.lru_cache(maxsize=8)
def _bin_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    """The histogram's bin edges, made once (every batch reads the threshold from them), read-only."""
    edges = np.linspace(low, high, n_bins + 1)
    edges.flags.writeable = False
    return edges


def _finite_pairs(scores: np.ndarray, other: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores as a flat float array and their paired values, without non-finite scores."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != other.shape:
        raise ValueError(f"scores {scores.shape} and {name} {other.shape} differ in shape")
    keep = np.isfinite(scores)
    return scores[keep], other[keep]
