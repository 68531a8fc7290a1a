"""A micro-batch closes as soon as the consumer has drained what it had fetched."""

from streaming.batch import take_batch
from tests.unit.streaming.kafka_fakes import FakeConsumer, FakeMessage


class RecordingConsumer(FakeConsumer):
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        self.calls.append(("consume", num_messages, timeout))
        return super().consume(num_messages, timeout)


def messages(*offsets: int) -> list[FakeMessage]:
    return [FakeMessage(offset_=o) for o in offsets]


def test_a_batch_is_what_had_arrived_when_the_first_message_came_not_a_full_one():
    consumer = RecordingConsumer(batches=[messages(0, 1, 2), messages(3, 4)])
    assert [m.offset() for m in take_batch(consumer, 5000, 0.5)] == [0, 1, 2]
    # Waited for one message only, then took the rest without waiting.
    assert consumer.calls == [("consume", 1, 0.5), ("consume", 4999, 0), ("consume", 4997, 0)]
    assert [m.offset() for m in take_batch(consumer, 5000, 0.5)] == [3, 4]


def test_a_backlog_is_taken_in_batches_of_the_maximum_size():
    consumer = RecordingConsumer(batches=[messages(*range(7))])
    assert [len(take_batch(consumer, 3, 0.5)) for _ in range(3)] == [3, 3, 1]
    assert take_batch(consumer, 3, 0.5) == []


def test_nothing_arriving_is_an_empty_batch_after_one_wait():
    consumer = RecordingConsumer()
    assert take_batch(consumer, 5000, 0.25) == []
    assert consumer.calls == [("consume", 1, 0.25)]


class BacklogConsumer:
    """A client whose fetcher keeps adding 100 messages to its queue while the batch is drained."""

    def __init__(self, backlog: int):
        self.backlog = backlog

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        n = min(num_messages, 100, self.backlog)
        self.backlog -= n
        return messages(*range(n))


def test_with_a_backlog_the_batch_fills_up_to_the_maximum_while_the_client_keeps_fetching():
    consumer = BacklogConsumer(backlog=12_000)
    assert [len(take_batch(consumer, 5000, 0.5)) for _ in range(4)] == [5000, 5000, 2000, 0]
