"""The one consumer loop every service runs on.

poll a micro-batch -> decode (bad messages to the dead-letter topic) -> the
service's ``process`` -> at each checkpoint: flush the producer, make the service's
sinks durable, commit the offsets. Offsets are committed only after all of that
succeeded, so a crash at any point redelivers the batch and idempotent sinks absorb
the repeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from streaming.batch import BatchProcessor, take_batch
from streaming.checkpoint import Checkpoint
from streaming.rebalance import RebalanceHandler
from streaming.retry import Retry
from streaming.service import Rewind, Service
from streaming.stats import LoopStats

log = logging.getLogger(__name__)


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
    """Consume until ``stop`` is set, checkpointing every ``commit_interval_s`` (0: every batch).

    A rebalance and a shutdown checkpoint first, so the next owner starts where this
    one stopped. Once stopped, the service is closed (``service.close``).
    """
    stats = LoopStats()
    retry = Retry(service, stop, stats)
    checkpoint = Checkpoint(consumer, producer, service, retry, stop, commit_interval_s)
    batches = BatchProcessor(service, producer, dlq_topic, retry, stats)
    RebalanceHandler(service, checkpoint, on_assign).subscribe(consumer)
    stopped_cleanly = False
    try:
        while not stop.is_set():
            messages = take_batch(consumer, batch_size, batch_wait_s)
            if messages:
                checkpoint.begin()  # exactly-once: this batch's outputs (dead letters too) go in the transaction
            batch, offsets = batches.decode(messages)
            try:
                if not batches.process(batch):
                    break  # stopped during an outage: uncommitted, the batch is redelivered
                checkpoint.stage(offsets)
                if checkpoint.due() and not checkpoint():
                    break
            except Rewind as exc:
                log.warning("%s: %s; replaying from the last commit", service.name, exc)
                checkpoint.rewind()
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
            if checkpoint.in_transaction:
                try:
                    checkpoint.abort()  # uncommitted: the batch is redelivered, its outputs discarded
                except Exception as exc:  # noqa: BLE001 - the broker aborts it at the transaction timeout
                    log.warning("%s: cannot abort the open transaction (%s)", service.name, exc)
            else:
                producer.flush(10)
        consumer.close()
    service.close()
    return stats
