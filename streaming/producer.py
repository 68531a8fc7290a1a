"""Producing: delivery accounting and back-pressure."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)

# librdkafka's default message.max.bytes: a producer refuses a bigger message (key, value
# and headers) at produce() with MSG_SIZE_TOO_LARGE.
DEFAULT_MESSAGE_MAX_BYTES = 1_000_000


class ReportingProducer(Producer):
    """A Producer that logs and counts failed deliveries (librdkafka reports only those),
    and says how large a message it accepts (``message.max.bytes``)."""

    def __init__(self, conf: dict[str, Any]):
        self.failed = 0
        self.transactional = bool(conf.get("transactional.id"))
        self.max_message_bytes = int(conf.get("message.max.bytes", DEFAULT_MESSAGE_MAX_BYTES))
        super().__init__({**conf, "on_delivery": self._on_delivery, "delivery.report.only.error": True})

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            log.error("delivery to %s failed: %s", msg.topic(), err)

    def delivery_errors(self) -> int:
        return self.failed


def produce(producer: Producer, topic: str, value: bytes | None, key: bytes | None = None, **kwargs: Any) -> None:
    """``produce``, waiting while librdkafka's local queue is full instead of failing."""
    while True:
        try:
            producer.produce(topic, value, key, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


def delivery_errors(producer: Producer) -> int:
    """Failed deliveries so far, if the producer counts them (:class:`ReportingProducer`)."""
    counter = getattr(producer, "delivery_errors", None)
    return int(counter()) if counter is not None else 0


def is_transactional(producer: Producer) -> bool:
    """Whether ``producer`` was given a ``transactional.id`` (:class:`ReportingProducer` says)."""
    return bool(getattr(producer, "transactional", False))


def message_limit(producer: Producer) -> int:
    """The largest message ``producer`` sends, key, value and headers included."""
    return int(getattr(producer, "max_message_bytes", DEFAULT_MESSAGE_MAX_BYTES))
