"""The checkpoint: outputs delivered, then state durable, then offsets committed."""

import threading

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import streaming.retry
from streaming.checkpoint import Checkpoint
from streaming.retry import Retry
from streaming.service import Rewind
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeProducer, FakeService, Outage


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


class BackgroundWrites:
    """A service's writes started by ``start_flush``: they end when the test says."""

    def __init__(self, calls: list, error: Exception | None = None):
        self.calls, self.error, self.ended = calls, error, threading.Event()

    def done(self) -> bool:
        return self.ended.is_set()

    def finish(self) -> None:
        self.ended.wait()
        self.calls.append("service.finish")
        if self.error is not None:
            raise self.error


def make_background_checkpoint(*errors: Exception | None):
    """A checkpoint over a service that writes in the background; its writes fail with ``errors`` in turn."""
    checkpoint, calls, stats = make_checkpoint()
    started: list[BackgroundWrites] = []
    outcomes = list(errors)

    def start_flush() -> BackgroundWrites:
        calls.append("service.start_flush")
        started.append(BackgroundWrites(calls, outcomes.pop(0) if outcomes else None))
        return started[-1]

    checkpoint.start_flush = start_flush
    return checkpoint, calls, started


def test_a_background_checkpoint_commits_its_offsets_only_once_its_writes_have_landed():
    checkpoint, calls, started = make_background_checkpoint()
    checkpoint.stage({("transactions", 0): 10})
    assert checkpoint.step() is True
    assert calls == ["producer.flush", "service.start_flush"] and checkpoint.pending == {}
    checkpoint.stage({("transactions", 0): 20})  # the loop goes on meanwhile
    assert checkpoint.step() is True
    assert checkpoint.consumer.committed_offsets == {}  # not landed yet: nothing committed, no second checkpoint
    started[0].ended.set()
    assert checkpoint.step() is True
    # The first checkpoint's offsets, then the next checkpoint of what came since.
    assert calls == ["producer.flush", "service.start_flush", "service.finish", "commit", "producer.flush",
                     "service.start_flush"]  # fmt: skip
    assert checkpoint.consumer.committed_offsets == {("transactions", 0): 10}
    assert len(started) == 2 and checkpoint.pending == {}


def test_failed_background_writes_are_done_again_in_the_foreground_with_every_offset():
    checkpoint, calls, started = make_background_checkpoint(Outage("table down"))
    checkpoint.stage({("transactions", 0): 10, ("transactions", 1): 4})
    checkpoint.step()
    checkpoint.stage({("transactions", 0): 20})
    started[0].ended.set()
    assert checkpoint.step() is True
    assert calls[-4:] == ["service.finish", "producer.flush", "service.flush", "commit"]
    assert checkpoint.consumer.committed_offsets == {("transactions", 0): 20, ("transactions", 1): 4}


def test_stale_state_in_background_writes_rewinds_and_commits_nothing():
    checkpoint, calls, started = make_background_checkpoint(Rewind("card changed under this scorer"))
    checkpoint.stage({("transactions", 0): 10})
    checkpoint.step()
    started[0].ended.set()
    with pytest.raises(Rewind):
        checkpoint.step()
    assert "commit" not in calls


def test_a_foreground_checkpoint_first_waits_for_the_background_one():
    checkpoint, calls, started = make_background_checkpoint()
    checkpoint.stage({("transactions", 0): 10})
    checkpoint.step()
    checkpoint.stage({("transactions", 0): 15})
    threading.Timer(0.05, started[0].ended.set).start()
    assert checkpoint() is True  # e.g. on revocation or at shutdown
    assert calls[-5:] == ["service.finish", "commit", "producer.flush", "service.flush", "commit"]
    assert checkpoint.consumer.committed_offsets == {("transactions", 0): 15}


def test_a_transactional_checkpoint_never_goes_to_the_background():
    calls: list = []

    class TransactionalProducer(FakeProducer):
        transactional = True

        def init_transactions(self, timeout: float) -> None:
            calls.append("producer.init_transactions")

    service = FakeService(calls)
    service.start_flush = lambda: pytest.fail("a transaction commits outputs and offsets together")  # type: ignore[attr-defined]
    stop = threading.Event()
    checkpoint = Checkpoint(FakeConsumer(calls), TransactionalProducer(calls), service,
                            Retry(service, stop, LoopStats()), stop)  # fmt: skip
    assert checkpoint.start_flush is None


def test_a_background_checkpoint_that_cannot_start_is_done_in_the_foreground():
    checkpoint, calls, _ = make_checkpoint(outages=1)

    def start_flush():
        raise Outage("online checkpoint store down")

    checkpoint.start_flush = start_flush
    checkpoint.stage({("transactions", 0): 10})
    assert checkpoint.step() is True
    assert calls == ["producer.flush", "producer.flush", "service.flush", "service.flush", "commit"]
    assert checkpoint.consumer.committed_offsets == {("transactions", 0): 10}
