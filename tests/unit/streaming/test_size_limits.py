"""One message size limit: a record too large to carry is dead-lettered as a reference."""

from __future__ import annotations

import hashlib
import threading

import orjson

from schemas.events import DeadLetter
from streaming.batch import BatchProcessor
from streaming.deadletter import dead_letter, message_size
from streaming.loop import run
from streaming.producer import DEFAULT_MESSAGE_MAX_BYTES, ReportingProducer, message_limit
from streaming.retry import Retry
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeMessage, FakeProducer, FakeService

RECORD = DeadLetter(service="persist", source="ns.transactions", partition=2, offset=41,
                    error_class="ValidationError", reason="not an event")  # fmt: skip


def limited_producer(limit: int) -> FakeProducer:
    producer = FakeProducer()
    producer.max_message_bytes = limit  # type: ignore[attr-defined]  # what ReportingProducer carries
    return producer


def test_the_producer_says_its_limit():
    assert message_limit(FakeProducer()) == DEFAULT_MESSAGE_MAX_BYTES == 1_000_000
    producer = ReportingProducer({"message.max.bytes": 250_000, "log_level": 0})  # no broker: never connects
    assert message_limit(producer) == 250_000


def test_a_dead_letter_that_fits_carries_the_bytes():
    producer = limited_producer(100_000)
    value = b"v" * 90_000
    dead_letter(producer, "dlq", value, b"card", RECORD)
    (sent,) = producer.produced
    assert (sent["value"], sent["key"], DeadLetter.from_headers(sent["headers"])) == (value, b"card", RECORD)


def test_a_dead_letter_too_large_to_carry_becomes_a_reference(caplog):
    producer = limited_producer(100_000)
    value = "é".encode() * 60_000  # 120,000 bytes
    dead_letter(producer, "dlq", value, b"card", RECORD)
    (sent,) = producer.produced
    digest = hashlib.sha256(value).hexdigest()
    record = DeadLetter.from_headers(sent["headers"])
    assert record == RECORD.model_copy(update={"size": 120_000, "sha256": digest})
    assert orjson.loads(sent["value"]) == {"source": "ns.transactions", "partition": 2, "offset": 41,
                                           "error_class": "ValidationError", "size": 120_000,
                                           "sha256": digest}  # fmt: skip
    assert sent["key"] == b"card"
    assert message_size(sent["value"], sent["key"], sent["headers"]) < 100_000
    assert f"(a reference: 120,000 bytes, sha256 {digest})" in caplog.text


def test_headers_count_toward_the_limit_and_a_huge_key_is_left_out():
    producer = limited_producer(100_000)
    dead_letter(producer, "dlq", b"v" * 98_000, b"k" * 5000, RECORD)
    (sent,) = producer.produced
    assert sent["key"] is None and DeadLetter.from_headers(sent["headers"]).size == 98_000


def make_processor(producer: FakeProducer) -> BatchProcessor:
    service, stats = FakeService(), LoopStats()
    return BatchProcessor(service, producer, "dlq", Retry(service, threading.Event(), stats), stats)


def test_a_message_over_the_limit_is_not_decoded_but_dead_lettered_as_a_reference():
    processor = make_processor(limited_producer(100_000))
    huge = b"{" + b"x" * 150_000
    messages = [FakeMessage(offset_=6, value_=b"{a}"), FakeMessage(offset_=7, value_=huge), FakeMessage(offset_=8)]
    batch, offsets = processor.decode(messages)
    assert [d.message.offset() for d in batch] == [6, 8]
    assert offsets == {("transactions", 0): 9}  # consumed past it
    (sent,) = processor.producer.produced
    record = DeadLetter.from_headers(sent["headers"])
    assert (record.where, record.error_class, record.size) == ("transactions[0]@7", "MessageTooLarge", 150_001)
    assert record.sha256 == hashlib.sha256(huge).hexdigest()
    assert record.reason == "150,005 bytes, over the 100,000-byte message limit: not processed"  # value + key
    assert len(sent["value"]) < 1000 and processor.stats.dead_lettered == 1


def test_the_loop_commits_past_an_oversized_message():
    stop = threading.Event()
    producer = limited_producer(100_000)
    consumer = FakeConsumer(batches=[[FakeMessage(offset_=0, value_=b"{" * 200_000), FakeMessage(offset_=1)]],
                            stop=stop)  # fmt: skip
    service = FakeService()
    stats = run(service, consumer, producer, "dlq", batch_size=10, batch_wait_s=0.01, stop=stop)
    assert consumer.committed_offsets == {("transactions", 0): 2}
    assert service.processed == [b"{}"] and stats.dead_lettered == 1
