"""The consumer loop on fakes: retries, and the whole run from first poll to close."""

import threading

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import streaming.retry
from streaming.loop import run
from streaming.retry import Retry
from streaming.service import Rewind
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeMessage, FakeProducer, FakeService, Outage


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(streaming.retry, "FIRST_BACKOFF_S", 0.001)


def flaky(failures: list[Exception]):
    def action() -> None:
        if failures:
            raise failures.pop(0)

    return action


def test_retry_waits_out_transient_failures():
    stats = LoopStats()
    assert Retry(FakeService(), threading.Event(), stats)(flaky([Outage("down"), Outage("down")])) is True
    assert stats.retries == 2


def test_retry_raises_other_failures_and_rewinds_at_once():
    retry = Retry(FakeService(), threading.Event(), LoopStats())
    with pytest.raises(TypeError):
        retry(flaky([Outage("down"), TypeError("bug")]))
    with pytest.raises(Rewind):
        retry(flaky([Rewind("stale")]))


def test_retry_gives_up_when_asked_to_stop():
    stop = threading.Event()
    stop.set()
    assert Retry(FakeService(), stop, LoopStats())(flaky([Outage("down")])) is False


def test_run_processes_dead_letters_commits_and_closes_the_service():
    calls: list = []
    stop = threading.Event()
    batches = [[FakeMessage(offset_=0, value_=b"{a}"), FakeMessage(offset_=1, value_=b"oops")],
               [FakeMessage(partition_=1, offset_=5, value_=b"{b}")]]  # fmt: skip
    consumer = FakeConsumer(calls, batches=batches, stop=stop)
    producer, service = FakeProducer(calls), FakeService(calls)
    seen = []
    stats = run(service, consumer, producer, "txguard.dlq", batch_size=10, batch_wait_s=0.01, stop=stop,
                on_batch=lambda s: seen.append(s.messages))  # fmt: skip
    assert service.processed == [b"{a}", b"{b}"]
    assert consumer.committed_offsets == {("transactions", 0): 2, ("transactions", 1): 6}
    assert [p["value"] for p in producer.produced] == [b"oops"]
    assert (stats.batches, stats.messages, stats.dead_lettered) == (2, 3, 1)
    assert seen == [2, 3]
    assert calls[-4:] == ["producer.flush", "service.flush", "consumer.close", "service.close"]


def test_run_rewinds_when_the_state_is_stale():
    calls: list = []
    stop = threading.Event()
    consumer = FakeConsumer(calls, batches=[[FakeMessage(offset_=0, value_=b"{a}")]], stop=stop)
    consumer.assigned = [TopicPartition("transactions", 0)]
    service = FakeService(calls, flush_errors=[Rewind("another scorer wrote")])
    run(service, consumer, FakeProducer(calls), "dlq", batch_size=10, batch_wait_s=0.01, stop=stop)
    assert consumer.committed_offsets == {}  # the batch is consumed again, from the last commit
    assert consumer.seeks == [("transactions", 0, OFFSET_BEGINNING)]
    assert calls.index("service.on_revoke") < calls.index("consumer.close")  # the stale state was dropped
