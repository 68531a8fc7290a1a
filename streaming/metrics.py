"""Prometheus metrics and health of a consumer loop, and the HTTP endpoint serving them.

Counts are of committed work. A batch's events (and the alerts a service reports with
:func:`count_alerts`) are staged when processed and added to the counters only once the
checkpoint that commits their offsets succeeded; a rewind or a failed checkpoint drops
them, and they are counted when consumed again. So a process counts each message of its
partitions once, however often it was redelivered to it; after a crash the next process
counts the uncommitted part again (its counters start at 0: Prometheus's ``increase()``
and ``rate()`` handle the reset).

Health: ``/healthz`` answers 200 while the loop's heartbeat is recent (it beats after every
poll and every retry, so a loop waiting out a sink outage is alive); ``/readyz`` answers
200 while the loop is alive, holds partitions, and the last call to its sinks succeeded (while
a sink is down, or a service waits for data it needs, such as the learner for scores, the loop
retries and is not ready).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from confluent_kafka import Consumer, Message
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)

PROCESSED, DEAD_LETTERED = "processed", "dead_lettered"

EVENTS = PromCounter(
    "txguard_events",
    "Consumed events whose offsets were committed, by outcome (processed, dead_lettered)",
    ["service", "topic", "outcome"],
)
ALERTS = PromCounter("txguard_alerts", "Alerts raised by committed batches", ["service"])
BATCH_SECONDS = Histogram(
    "txguard_batch_seconds",
    "Wall time to decode and process one micro-batch (the checkpoint excluded)",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CHECKPOINT_SECONDS = Histogram(
    "txguard_checkpoint_seconds",
    "Wall time of a checkpoint: outputs delivered, sinks durable, offsets committed",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CONSUMER_LAG = Gauge(
    "txguard_consumer_lag",
    "Messages of an assigned partition after this consumer's position (high watermark - position)",
    ["service", "topic", "partition"],
)
MODEL_VERSION = Info("txguard_model_version", "The model versions a scorer scores with", ["service"])

_loop_thread = threading.local()  # the LoopMetrics of the loop running on this thread


def count_alerts(count: int) -> None:
    """A service raised ``count`` alerts in the batch it is processing (counted once that batch commits).

    Called from the service's ``process``, which runs on its loop's thread; a no-op outside a loop.
    """
    metrics: LoopMetrics | None = getattr(_loop_thread, "metrics", None)
    if metrics is not None:
        metrics.staged_alerts += count


@dataclass(frozen=True)
class Staged:
    """Counts of processed messages waiting for their offsets' commit."""

    messages: Counter[str]  # topic -> messages processed
    dead: Counter[str]  # topic -> of which dead-lettered
    alerts: int


