"""The checkpoint: outputs delivered, then state durable, then offsets committed."""

import threading

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import streaming.retry
from streaming.checkpoint import Checkpoint
from streaming.retry import Retry
from streaming.service import Rewind
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeProducer, FakeService


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(streaming.retry, "FIRST_BACKOFF_S", 0.001)


def make_checkpoint(*, interval_s=0.0, stop=None, **service_options):
    calls: list = []
    stop = stop or threading.Event()
    consumer, producer = FakeConsumer(calls), FakeProducer(calls)
    service = FakeService(calls, **service_options)
    stats = LoopStats()
    checkpoint = Checkpoint(consumer, producer, service, Retry(service, stop, stats), stop, interval_s)
    return checkpoint, calls, stats


def test_producer_is_flushed_before_the_sinks_and_the_sinks_before_the_commit():
    checkpoint, calls, _ = make_checkpoint()
    checkpoint.stage({("transactions", 0): 11, ("transactions", 1): 5})
    checkpoint.stage({("transactions", 0): 12})
    assert checkpoint() is True
    assert calls == ["producer.flush", "service.flush", "commit"]
    assert checkpoint.consumer.committed_offsets == {("transactions", 0): 12, ("transactions", 1): 5}
    assert checkpoint.pending == {}


def test_the_producer_is_flushed_until_the_broker_has_acknowledged_everything():
    checkpoint, calls, _ = make_checkpoint()
    checkpoint.producer.acks_after = 3
    checkpoint.stage({("transactions", 0): 1})
    assert checkpoint() is True
    assert calls == ["producer.flush"] * 3 + ["service.flush", "commit"]


def test_nothing_is_committed_when_deliveries_failed():
    checkpoint, calls, _ = make_checkpoint()
    checkpoint.producer.fail = 2
    checkpoint.stage({("transactions", 0): 7})
    with pytest.raises(Rewind):
        checkpoint()
    assert calls == ["producer.flush"]  # neither the state nor the offsets
    assert checkpoint.consumer.committed_offsets == {}


def test_a_sink_outage_is_waited_out_then_committed():
    checkpoint, calls, stats = make_checkpoint(outages=2)
    checkpoint.stage({("transactions", 0): 3})
    assert checkpoint() is True
    assert calls == ["producer.flush"] + ["service.flush"] * 3 + ["commit"]
    assert stats.retries == 2


def test_stop_during_an_outage_returns_false_and_commits_nothing():
    stop = threading.Event()
    checkpoint, calls, _ = make_checkpoint(stop=stop, outages=10**6)
    checkpoint.stage({("transactions", 0): 3})
    stop.set()
    assert checkpoint() is False
    assert "commit" not in calls
    assert checkpoint.pending == {("transactions", 0): 3}


def test_stop_set_during_a_producer_flush_that_never_ends_returns_false():
    stop = threading.Event()
    checkpoint, calls, _ = make_checkpoint(stop=stop)
    checkpoint.producer.acks_after = 10**6  # the broker is gone
    checkpoint.stage({("transactions", 0): 3})
    stop.set()
    assert checkpoint() is False
    assert calls == ["producer.flush", "producer.flush"]  # one more chance, then give up: no state, no commit


def test_a_sink_that_fails_for_good_raises_and_commits_nothing():
    checkpoint, calls, _ = make_checkpoint(flush_errors=[RuntimeError("bug")])
    checkpoint.stage({("transactions", 0): 3})
    with pytest.raises(RuntimeError):
        checkpoint()
    assert "commit" not in calls


def test_due_only_with_pending_offsets_and_after_the_interval():
    checkpoint, _, _ = make_checkpoint(interval_s=0.0)
    assert not checkpoint.due()
    checkpoint.stage({("transactions", 0): 1})
    assert checkpoint.due()
    later, _, _ = make_checkpoint(interval_s=3600)
    later.stage({("transactions", 0): 1})
    assert not later.due()


def test_rewind_forgets_pending_offsets_drops_state_and_seeks_to_the_last_commit():
    checkpoint, calls, _ = make_checkpoint()
    consumer = checkpoint.consumer
    consumer.assigned = [TopicPartition("transactions", 0), TopicPartition("transactions", 1)]
    consumer.committed_offsets = {("transactions", 0): 40}
    checkpoint.stage({("transactions", 0): 55})
    checkpoint.rewind()
    assert checkpoint.pending == {}
    assert calls == ["service.on_revoke"]
    assert consumer.seeks == [("transactions", 0, 40), ("transactions", 1, OFFSET_BEGINNING)]
