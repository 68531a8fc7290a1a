"""What moves: alerts from Kafka to the open pages, and the services' throughput and lag.

The Kafka clients block, so each lives in a thread; :class:`Broadcast` hands what the
alert consumer reads to every page's asynchronous event stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from pydantic import ValidationError

from schemas.events import AlertEvent
from schemas.topics import DRIFT, LABELS, SCORES, TRANSACTIONS, TopicSpec
from streaming.message import value_of
from streaming.reader import assign_at_end
from txguard.clients import Clients

log = logging.getLogger(__name__)

# What each service consumes (as App.service builds them): its lag is counted on these.
SERVICE_TOPICS: dict[str, tuple[TopicSpec, ...]] = {
    "persist": (TRANSACTIONS, SCORES, LABELS, DRIFT),
    "scorer": (TRANSACTIONS,),
    "learner": (LABELS,),
}
KAFKA_TIMEOUT_S = 5.0


def card_token_prefix(token: str) -> str:
    """A card token shortened for display: enough to tell cards apart, not the whole pseudonym."""
    return token[:8] + "…"


def alert_view(alert: AlertEvent) -> dict[str, Any]:
    """An alert as the page shows it (the same keys as a row of the ``alerts`` view)."""
    return {
        "trans_num": alert.trans_num, "event_time": alert.event_time.isoformat(), "card_masked": alert.card_masked,
        "card": card_token_prefix(alert.card_token), "merchant": alert.merchant, "category": alert.category,
        "amt": alert.amt, "score": alert.score, "reason": alert.reason, "model_version": alert.model_version,
        "verdict": None, "verdict_by": None, "live": True,
    }  # fmt: skip


class Broadcast:
    """Fan-out from one thread to many asyncio subscribers, each with a bounded queue.

    A subscriber that falls behind loses its oldest items, never blocks the publisher.
    """

    def __init__(self, queue_size: int = 500):
        self.queue_size = queue_size
        self._subscribers: dict[asyncio.Queue, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(self.queue_size)
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)

    def publish(self, item: Any) -> None:
        """Thread-safe: queue ``item`` for every subscriber, on its own event loop."""
        with self._lock:
            subscribers = list(self._subscribers.items())
        for queue, loop in subscribers:
            try:
                loop.call_soon_threadsafe(self._put, queue, item)
            except RuntimeError:  # that loop has closed
                self.unsubscribe(queue)

    @staticmethod
    def _put(queue: asyncio.Queue, item: Any) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)


class AlertFeed:
    """A thread that reads the alerts topic from its end onwards and broadcasts each alert.

    Its consumer has a group id of its own and commits nothing; it is assigned every
    partition at the high watermark read at start, rather than subscribed with
    ``auto.offset.reset=latest``: an alert published once :attr:`ready` is set is always
    seen (``latest`` resolves when the first fetch starts, which can be later). On the
    embedded broker the high watermark can lag the end of the last batch, so a few alerts
    published just before may come too; the page keeps one row per transaction.
    """

    def __init__(self, clients: Clients, topic: str, broadcast: Broadcast, retry_s: float = 5.0):
        self.clients = clients
        self.topic = topic
        self.broadcast = broadcast
        self.retry_s = retry_s
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.delivered = 0
        self._thread = threading.Thread(target=self._run, name="alert-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._follow()
            except (KafkaException, TimeoutError) as exc:
                log.warning("alert feed: %s; retrying in %gs", exc, self.retry_s)
                self.stop.wait(self.retry_s)

    def _follow(self) -> None:
        group = f"dashboard-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        consumer = self.clients.consumer(group, **{"auto.offset.reset": "latest", "enable.partition.eof": True})
        try:
            partitions = consumer.list_topics(self.topic, timeout=KAFKA_TIMEOUT_S).topics[self.topic].partitions
            if not partitions:
                log.warning("alert feed: topic %s has no partitions yet; retrying in %gs", self.topic, self.retry_s)
                self.stop.wait(self.retry_s)
                return
            # Read to each partition's real end first: the embedded broker reports an end short of it.
            assign_at_end(consumer, self.topic)
            self.ready.set()
            log.info("alert feed: following %s from its end", self.topic)
            while not self.stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                try:
                    alert = AlertEvent.model_validate_json(value_of(msg))
                except ValidationError as exc:
                    log.warning("alert feed: skipped %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(),
                                exc.error_count())  # fmt: skip
                    continue
                self.delivered += 1
                self.broadcast.publish(alert_view(alert))
        finally:
            consumer.close()


class ThroughputMonitor:
    """Each service's consumer lag and throughput, from committed offsets and high watermarks.

    Lag: end of each partition minus the group's committed offset (a partition it has
    never committed counts whole). Throughput: the committed offsets' growth over the last
    ``window_s`` seconds of samples, in events per second. Samples closer than ``min_interval_s`` return the last one.
    On the embedded broker (Tansu) the high watermark stops at the first record of a
    partition's last batch: a partition's end is taken as the larger of it and every
    group's committed offset, and lag there can read low by up to a batch per partition.
    """

    def __init__(self, clients: Clients, services: dict[str, tuple[TopicSpec, ...]] = SERVICE_TOPICS,
                 min_interval_s: float = 1.0, window_s: float = 30.0):  # fmt: skip
        self.clients = clients
        self.services = services
        self.min_interval_s = min_interval_s
        self.window_s = window_s
        self._history: deque[tuple[float, dict[str, int], dict[str, int]]] = deque()
        self._lock = threading.Lock()
        self._consumers: dict[str, Any] = {}
        self._previous: tuple[float, dict[str, int], dict[str, int]] | None = None
        self._last: dict[str, Any] | None = None

    def _consumer(self, group: str) -> Any:
        # A consumer that is never subscribed joins no group: it only reads the group's offsets.
        if group not in self._consumers:
            self._consumers[group] = self.clients.consumer(group)
        return self._consumers[group]

    def close(self) -> None:
        with self._lock:
            for consumer in self._consumers.values():
                consumer.close()
            self._consumers.clear()

    def sample(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and self._previous and now - self._previous[0] < self.min_interval_s:
                return self._last
            self._last = self._sample(now)
            return self._last

    def _sample(self, now: float) -> dict[str, Any]:
        settings = self.clients.settings
        probe = self._consumer("dashboard-probe")
        topics = {settings.topic(spec) for specs in self.services.values() for spec in specs}
        metadata = probe.list_topics(timeout=KAFKA_TIMEOUT_S).topics
        ends: dict[tuple[str, int], int] = {}
        for topic in sorted(topics):
            for p in metadata[topic].partitions if topic in metadata else ():
                ends[(topic, p)] = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=KAFKA_TIMEOUT_S)[1]
        committed: dict[str, list[TopicPartition]] = {}
        for service, specs in self.services.items():
            names = {settings.topic(spec) for spec in specs}
            partitions = [TopicPartition(t, p) for (t, p) in ends if t in names]
            committed[service] = (self._consumer(service).committed(partitions, timeout=KAFKA_TIMEOUT_S)
                                  if partitions else [])  # fmt: skip
        # A committed offset proves the partition reaches that far: where the broker's high
        # watermark says less (the embedded one's), the offset is the better end.
        for tps in committed.values():
            for tp in tps:
                ends[(tp.topic, tp.partition)] = max(ends[(tp.topic, tp.partition)], tp.offset)
        processed: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        for service, tps in committed.items():
            lag, done = 0, 0
            for tp in tps:
                offset = tp.offset if tp.offset >= 0 else 0
                done += offset
                lag += max(0, ends[(tp.topic, tp.partition)] - offset)
            processed[service] = done
            rows.append({"service": service, "group": settings.namespaced(service), "lag": lag, "committed": done})
        topic_ends = {t: sum(end for (name, _p), end in ends.items() if name == t) for t in sorted(topics)}
        # Rates over the last ``window_s``: services commit every few seconds, so the offsets
        # move in steps that a rate between two 5-second polls would show as bursts and zeros.
        self._history.append((now, processed, topic_ends))
        while len(self._history) > 2 and now - self._history[1][0] >= self.window_s:
            self._history.popleft()
        self._previous = self._history[-1]
        previous = self._history[0] if len(self._history) > 1 else None
        elapsed = now - previous[0] if previous else 0.0
        for row in rows:
            row["events_per_s"] = (
                max(0.0, (processed[row["service"]] - previous[1].get(row["service"], 0)) / elapsed)
                if previous and elapsed > 0 else None
            )  # fmt: skip
        topic_rows = [
            {"topic": t, "end": end,
             "events_per_s": max(0.0, (end - previous[2].get(t, 0)) / elapsed) if previous and elapsed > 0 else None}
            for t, end in topic_ends.items()
        ]  # fmt: skip
        return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "services": rows, "topics": topic_rows}