class LoopMetrics:
    """One consumer loop's metrics (labelled with its service's name) and health."""

    lag_every_s = 1.0  # the lag and the assignment are looked at most this often

    def __init__(
        self,
        service: str,
        stale_after_s: float = 120.0,
        describe: Callable[[], dict[str, str]] | None = None,
    ):
        self.service, self.stale_after_s, self.describe = service, stale_after_s, describe
        self.staged_messages: Counter[str] = Counter()  # topic -> messages processed since the last commit
        self.staged_dead: Counter[str] = Counter()  # topic -> of which dead-lettered
        self.staged_alerts = 0
        self.topics: list[str] = []  # the service's, from start()
        self.heartbeat_at = time.monotonic()
        self.partitions = 0  # partitions held at the last look
        self.sink_failure: str | None = None  # the exception class of the failing sink call, None once one passes
        self.last_commit_at: float | None = None
        self._observed_at = float("-inf")
        self._lag_labels: set[tuple[str, str]] = set()
        self._described: dict[str, str] | None = None

    # --- on the loop's thread ----------------------------------------------------------------

    def start(self, topics: Iterable[str]) -> None:
        """The loop starts on this thread: :func:`count_alerts` reports here, every series exists at 0."""
        _loop_thread.metrics = self
        self.topics = list(topics)
        for topic in self.topics:
            for outcome in (PROCESSED, DEAD_LETTERED):
                EVENTS.labels(self.service, topic, outcome)
        self.beat()

    def stop(self) -> None:
        if getattr(_loop_thread, "metrics", None) is self:
            del _loop_thread.metrics

    def beat(self) -> None:
        self.heartbeat_at = time.monotonic()

    @contextmanager
    def timing_checkpoint(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            CHECKPOINT_SECONDS.labels(self.service).observe(time.perf_counter() - started)

    def processed(self, messages: list[Message], seconds: float) -> None:
        """A batch was processed in ``seconds``: stage its messages (error events, such as partition ends, are
        none)."""
        if messages:
            BATCH_SECONDS.labels(self.service).observe(seconds)
        if len(self.topics) == 1:  # most services: no per-message topic() (a new str each, hot at 30k/s)
            self.staged_messages[self.topics[0]] += sum(1 for m in messages if m.error() is None)
        else:
            self.staged_messages.update(m.topic() or "" for m in messages if m.error() is None)

    def dead_lettered(self, topic: str) -> None:
        self.staged_dead[topic] += 1

    def take_staged(self) -> Staged:
        """What is staged so far, for a checkpoint that commits it later (in the background); staging starts over."""
        staged = Staged(self.staged_messages, self.staged_dead, self.staged_alerts)
        self.staged_messages, self.staged_dead, self.staged_alerts = Counter(), Counter(), 0
        return staged

    def restage(self, staged: Staged) -> None:
        """A background checkpoint failed: what it was to commit waits for the next one."""
        self.staged_messages.update(staged.messages)
        self.staged_dead.update(staged.dead)
        self.staged_alerts += staged.alerts

    def committed(self, staged: Staged | None = None) -> None:
        """The staged messages' offsets (or those of ``staged``, taken earlier) are committed: count them."""
        if staged is None:
            staged = self.take_staged()
        for topic, messages in staged.messages.items():
            dead = staged.dead.get(topic, 0)
            EVENTS.labels(self.service, topic, PROCESSED).inc(messages - dead)
            if dead:
                EVENTS.labels(self.service, topic, DEAD_LETTERED).inc(dead)
        if staged.alerts:
            ALERTS.labels(self.service).inc(staged.alerts)
        self.last_commit_at = time.monotonic()

    def discarded(self) -> None:
        """The staged messages will be consumed again (rewind, lost partitions): count them then."""
        self.staged_messages.clear()
        self.staged_dead.clear()
        self.staged_alerts = 0

    def sink_failed(self, exc: Exception) -> None:
        self.sink_failure = type(exc).__name__  # the class only: a message may name hosts
        self.beat()  # waiting out an outage is being alive

    def sink_passed(self) -> None:
        self.sink_failure = None

    def observe(self, consumer: Consumer) -> None:
        """After a poll: beat, and at most every ``lag_every_s`` look at the assignment, lag and model."""
        self.beat()
        now = time.monotonic()
        if now - self._observed_at < self.lag_every_s:
            return
        self._observed_at = now
        assignment = consumer.assignment()
        self.partitions = len(assignment)
        seen = set()
        # The position and the cached high watermarks are local reads: no request to the broker.
        for tp in consumer.position(assignment) if assignment else []:
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset < 0 or high < 0:
                continue  # nothing consumed yet, or no fetch response yet: unknown
            labels = (tp.topic, str(tp.partition))
            CONSUMER_LAG.labels(self.service, *labels).set(max(0, high - tp.offset))
            seen.add(labels)
        for labels in self._lag_labels - seen:  # partitions that left this consumer
            CONSUMER_LAG.remove(self.service, *labels)
        self._lag_labels = seen
        if self.describe is not None:
            described = self.describe()
            if described != self._described:
                MODEL_VERSION.labels(self.service).info(described)
                self._described = described

    # --- on the HTTP server's threads --------------------------------------------------------

    def liveness(self) -> tuple[bool, str]:
        age = time.monotonic() - self.heartbeat_at
        return age <= self.stale_after_s, f"{self.service}: loop heartbeat {age:.1f}s ago"

    def readiness(self) -> tuple[bool, str]:
        alive, why = self.liveness()
        if not alive:
            return False, why
        if self.partitions == 0:
            return False, f"{self.service}: holds no partitions"
        if self.sink_failure is not None:
            return False, f"{self.service}: its sinks cannot go on yet ({self.sink_failure}); retrying"
        since = "none yet" if self.last_commit_at is None else f"{time.monotonic() - self.last_commit_at:.1f}s ago"
        return True, f"{self.service}: holds {self.partitions} partitions, sinks reachable, last commit {since}"


def health_app(metrics: LoopMetrics, registry: CollectorRegistry = REGISTRY) -> Callable[..., Any]:
    """A WSGI app: /healthz and /readyz from ``metrics``, anything else the Prometheus exposition."""
    exposition = make_wsgi_app(registry)
    checks = {"/healthz": metrics.liveness, "/readyz": metrics.readiness}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        check = checks.get(environ.get("PATH_INFO", ""))
        if check is None:
            return exposition(environ, start_response)
        ok, why = check()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"{'ok' if ok else 'not ok'}: {why}\n".encode()]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes every few seconds would flood the log."""


def serve(metrics: LoopMetrics, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> WSGIServer:
    """Serve ``metrics`` on ``host:port`` from a daemon thread; ``shutdown()`` and ``server_close()`` stop it.

    Raises OSError when the address cannot be bound.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    server = make_server(host, port, health_app(metrics, registry), Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"metrics-{metrics.service}", daemon=True).start()
    log.info("%s: metrics on http://%s:%d/metrics (/healthz, /readyz)", metrics.service,
             host if ":" not in host else f"[{host}]", server.server_port)  # fmt: skip
    return server
