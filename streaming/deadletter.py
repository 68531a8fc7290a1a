"""The dead-letter writer: a record the pipeline cannot use goes to the dead-letter topic,
its original bytes as the value, and one :class:`~schemas.events.DeadLetter` header
layout saying where it came from and why."""

from __future__ import annotations

import logging

from confluent_kafka import Producer

from schemas.events import DeadLetter
from streaming.producer import produce

log = logging.getLogger(__name__)


def dead_letter(producer: Producer, topic: str, value: bytes | None, key: bytes | None, record: DeadLetter) -> None:
    """Produce ``value``/``key`` to ``topic`` with ``record`` as headers, and log one line."""
    produce(producer, topic, value, key, headers=record.to_headers())
    reason = (record.reason.splitlines() or [record.error_class])[0][:200]
    log.warning("dead-lettered %s: %s: %s", record.where, record.error_class, reason)
