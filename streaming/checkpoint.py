"""The checkpoint: outputs delivered, then state durable, then offsets committed.

Offsets are committed only after everything the processed messages caused is
durable, so a crash at any point redelivers them and idempotent sinks absorb the
repeat.

With a transactional producer (exactly-once), the outputs since the last checkpoint and
the consumed offsets commit together in one Kafka transaction, after the service's state
is durable: a crash aborts the transaction, so read_committed readers never see the
outputs of a batch that is then processed again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streaming.metrics import LoopMetrics
from streaming.producer import delivery_errors, is_transactional
from streaming.retry import Retry
from streaming.service import Rewind, Service

log = logging.getLogger(__name__)


class Checkpoint:
    """The offsets processed since the last commit, and how to commit them safely.

    ``interval_s`` spaces the checkpoints: in between, a service may keep its effects
    in memory (the scorer's card states). 0 checkpoints after every micro-batch.
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        service: Service,
        retry: Retry,
        stop: threading.Event,
        interval_s: float = 0.0,
        metrics: LoopMetrics | None = None,
    ):
        self.consumer, self.producer, self.service = consumer, producer, service
        self.retry, self.stop, self.interval_s = retry, stop, interval_s
        self.metrics = metrics or LoopMetrics(service.name)  # counts what each commit made final
        self.pending: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset; processed, not committed
        self.last = time.monotonic()
        self.transactional = is_transactional(producer)
        self.in_transaction = False
        if self.transactional:
            producer.init_transactions(60)  # fences an earlier process with the same transactional.id

    def begin(self) -> None:
        """Before producing anything of a batch: open a transaction if none is (transactional only)."""
        if self.transactional and not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True

    def stage(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Record messages as processed: the next checkpoint commits them."""
        self.pending.update(offsets)

    def due(self) -> bool:
        # An open transaction is due too, even with no offsets: the broker aborts one left open too long.
        return (bool(self.pending) or self.in_transaction) and time.monotonic() - self.last >= self.interval_s

    def __call__(self) -> bool:
        """Checkpoint now; False if asked to stop before it could finish (nothing committed).

        Producer first: outputs computed from the state are delivered before the state is
        saved, so a crash in between redelivers events that are scored from the earlier state.
        Raises :class:`Rewind` if some outputs were not delivered.
        """
        with self.metrics.timing_checkpoint():
            return self._checkpoint()

    def _checkpoint(self) -> bool:
        if not self._flush_producer():
            return False
        if not self.retry(self.service.flush):
            return False
        offsets = [TopicPartition(t, p, o) for (t, p), o in self.pending.items()]
        if self.in_transaction:
            self._commit_transaction(offsets)
        elif offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        self.pending.clear()
        self.metrics.committed()
        self.last = time.monotonic()
        return True

    def _commit_transaction(self, offsets: list[TopicPartition]) -> None:
        try:
            if offsets:
                self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), 60)
            self.producer.commit_transaction(60)
        except KafkaException as exc:
            if exc.args[0].txn_requires_abort():
                self.abort()
                raise Rewind(f"transaction aborted ({exc.args[0].str()})") from exc
            raise  # fatal (fenced by a newer instance): the process stops, Kafka redelivers
        self.in_transaction = False

    def abort(self) -> None:
        """Abort the open transaction, if any: its outputs are never seen by read_committed readers."""
        if self.in_transaction:
            self.in_transaction = False
            self.producer.abort_transaction(30)

    def _flush_producer(self) -> bool:
        failed_before = delivery_errors(self.producer)
        while self.producer.flush(1) > 0:
            if self.stop.is_set() and self.producer.flush(5) > 0:
                return False
            log.warning("waiting for the broker to acknowledge %d messages", len(self.producer))
        if delivery_errors(self.producer) > failed_before:
            raise Rewind("some outputs were not delivered")
        return True

    def discard(self) -> None:
        """Forget the uncommitted offsets: their messages will be consumed again."""
        self.pending.clear()
        self.metrics.discarded()

    def rewind(self) -> None:
        """Start over from the last commit with fresh state: seek every assigned
        partition back to its committed offset."""
        self.discard()
        self.abort()
        self.service.on_revoke()
        committed = self.consumer.committed(self.consumer.assignment(), timeout=10)
        for tp in committed:
            if tp.offset >= 0:
                self.consumer.seek(tp)
            else:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))
