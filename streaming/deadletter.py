"""The dead-letter writer: one record layout for every rejected row or unusable message."""

from __future__ import annotations

import logging

from schemas.events import DeadLetter
from streaming.producer import produce

log = logging.getLogger(__name__)


def dead_letter(producer, topic: str, value: bytes | None, key: bytes | None, record: DeadLetter) -> None:
    """Send ``value`` to the dead-letter ``topic`` with ``record`` as its headers, and log it.

    ``producer`` is a confluent_kafka Producer; waits while its local queue is full.
    """
    produce(producer, topic, value, key, headers=record.to_headers())
    log.warning("dead-lettered %s: %s: %s", record.where, record.error_class, record.reason.partition("\n")[0])
