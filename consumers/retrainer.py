"""``retrainer``: retrain every N event-days of the stream, or when drift is detected.

It reads two topics: ``drift`` (the scorers' detections) and ``transactions``, only
for the stream's event clock: a schedule in event-days follows the replayed
timeline at any speed. The training itself (labelled history from PostgreSQL, the
new version registered as the shadow) is a callable the application layer
provides, so this service knows nothing of where the history lives.

A retrain runs inside the batch that made it due: the loop waits for it, then
commits. Its state is small and rebuilt on a restart: the application passes the
event time the latest registered model was trained up to, so a restarted
retrainer neither retrains at once nor forgets its schedule. A drift deferred by
the minimum interval is held in memory only: after a restart, the next drift or
the schedule triggers the retrain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from confluent_kafka import Message

from schemas.events import DriftEventRecord
from streaming.message import topic_of, value_of
from streaming.service import Decoded

log = logging.getLogger(__name__)

# (cut-off in event time, why) -> the version registered; trains on the history before the cut-off.
Retrain = Callable[[datetime, str], str]


@dataclass(frozen=True)
class RetrainPolicy:
    """When to retrain, all in event time.

    Parameters
    ----------
    every : timedelta, optional
        Retrain once the event clock is this far past the last training's cut-off
        (None: no schedule).
    on_drift : bool
        Retrain when a drift is detected after the last training's cut-off.
    min_interval : timedelta
        Never start a retrain sooner than this after the previous attempt: drift
        fires in bursts (several quantities, consecutive batches, several scorers).
        A drift inside the interval is kept and retrains once the interval has passed.
    """

    every: timedelta | None = None
    on_drift: bool = False
    min_interval: timedelta = timedelta(days=1)

    @property
    def active(self) -> bool:
        return self.every is not None or self.on_drift

    def reason(
        self,
        clock: datetime,
        trained_until: datetime | None,
        last_attempt: datetime | None,
        drift: DriftEventRecord | None,
    ) -> str | None:
        """Why to retrain now, or None: not yet.

        ``trained_until`` is the cut-off of the latest training, ``last_attempt`` that of
        the latest attempt (a failed one included), ``drift`` the pending detection.
        """
        if last_attempt is not None and clock - last_attempt < self.min_interval:
            return None
        if drift is not None and self.on_drift:
            return f"drift in {drift.quantity} at {drift.detected_at}"
        if self.every is not None and trained_until is not None and clock - trained_until >= self.every:
            return f"schedule: {clock - trained_until} of events since the last training"
        return None


def _event_time_text(value: bytes) -> str | None:
    """A transaction's event time as its ISO text, or None if the message has none.

    Never raises: the retrainer only reads the clock from transactions, and the
    services that own them (persist, scorer) already dead-letter the bad ones.
    """
    try:
        text = orjson.loads(value).get("event_time")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return text if isinstance(text, str) else None


class RetrainerService:
    """Starts a retrain when the :class:`RetrainPolicy` says so.

    Parameters
    ----------
    transactions_topic, drift_topic : str
        Where the event clock and the drift detections come from.
    retrain : Retrain
        Trains on the history before a cut-off and registers the model; returns its version.
    policy : RetrainPolicy
    trained_until : datetime, optional
        Cut-off of the latest registered model (None: none yet; the schedule then
        starts at the first event seen).
    is_transient : callable, optional
        Whether a failed retrain failed because a dependency is down: the loop then
        retries the batch. Any other failure is logged and counted, and retried
        after ``policy.min_interval``.
    """

    name = "retrainer"

    def __init__(
        self,
        transactions_topic: str,
        drift_topic: str,
        retrain: Retrain,
        policy: RetrainPolicy,
        *,
        trained_until: datetime | None = None,
        is_transient: Callable[[Exception], bool] = lambda exc: False,
    ):
        self.topics = [transactions_topic, drift_topic]
        self.drift_topic = drift_topic
        self.retrain, self.policy, self._is_transient = retrain, policy, is_transient
        self.clock: datetime | None = None  # the latest event time seen
        self.trained_until = trained_until
        self.last_attempt = trained_until
        self.pending_drift: DriftEventRecord | None = None
        self.drift_seen = 0
        self.retrained: list[tuple[str, datetime, str]] = []  # (version, cut-off, reason)
        self.failed = 0

    def decode(self, message: Message) -> DriftEventRecord | str | None:
        """A drift record (validated), or a transaction's event time as text."""
        if topic_of(message) == self.drift_topic:
            return DriftEventRecord.model_validate_json(value_of(message))
        return _event_time_text(value_of(message))

    def process(self, batch: list[Decoded]) -> None:
        times = [d.event for d in batch if isinstance(d.event, str)]
        drifts = [d.event for d in batch if isinstance(d.event, DriftEventRecord)]
        # ISO texts of one format sort as the times they name: one parse per batch.
        latest = [datetime.fromisoformat(max(times))] if times else []
        latest += [d.detected_at for d in drifts]
        if not latest:
            return
        self.clock = max(latest) if self.clock is None else max(self.clock, *latest)
        self.drift_seen += len(drifts)
        for drift in drifts:
            # A change before the latest cut-off is in that model's training window already.
            if self.pending_drift is None and (self.trained_until is None or drift.detected_at > self.trained_until):
                self.pending_drift = drift
        if self.trained_until is None:
            self.trained_until = min(latest)  # no trained model known: the schedule starts with the stream
        why = self.policy.reason(self.clock, self.trained_until, self.last_attempt, self.pending_drift)
        if why is not None:
            self._retrain(self.clock, why)

    def _retrain(self, until: datetime, why: str) -> None:
        log.info("retrainer: retraining on the history before %s (%s)", until, why)
        try:
            version = self.retrain(until, why)
        except Exception as exc:
            if self._is_transient(exc):
                raise  # the loop retries the batch once the dependency is back
            self.failed += 1
            self.last_attempt = until
            log.error("retrainer: retraining before %s failed (%s: %s); next attempt in %s of events",
                      until, type(exc).__name__, exc, self.policy.min_interval)  # fmt: skip
            return
        self.trained_until = self.last_attempt = until
        self.pending_drift = None
        self.retrained.append((version, until, why))
        log.info("retrainer: model %s (history before %s) registered as the shadow", version, until)

    def flush(self) -> None:
        return None  # a retrain is registered before its batch is committed

    def is_transient(self, exc: Exception) -> bool:
        return self._is_transient(exc)

    def on_revoke(self) -> None:
        return None  # the clock and the pending drift are not per partition

    def close(self) -> None:
        return None
