"""Typed access to a consumed message.

confluent-kafka types a message's topic, partition, offset and value as optional
because error events carry none of them; the loop skips error events, so in every
message it hands on they are set.
"""

from __future__ import annotations

from confluent_kafka import Message


def topic_of(message: Message) -> str:
    topic = message.topic()
    assert topic is not None, "an error event, not a message"
    return topic


def partition_of(message: Message) -> int:
    partition = message.partition()
    assert partition is not None, "an error event, not a message"
    return partition


def offset_of(message: Message) -> int:
    offset = message.offset()
    assert offset is not None, "an error event, not a message"
    return offset


def value_of(message: Message) -> bytes:
    """The message's bytes; a tombstone (no value) reads as empty, which no event schema accepts."""
    return message.value() or b""


def header_of(message: Message, name: str) -> bytes | None:
    """The value of the message's first header called ``name``, if any."""
    for header in message.headers() or ():
        if header[0] == name:
            value = header[1]
            return value.encode() if isinstance(value, str) else value
    return None
