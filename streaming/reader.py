"""Reading a topic from the start to its end, for the viewers (alerts, dead letters)."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, Message


def read_to_end(consumer: Consumer, topic: str, follow: bool = False) -> Iterator[Message]:
    """Every message of ``topic``, until the end of each partition (or forever with ``follow``).

    The consumer must have ``enable.partition.eof`` set to see where partitions end.
    """
    consumer.subscribe([topic])
    ended: set[int | None] = set()
    idle_polls = 0
    while True:
        msg = consumer.poll(1.0)
        if msg is None:
            idle_polls += 1
            if not follow and (
                idle_polls >= 10 or (consumer.assignment() and len(ended) >= len(consumer.assignment()))
            ):
                return
            continue
        idle_polls = 0
        error = msg.error()
        if error:
            if error.code() == KafkaError._PARTITION_EOF:
                ended.add(msg.partition())
                if not follow and len(ended) >= len(consumer.assignment()):
                    return
            continue
        yield msg
