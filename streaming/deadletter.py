"""The dead-letter writer: a record the pipeline cannot use goes to the dead-letter topic,
its original bytes as the value, and one :class:`~schemas.events.DeadLetter` header
layout saying where it came from and why.

A record too large to carry (beyond the producer's ``message.max.bytes``) is sent as a
reference instead: where it came from, its size and sha256. Sending it whole would fail
at ``produce`` and stop the service on the same message after every restart.
"""

from __future__ import annotations

import hashlib
import logging

import orjson
from confluent_kafka import Producer

from schemas.events import DeadLetter
from streaming.producer import message_limit, produce

log = logging.getLogger(__name__)

# Room for what librdkafka counts besides the key, value and header bytes (lengths, names).
FRAMING_BYTES = 1024
# A key up to this size stays with a reference (a card token is 32 bytes); a bigger one does not.
KEY_KEEP_BYTES = 1024


def dead_letter(producer: Producer, topic: str, value: bytes | None, key: bytes | None, record: DeadLetter) -> None:
    """Produce ``value``/``key`` to ``topic`` with ``record`` as headers, and log one line.

    When they would not fit in a message, ``value`` is replaced by a reference to it
    (``record``'s source, partition, offset or line, the size and sha256 of ``value``).
    """
    headers = record.to_headers()
    if message_size(value, key, headers) > message_limit(producer):
        value, key, record = as_reference(value, key, record)
        headers = record.to_headers()
    produce(producer, topic, value, key, headers=headers)
    reason = (record.reason.splitlines() or [record.error_class])[0][:200]
    kept = f" (a reference: {record.size:,} bytes, sha256 {record.sha256})" if record.sha256 else ""
    log.warning("dead-lettered %s: %s: %s%s", record.where, record.error_class, reason, kept)


def message_size(value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """The bytes librdkafka counts against ``message.max.bytes``, rounded up."""
    return (len(value or b"") + len(key or b"") + sum(len(name) + len(v) for name, v in headers)
            + FRAMING_BYTES)  # fmt: skip


def as_reference(value: bytes | None, key: bytes | None, record: DeadLetter) -> tuple[bytes, bytes | None, DeadLetter]:
    """(value, key, record) that point at ``value`` instead of carrying it."""
    data = value or b""
    record = record.model_copy(update={"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    reference = {
        name: getattr(record, name)
        for name in ("source", "partition", "offset", "line", "error_class", "size", "sha256")
        if getattr(record, name) is not None
    }
    return orjson.dumps(reference), key if key is not None and len(key) <= KEY_KEEP_BYTES else None, record
