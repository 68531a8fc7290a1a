"""The loop's metrics and health on fakes: counts of committed work, lag, and the HTTP endpoint."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

import streaming.retry
from streaming.checkpoint import Checkpoint
from streaming.loop import run
from streaming.metrics import LoopMetrics, count_alerts, serve
from streaming.rebalance import RebalanceHandler
from streaming.retry import Retry
from streaming.service import Rewind
from streaming.stats import LoopStats
from tests.conftest import http_get
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeMessage, FakeProducer, FakeService, Outage


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(streaming.retry, "FIRST_BACKOFF_S", 0.001)


@pytest.fixture
def name() -> str:
    """A service name of its own: the metrics live in the process-wide registry."""
    return f"svc{uuid.uuid4().hex[:8]}"


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


@dataclass
class AlertingService(FakeService):
    """Raises one alert per message whose value holds ``!``."""

    def process(self, batch: list[Any]) -> None:
        super().process(batch)
        count_alerts(sum(b"!" in d.event for d in batch))


def run_loop(service: FakeService, batches: list[list[FakeMessage]], **kwargs: Any) -> FakeConsumer:
    stop = threading.Event()
    consumer = FakeConsumer(service.calls, batches=batches, stop=stop)
    run(service, consumer, FakeProducer(service.calls), "dlq", batch_size=10, batch_wait_s=0.01, stop=stop, **kwargs)
    return consumer


def test_committed_events_are_counted_by_topic_and_outcome_with_the_alerts(name):
    service = AlertingService(name=name, topics=["transactions", "scores"])
    run_loop(service, [
        [FakeMessage(offset_=0, value_=b"{!}"), FakeMessage(offset_=1, value_=b"oops"),
         FakeMessage("scores", offset_=0, value_=b"{}")],
        [FakeMessage(offset_=2, value_=b"{!}"), FakeMessage(offset_=3, value_=b"{}")],
    ])  # fmt: skip

    assert sample("txguard_events_total", service=name, topic="transactions", outcome="processed") == 3
    assert sample("txguard_events_total", service=name, topic="transactions", outcome="dead_lettered") == 1
    assert sample("txguard_events_total", service=name, topic="scores", outcome="processed") == 1
    assert sample("txguard_alerts_total", service=name) == 2
    assert sample("txguard_batch_seconds_count", service=name) == 2
    assert sample("txguard_checkpoint_seconds_count", service=name) >= 1
    # every series of a service's topics exists from the start, at 0
    assert REGISTRY.get_sample_value(
        "txguard_events_total", {"service": name, "topic": "scores", "outcome": "dead_lettered"}
    ) == 0  # fmt: skip


def test_a_batch_replayed_after_a_rewind_is_counted_once(name):
    service = AlertingService(name=name, flush_errors=[Rewind("another scorer wrote")])
    again = [FakeMessage(offset_=0, value_=b"{!}"), FakeMessage(offset_=1, value_=b"bad")]
    consumer = run_loop(service, [list(again), list(again)])  # the rewind redelivers the batch

    assert consumer.committed_offsets == {("transactions", 0): 2}
    assert sample("txguard_events_total", service=name, topic="transactions", outcome="processed") == 1
    assert sample("txguard_events_total", service=name, topic="transactions", outcome="dead_lettered") == 1
    assert sample("txguard_alerts_total", service=name) == 1


def test_nothing_is_counted_without_a_commit(name):
    service = AlertingService(name=name, outages=1000)  # the sink never comes back

    stop = threading.Event()
    consumer = FakeConsumer(service.calls, batches=[[FakeMessage(offset_=0, value_=b"{!}")]])
    metrics = LoopMetrics(name)
    threading.Timer(0.3, stop.set).start()
    run(service, consumer, FakeProducer(service.calls), "dlq", batch_size=10, batch_wait_s=0.01, stop=stop,
        metrics=metrics)  # fmt: skip

    assert consumer.committed_offsets == {}
    assert sample("txguard_events_total", service=name, topic="transactions", outcome="processed") == 0
    assert sample("txguard_alerts_total", service=name) == 0
    assert metrics.sink_failure == "Outage"


def test_lag_follows_the_assignment(name):
    consumer = FakeConsumer(assigned=[TopicPartition("transactions", 0), TopicPartition("transactions", 1)],
                            positions={("transactions", 0): 40, ("transactions", 1): 7},
                            high_watermarks={("transactions", 0): 100, ("transactions", 1): 7})  # fmt: skip
    metrics = LoopMetrics(name, describe=lambda: {"version": "v2", "shadow": ""})
    metrics.observe(consumer)

    assert sample("txguard_consumer_lag", service=name, topic="transactions", partition="0") == 60
    assert sample("txguard_consumer_lag", service=name, topic="transactions", partition="1") == 0
    assert sample("txguard_model_version_info", service=name, version="v2", shadow="") == 1
    assert metrics.partitions == 2

    consumer.assigned = [TopicPartition("transactions", 1)]  # partition 0 moved to another consumer
    metrics._observed_at = float("-inf")
    metrics.observe(consumer)
    assert REGISTRY.get_sample_value("txguard_consumer_lag", {"service": name, "topic": "transactions",
                                                              "partition": "0"}) is None  # fmt: skip
    assert metrics.partitions == 1


@pytest.fixture
def served(name) -> Iterator[tuple[LoopMetrics, str]]:
    metrics = LoopMetrics(name, stale_after_s=60)
    server = serve(metrics, "127.0.0.1", 0)
    try:
        yield metrics, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_endpoint_serves_metrics_liveness_and_readiness(served, name):
    metrics, base = served
    status, text = http_get(f"{base}/metrics")
    assert status == 200 and "# TYPE txguard_events_total counter" in text

    assert http_get(f"{base}/healthz")[0] == 200
    status, text = http_get(f"{base}/readyz")
    assert status == 503 and "holds no partitions" in text

    metrics.partitions = 3
    ready = f"ok: {name}: holds 3 partitions, sinks reachable, last commit none yet\n"
    assert http_get(f"{base}/readyz") == (200, ready)

    metrics.sink_failed(Outage("host db.internal:5432 refused"))
    status, text = http_get(f"{base}/readyz")
    assert status == 503 and "cannot go on yet (Outage)" in text and "db.internal" not in text
    assert http_get(f"{base}/healthz")[0] == 200  # waiting out an outage is being alive
    metrics.sink_passed()
    assert http_get(f"{base}/readyz")[0] == 200

    metrics.heartbeat_at -= 61  # a loop stuck for longer than stale_after_s
    assert http_get(f"{base}/healthz")[0] == 503
    assert http_get(f"{base}/readyz")[0] == 503


def test_a_port_in_use_is_an_error(served):
    _, base = served
    with pytest.raises(OSError):
        serve(LoopMetrics("other"), "127.0.0.1", int(base.rsplit(":", 1)[1]))


@pytest.mark.parametrize("delivery_failures, counted", [(0, 2), (1, 0)])
def test_a_revocation_counts_what_its_checkpoint_commits_and_drops_the_rest(name, delivery_failures, counted):
    stop, metrics = threading.Event(), LoopMetrics(name)
    metrics.start(["transactions"])
    service = FakeService(name=name)
    consumer, producer = FakeConsumer(), FakeProducer(fail=delivery_failures)
    checkpoint = Checkpoint(consumer, producer, service, Retry(service, stop, LoopStats(), metrics), stop,
                            metrics=metrics)  # fmt: skip
    checkpoint.stage({("transactions", 0): 2})
    metrics.processed([FakeMessage(offset_=0), FakeMessage(offset_=1)], 0.01)
    count_alerts(1)

    RebalanceHandler(service, checkpoint).revoked(consumer, [TopicPartition("transactions", 0)])

    assert sample("txguard_events_total", service=name, topic="transactions", outcome="processed") == counted
    assert sample("txguard_alerts_total", service=name) == counted / 2
    assert (metrics.staged_messages, metrics.staged_alerts) == ({}, 0)  # the next owner counts the rest
    metrics.stop()
