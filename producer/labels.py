"""Delayed labels: the ``is_fraud`` of an event becomes known a while after it happened."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import timedelta

PendingLabel = tuple[float, bytes, bytes]  # (due in event-time ms, Kafka key, LabelEvent JSON)


class LabelScheduler:
    """Labels waiting for the event clock to reach their due time, oldest first.

    The replay adds each event's label as it sends the event, and asks after each
    event which labels are due by its event time; at the end of the file every
    outstanding label is known and released. What is still pending goes into the
    checkpoint (:meth:`to_json`), so a resumed replay releases it on time.

    Due times follow the order of the events, which the replay sends in event-time order
    (a file out of order is read sorted, ``producer.order``): a label is released when the
    oldest pending one is due, as the chargebacks would arrive.
    """

    def __init__(self, delay: timedelta, pending: Iterable[PendingLabel] = ()) -> None:
        self.delay_ms = delay.total_seconds() * 1000
        self.pending: deque[PendingLabel] = deque(pending)

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, event_ms: int, key: bytes, label: bytes) -> list[PendingLabel]:
        """Schedule the label of an event at ``event_ms``; return the labels due by then.

        Once per event on the replay's hot path: one call adds and releases.
        """
        self.pending.append((event_ms + self.delay_ms, key, label))
        return self.due(event_ms)

    def due(self, now_ms: float) -> list[PendingLabel]:
        """Release the labels due by ``now_ms`` (event time), oldest first."""
        pending = self.pending
        released = []
        while pending and pending[0][0] <= now_ms:
            released.append(pending.popleft())
        return released

    def release_all(self) -> list[PendingLabel]:
        """Release every pending label: the end of the file, nothing more will happen."""
        released = list(self.pending)
        self.pending.clear()
        return released

    def to_json(self) -> list[list[float | str]]:
        """The pending labels as JSON-ready lists, for the checkpoint."""
        return [[due, key.decode(), value.decode()] for due, key, value in self.pending]

    @classmethod
    def from_json(cls, delay: timedelta, saved: Iterable[Iterable[float | str]]) -> LabelScheduler:
        """A scheduler holding the labels :meth:`to_json` saved."""
        pending = []
        for due, key, value in saved:
            pending.append((float(due), str(key).encode(), str(value).encode()))
        return cls(delay, pending)
