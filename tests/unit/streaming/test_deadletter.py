"""The dead-letter writer: the record's headers on the message, one warning line."""

import logging

from schemas.events import DeadLetter
from streaming.deadletter import dead_letter


class RecordingProducer:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    def produce(self, topic, value=None, key=None, **kwargs) -> None:
        self.records.append((topic, value, key, kwargs))


def test_dead_letter_sends_the_value_with_the_record_as_headers_and_logs_one_line(caplog):
    producer = RecordingProducer()
    record = DeadLetter(service="replay", source="in.csv", line=7, error_class="RejectedRow",
                        reason="amt is out of range\nsecond line")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="streaming.deadletter"):
        dead_letter(producer, "txguard.dlq", b'{"raw": 1}', None, record)
    ((topic, value, key, kwargs),) = producer.records
    assert (topic, value, key) == ("txguard.dlq", b'{"raw": 1}', None)
    assert DeadLetter.from_headers(kwargs["headers"]) == record
    assert [r.getMessage() for r in caplog.records] == ["dead-lettered in.csv:7: RejectedRow: amt is out of range"]


def test_a_full_local_queue_is_waited_for(caplog):
    class Full(RecordingProducer):
        def __init__(self) -> None:
            super().__init__()
            self.refusals, self.polls = 2, 0

        def produce(self, *args, **kwargs) -> None:
            if self.refusals:
                self.refusals -= 1
                raise BufferError
            super().produce(*args, **kwargs)

        def poll(self, timeout: float) -> int:
            self.polls += 1
            return 0

    producer = Full()
    record = DeadLetter(service="persist", source="transactions", partition=1, offset=42, error_class="ValueError",
                        reason="bad")  # fmt: skip
    dead_letter(producer, "dlq", b"x", b"k", record)
    assert producer.polls == 2 and len(producer.records) == 1
