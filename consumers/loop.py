"""The one consumer loop every service runs on.

poll a micro-batch -> decode (bad messages to the dead-letter topic) -> the
service's ``process`` makes its sinks durable -> flush the producer -> commit the
batch's offsets. Offsets are committed only after all of that succeeded, so a crash
at any point redelivers the batch and idempotent sinks absorb the repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from streaming.producer import delivery_errors

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0


@dataclass(frozen=True, slots=True)
class Decoded:
    message: Message
    event: Any


class Service(Protocol):
    name: str
    topics: list[str]

    def decode(self, message: Message) -> Any:
        """Parse and validate one message; raise to dead-letter it."""

    def process(self, batch: list[Decoded]) -> None:
        """Apply the batch; its effects may stay in memory until ``flush``."""

    def flush(self) -> None:
        """Make every effect of the processed batches durable (a checkpoint)."""

    def is_transient(self, exc: Exception) -> bool:
        """Whether ``process`` failed because a dependency is down (retry) or for good."""

    def on_revoke(self) -> None:
        """Partitions are moving to another consumer: drop state cached for them."""


@dataclass
class LoopStats:
    batches: int = 0
    messages: int = 0
    dead_lettered: int = 0
    retries: int = 0


def dead_letter(producer: Producer, dlq_topic: str, message: Message, exc: Exception) -> None:
    """Send an undecodable message to the DLQ with where it came from and why."""
    headers = [
        ("source_topic", message.topic().encode()),
        ("source_partition", str(message.partition()).encode()),
        ("source_offset", str(message.offset()).encode()),
        ("error_class", type(exc).__name__.encode()),
        ("error", str(exc).encode()[:2000]),
    ]
    producer.produce(dlq_topic, value=message.value(), key=message.key(), headers=headers)
    log.warning(
        "dead-lettered %s[%d]@%d: %s: %s",
        message.topic(), message.partition(), message.offset(), type(exc).__name__, first_line(exc),
    )  # fmt: skip


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


class Rewind(Exception):
    """The service's state is stale (another consumer wrote after it): start over
    from the last committed offsets with fresh state."""


def run(
    service: Service,
    consumer: Consumer,
    producer: Producer,
    dlq_topic: str,
    *,
    batch_size: int,
    batch_wait_s: float,
    stop: threading.Event,
    commit_interval_s: float = 0.0,
    on_batch: Callable[[LoopStats], None] | None = None,
    on_assign: Callable[[list[TopicPartition]], None] | None = None,
) -> LoopStats:
    """Consume until ``stop`` is set.

    ``commit_interval_s`` spaces the checkpoints: in between, a service may keep
    its effects in memory (the scorer's card states); a checkpoint makes them
    durable (``service.flush``), flushes the producer, then commits the offsets of
    everything processed. 0 checkpoints after every micro-batch. A rebalance and a
    shutdown checkpoint first, so the next owner starts where this one stopped.
    """
    stats = LoopStats()
    pending: dict[tuple[str, int], int] = {}  # processed, not yet committed
    last_checkpoint = time.monotonic()

    def checkpoint() -> bool:
        """Producer first: outputs computed from the state are delivered before the state is
        saved, so a crash in between redelivers events that are scored from the earlier state."""
        nonlocal last_checkpoint
        failed_before = delivery_errors(producer)
        while producer.flush(1) > 0:
            if stop.is_set() and producer.flush(5) > 0:
                return False
            log.warning("waiting for the broker to acknowledge %d messages", len(producer))
        if delivery_errors(producer) > failed_before:
            raise Rewind("some outputs were not delivered")
        if not _retry(service.flush, service, stats, stop):
            return False
        if pending:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in pending.items()], asynchronous=False)
            pending.clear()
        last_checkpoint = time.monotonic()
        return True

    def revoked(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            checkpoint()
        except Exception as exc:  # noqa: BLE001 - the next owner redoes the uncommitted part
            log.warning("%s: checkpoint on revocation failed (%s); the new owner replays it", service.name, exc)
        pending.clear()
        service.on_revoke()

    def assigned(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s: assigned %s", service.name, ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        if on_assign:
            on_assign(partitions)

    consumer.subscribe(service.topics, on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    stopped_cleanly = False
    try:
        while not stop.is_set():
            messages = consumer.consume(batch_size, timeout=batch_wait_s)
            batch: list[Decoded] = []
            offsets: dict[tuple[str, int], int] = {}
            for message in messages:
                if message.error():
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        log.error("consume error: %s", message.error())
                    continue
                offsets[(message.topic(), message.partition())] = message.offset() + 1
                try:
                    batch.append(Decoded(message, service.decode(message)))
                except Exception as exc:  # noqa: BLE001 - any decode failure is the message's fault
                    dead_letter(producer, dlq_topic, message, exc)
                    stats.dead_lettered += 1
            try:
                try:
                    if batch and not _retry(lambda b=batch: service.process(b), service, stats, stop):
                        break  # stopped during an outage: uncommitted, the batch is redelivered
                except Rewind:
                    raise
                except Exception as exc:  # noqa: BLE001 - a valid message the sink still refuses
                    log.error("%s: batch failed (%s: %s); isolating the message that breaks it",
                              service.name, type(exc).__name__, first_line(exc))  # fmt: skip
                    if not _process_one_by_one(service, batch, producer, dlq_topic, stats, stop):
                        break
                pending.update(offsets)
                if pending and time.monotonic() - last_checkpoint >= commit_interval_s and not checkpoint():
                    break
            except Rewind as exc:
                log.warning("%s: %s; replaying from the last commit", service.name, exc)
                pending.clear()
                service.on_revoke()
                _rewind(consumer)
                continue
            if messages:
                stats.batches += 1
                stats.messages += len(messages)
                if on_batch:
                    on_batch(stats)
        else:
            stopped_cleanly = checkpoint()
    finally:
        if not stopped_cleanly:
            producer.flush(10)
        consumer.close()
    return stats


def _process_one_by_one(service: Service, batch: list[Decoded], producer: Producer, dlq_topic: str,
                        stats: LoopStats, stop: threading.Event) -> bool:  # fmt: skip
    """Process each message alone; one the sink refuses for good goes to the DLQ.

    A poison message must not stop its partition. Messages already applied before
    the failure are no-ops the second time (idempotent sinks, watermarks).
    """
    for d in batch:
        try:
            if not _retry(lambda one=d: service.process([one]), service, stats, stop):
                return False
        except Rewind:
            raise
        except Exception as exc:  # noqa: BLE001
            dead_letter(producer, dlq_topic, d.message, exc)
            stats.dead_lettered += 1
    return True


def _rewind(consumer: Consumer) -> None:
    """Seek every assigned partition back to its committed offset."""
    committed = consumer.committed(consumer.assignment(), timeout=10)
    for tp in committed:
        if tp.offset >= 0:
            consumer.seek(tp)
        else:
            consumer.seek(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))


def _retry(action: Callable[[], None], service: Service, stats: LoopStats, stop: threading.Event) -> bool:
    """Run ``action`` until it succeeds, backing off while a sink is unreachable.

    A transient failure (database restarting, endpoint throttling) must not lose the
    batch nor skip it: the loop waits here, keeping its partitions, until it passes.
    Returns False if asked to stop meanwhile (nothing was committed).
    """
    delay = 0.2
    while True:
        try:
            action()
            return True
        except Rewind:
            raise
        except Exception as exc:
            if not service.is_transient(exc):
                raise
            if stop.is_set():
                return False
            stats.retries += 1
            log.warning("%s: sink unavailable (%s: %s); retrying in %.1fs",
                        service.name, type(exc).__name__, first_line(exc), delay)  # fmt: skip
            stop.wait(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
