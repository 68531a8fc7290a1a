"""Partitions leaving: checkpoint, then let the service drop what it cached for them."""

import threading

from confluent_kafka import TopicPartition

from streaming.checkpoint import Checkpoint
from streaming.rebalance import RebalanceHandler
from streaming.retry import Retry
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeProducer, FakeService

PARTITIONS = [TopicPartition("transactions", 0), TopicPartition("transactions", 1)]


def make_handler(on_assign=None, **producer_options):
    calls: list = []
    stop = threading.Event()
    consumer, producer, service = FakeConsumer(calls), FakeProducer(calls, **producer_options), FakeService(calls)
    checkpoint = Checkpoint(consumer, producer, service, Retry(service, stop, LoopStats()), stop)
    return RebalanceHandler(service, checkpoint, on_assign), consumer, calls


def test_subscribes_the_service_topics_with_its_callbacks():
    handler, consumer, calls = make_handler()
    handler.subscribe(consumer)
    assert calls == [("subscribe", ("transactions",))]
    assert consumer.callbacks == {"on_assign": handler.assigned, "on_revoke": handler.revoked,
                                  "on_lost": handler.revoked}  # fmt: skip


def test_revocation_checkpoints_then_drops_the_service_state():
    handler, consumer, calls = make_handler()
    handler.checkpoint.stage({("transactions", 0): 9})
    handler.revoked(consumer, PARTITIONS)
    assert calls == ["producer.flush", "service.flush", "commit", "service.on_revoke"]
    assert consumer.committed_offsets == {("transactions", 0): 9}


def test_a_failed_checkpoint_on_revocation_still_drops_offsets_and_state():
    handler, consumer, calls = make_handler(fail=1)  # a delivery failed: the checkpoint raises Rewind
    handler.checkpoint.stage({("transactions", 0): 9})
    handler.revoked(consumer, PARTITIONS)
    assert "commit" not in calls and calls[-1] == "service.on_revoke"
    assert handler.checkpoint.pending == {}  # the next owner replays them


def test_assignment_is_reported():
    seen = []
    handler, consumer, _ = make_handler(on_assign=seen.append)
    handler.assigned(consumer, PARTITIONS)
    assert seen == [PARTITIONS]
    make_handler()[0].assigned(consumer, PARTITIONS)  # no callback: nothing to call


def test_a_service_that_tracks_its_partitions_hears_their_numbers_on_assignment():
    handler, consumer, _ = make_handler()
    heard: list[list[int]] = []
    handler.service.on_assign = heard.append  # type: ignore[attr-defined]  # the optional hook
    handler.assigned(consumer, PARTITIONS)
    assert heard == [[0, 1]]
