"""One micro-batch: decode it, apply it, and keep a poison message from stopping it.

Errors are data here: a message that cannot be decoded, or that the service's sinks
refuse for good, goes to the dead-letter topic with where it came from and why, and
the batch carries on without it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from schemas.events import DeadLetter
from streaming.deadletter import dead_letter
from streaming.message import offset_of, partition_of, topic_of
from streaming.metrics import LoopMetrics
from streaming.producer import message_limit
from streaming.retry import Retry, first_line
from streaming.service import Decoded, Rewind, Service
from streaming.stats import LoopStats

log = logging.getLogger(__name__)


def take_batch(consumer: Consumer, max_messages: int, wait_s: float) -> list[Message]:
    """The next micro-batch: wait up to ``wait_s`` for a first message, then take what else the
    client has already fetched, without waiting for more.

    A batch closes as soon as the consumer has drained what it had fetched, so a quiet
    stream is processed event by event while it arrives (latency), and a busy one in
    batches as large as the backlog, up to ``max_messages`` (throughput). ``consume(n,
    timeout)`` alone would hold the first message until ``n`` arrived or the time ran out.
    """
    batch = consumer.consume(1, timeout=wait_s)
    # Drain until the client has nothing more fetched: with a backlog its fetcher refills the
    # queue meanwhile, so the batch fills up to the maximum (a commit per few hundred
    # messages would cost persist a PostgreSQL transaction each).
    while batch and len(batch) < max_messages:
        more = consumer.consume(max_messages - len(batch), timeout=0)
        if not more:
            break
        batch += more
    return batch


class MessageTooLarge(Exception):
    """A message beyond the size limit: not decoded, dead-lettered as a reference."""


class BatchProcessor:
    """Decodes and applies micro-batches for ``service``; bad messages to ``dlq_topic``."""

    def __init__(self, service: Service, producer: Producer, dlq_topic: str, retry: Retry, stats: LoopStats,
                 metrics: LoopMetrics | None = None):  # fmt: skip
        self.service, self.producer, self.dlq_topic = service, producer, dlq_topic
        self.retry, self.stats = retry, stats
        self.metrics = metrics or LoopMetrics(service.name)
        # The producers' limit (one setting): anything bigger was not written by txguard,
        # is not parsed, and could not be dead-lettered whole.
        self.max_message_bytes = message_limit(producer)

    def decode(self, messages: list[Message]) -> tuple[list[Decoded], dict[tuple[str, int], int]]:
        """The decoded messages, and the next offset of every partition seen (dead letters included).

        A service with ``decode_many(messages) -> list[event | Exception]`` decodes the
        batch at once (an exception in the list dead-letters its message); otherwise
        ``decode`` is called per message.
        """
        offsets: dict[tuple[str, int], int] = {}
        outcomes: list[tuple[Message, Any]] = []  # (message, event or the exception that dead-letters it)
        to_decode: list[int] = []
        for message in messages:
            error = message.error()
            if error:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.error("consume error: %s", error)
                continue
            offsets[(topic_of(message), partition_of(message))] = offset_of(message) + 1
            size = len(message.value() or b"") + len(message.key() or b"")
            if size > self.max_message_bytes:
                too_large = f"{size:,} bytes, over the {self.max_message_bytes:,}-byte message limit: not processed"
                outcomes.append((message, MessageTooLarge(too_large)))
                continue
            to_decode.append(len(outcomes))
            outcomes.append((message, None))
        for i, event in zip(to_decode, self._decode_all([outcomes[i][0] for i in to_decode]), strict=True):
            outcomes[i] = (outcomes[i][0], event)
        batch: list[Decoded] = []
        for message, event in outcomes:
            if isinstance(event, Exception):
                self.dead_letter(message, event)
            else:
                batch.append(Decoded(message, event))
        return batch, offsets

    def _decode_all(self, messages: list[Message]) -> list[Any]:
        """Each message's event, or the exception that dead-letters it."""
        decode_many = getattr(self.service, "decode_many", None)
        if decode_many is not None and messages:
            try:
                decoded = decode_many(messages)
                if len(decoded) == len(messages):
                    return list(decoded)
                log.error("%s: decode_many returned %d events for %d messages; decoding one by one",
                          self.service.name, len(decoded), len(messages))  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a bug in the batch path must not lose messages
                log.error("%s: decode_many failed (%s); decoding one by one", self.service.name, first_line(exc))
        events: list[Any] = []
        for message in messages:
            try:
                events.append(self.service.decode(message))
            except Exception as exc:  # noqa: BLE001 - any decode failure is the message's fault
                events.append(exc)
        return events

    def process(self, batch: list[Decoded]) -> bool:
        """Apply ``batch``; False if asked to stop during an outage (nothing of it is committed)."""
        if not batch:
            return True
        try:
            return self.retry(partial(self.service.process, batch))
        except Rewind:
            raise
        except Exception as exc:  # noqa: BLE001 - a valid message the sink still refuses
            log.error("%s: batch failed (%s: %s); isolating the message that breaks it",
                      self.service.name, type(exc).__name__, first_line(exc))  # fmt: skip
            return self.process_one_by_one(batch)

    def process_one_by_one(self, batch: list[Decoded]) -> bool:
        """Process each message alone; one the sink refuses for good goes to the DLQ.

        A poison message must not stop its partition. Messages already applied before
        the failure are no-ops the second time (idempotent sinks, watermarks).
        """
        for d in batch:
            try:
                if not self.retry(partial(self.service.process, [d])):
                    return False
            except Rewind:
                raise
            except Exception as exc:  # noqa: BLE001
                self.dead_letter(d.message, exc)
        return True

    def dead_letter(self, message: Message, exc: Exception) -> None:
        record = DeadLetter(
            service=self.service.name,
            source=topic_of(message),
            partition=partition_of(message),
            offset=offset_of(message),
            error_class=type(exc).__name__,
            reason=DeadLetter.reason_of(exc),
        )
        dead_letter(self.producer, self.dlq_topic, message.value(), message.key(), record)
        self.stats.dead_lettered += 1
        self.metrics.dead_lettered(topic_of(message))
