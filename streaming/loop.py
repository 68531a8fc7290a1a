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
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from streaming.batch import BatchProcessor, take_batch
from streaming.checkpoint import Checkpoint
from streaming.metrics import LoopMetrics
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
    metrics: LoopMetrics | None = None,
) -> LoopStats:
    """Consume until ``stop`` is set, checkpointing every ``commit_interval_s`` (0: every batch).

    A rebalance and a shutdown checkpoint first, so the next owner starts where this
    one stopped. Once stopped, the service is closed (``service.close``). ``metrics``:
    where the loop's counts and health go (default: the service's own, not served).
    """
    stats = LoopStats()
    metrics = metrics or LoopMetrics(service.name)
    metrics.start(service.topics)
    retry = Retry(service, stop, stats, metrics)
    checkpoint = Checkpoint(consumer, producer, service, retry, stop, commit_interval_s, metrics)
    batches = BatchProcessor(service, producer, dlq_topic, retry, stats, metrics)
    RebalanceHandler(service, checkpoint, on_assign).subscribe(consumer)
    stopped_cleanly = False
    try:
        while not stop.is_set():
            messages = take_batch(consumer, batch_size, batch_wait_s)
            metrics.observe(consumer)
            started = time.perf_counter()
            if messages:
                checkpoint.begin()  # exactly-once: this batch's outputs (dead letters too) go in the transaction
            batch, offsets = batches.decode(messages)
            try:
                if not batches.process(batch):
                    break  # stopped during an outage: uncommitted, the batch is redelivered
                checkpoint.stage(offsets)
                metrics.processed(messages, time.perf_counter() - started)
                if not checkpoint.step():
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
        metrics.stop()
    service.close()
    return stats
