"""Dead letters: one header layout, the original bytes, and a poison message isolated."""

import logging
import threading

import orjson
from confluent_kafka import KafkaError

from schemas.events import DeadLetter, TransactionEvent
from streaming.batch import BatchProcessor
from streaming.deadletter import dead_letter
from streaming.retry import Retry
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeMessage, FakeProducer, FakeService


def test_dead_letter_sends_the_original_bytes_with_the_record_as_headers(caplog):
    producer = FakeProducer()
    record = DeadLetter(service="scorer", source="transactions", partition=2, offset=41,
                        error_class="ValidationError", reason="3 validation errors\nthe rest")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        dead_letter(producer, "txguard.dlq", b"not json", b"card", record)
    (sent,) = producer.produced
    assert (sent["topic"], sent["value"], sent["key"]) == ("txguard.dlq", b"not json", b"card")
    assert DeadLetter.from_headers(sent["headers"]) == record
    assert dict(sent["headers"]) == {"service": b"scorer", "source": b"transactions", "partition": b"2",
                                     "offset": b"41", "error_class": b"ValidationError",
                                     "reason": b"3 validation errors\nthe rest"}  # fmt: skip
    assert caplog.messages == ["dead-lettered transactions[2]@41: ValidationError: 3 validation errors"]


def make_processor(**service_options):
    producer, service, stats = FakeProducer(), FakeService(**service_options), LoopStats()
    return BatchProcessor(service, producer, "txguard.dlq", Retry(service, threading.Event(), stats), stats)


def test_an_undecodable_message_is_dead_lettered_with_where_it_came_from_and_why():
    processor = make_processor()
    good, bad = FakeMessage(offset_=7, value_=b"{1}"), FakeMessage(partition_=1, offset_=3, value_=b"\xff")
    eof = FakeMessage(error_=KafkaError(KafkaError._PARTITION_EOF))
    batch, offsets = processor.decode([good, bad, eof])
    assert [d.event for d in batch] == [b"{1}"]
    assert offsets == {("transactions", 0): 8, ("transactions", 1): 4}  # dead letters are consumed too
    (sent,) = processor.producer.produced
    record = DeadLetter.from_headers(sent["headers"])
    assert (record.service, record.where, record.error_class) == ("fake", "transactions[1]@3", "ValueError")
    assert record.reason.startswith("not JSON") and sent["value"] == b"\xff" and sent["key"] == b"card"
    assert processor.stats.dead_lettered == 1


def test_a_message_the_sink_refuses_is_isolated_and_the_rest_of_the_batch_applied():
    processor = make_processor(poison={b"{poison}"})
    messages = [FakeMessage(offset_=i, value_=v) for i, v in enumerate([b"{a}", b"{poison}", b"{b}"])]
    batch, _ = processor.decode(messages)
    assert processor.process(batch) is True
    assert processor.service.processed == [b"{a}", b"{b}"]
    (sent,) = processor.producer.produced
    record = DeadLetter.from_headers(sent["headers"])
    assert (record.where, record.error_class, sent["value"]) == ("transactions[0]@1", "TypeError", b"{poison}")
    assert processor.stats.dead_lettered == 1


def test_an_empty_batch_is_nothing_to_do():
    processor = make_processor()
    assert processor.process([]) is True and processor.producer.produced == []


def test_a_dead_letter_reason_names_what_is_wrong_without_copying_the_message():
    class Strict(FakeService):
        def decode(self, message):
            return TransactionEvent.model_validate_json(message.value())

    stats = LoopStats()
    service = Strict()
    processor = BatchProcessor(service, FakeProducer(), "txguard.dlq", Retry(service, threading.Event(), stats), stats)
    hostile = {"trans_num": "0" * 32, "card_masked": "4111111111111111", "merchant": "Bob Smith 4111 1111 1111 1111",
               "4111111111111111": "extra", "amt": "12,50"}  # fmt: skip
    processor.decode([FakeMessage(value_=orjson.dumps(hostile)), FakeMessage(offset_=1, value_=b'{"a": "4111"')])
    reasons = [DeadLetter.from_headers(sent["headers"]).reason for sent in processor.producer.produced]
    assert len(reasons) == 2
    assert "card_masked: String should match pattern" in reasons[0] and "[string_pattern_mismatch]" in reasons[0]
    assert "<extra field>: Extra inputs are not permitted [extra_forbidden]" in reasons[0]
    assert reasons[1].startswith("TransactionEvent: <message>: Invalid JSON")
    for reason in reasons:
        assert "input" not in reason.replace("Extra inputs", "") and "4111" not in reason and "Bob" not in reason
