"""Reading a topic for the viewers (alerts, dead letters): from the start to its end, or what comes next."""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition


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


def assign_at_end(consumer: Consumer, topic: str, timeout_s: float = 30) -> None:
    """Assign every partition of ``topic`` at its end: what is polled next was published after this call.

    No consumer group offsets are used. Each partition is read to its end here (the
    consumer must have ``enable.partition.eof`` set), because the end a broker reports
    may be short of it: Tansu 0.6 answers ListOffsets(latest) with the last batch's base
    offset + 1, so ``auto.offset.reset=latest`` showed that batch as new.
    """
    deadline = time.monotonic() + timeout_s
    ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1])
            for p in topic_partitions(consumer, topic, timeout_s)]  # fmt: skip
    consumer.assign(ends)
    ended: set[int | None] = set()
    while len(ended) < len(ends):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: the end of partitions {sorted({t.partition for t in ends} - ended)} "
                               f"was not reached in {timeout_s:g}s")  # fmt: skip
        msg = consumer.poll(0.5)
        error = msg.error() if msg is not None else None
        if msg is not None and error is not None and error.code() == KafkaError._PARTITION_EOF:
            ended.add(msg.partition())


def read_new(consumer: Consumer) -> Iterator[Message]:
    """The messages of the assigned partitions, forever (after :func:`assign_at_end`)."""
    while True:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            yield msg


def topic_partitions(client: Consumer | Producer, topic: str, timeout_s: float = 10.0) -> list[int]:
    """The partitions of ``topic``, from the broker's metadata."""
    metadata = client.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    return sorted(metadata.partitions)
