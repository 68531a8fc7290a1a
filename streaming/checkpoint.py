"""The checkpoint: outputs delivered, then state durable, then offsets committed.

Offsets are committed only after everything the processed messages caused is
durable, so a crash at any point redelivers them and idempotent sinks absorb the
repeat.

With a transactional producer (exactly-once), the outputs since the last checkpoint and
the consumed offsets commit together in one Kafka transaction, after the service's state
is durable: a crash aborts the transaction, so read_committed readers never see the
outputs of a batch that is then processed again.

Without one, a service that can (``start_flush``) writes its state in the background: the
loop goes on with the next batches meanwhile and commits the offsets staged up to the
checkpoint once the writes have landed, so a checkpoint never stalls the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streaming.metrics import LoopMetrics, Staged
from streaming.producer import delivery_errors, is_transactional
from streaming.retry import Retry
from streaming.service import BackgroundFlush, Rewind, Service

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
        start_flush: Callable[[], BackgroundFlush] | None = getattr(service, "start_flush", None)
        self.start_flush = None if self.transactional else start_flush  # a transaction commits in the foreground
        self.in_flight: tuple[BackgroundFlush, dict[tuple[str, int], int], Staged] | None = None
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

    def step(self) -> bool:
        """Between batches: commit a background checkpoint that has finished, and checkpoint if
        one is due, in the background where the service can; False if asked to stop."""
        if self.in_flight is not None:
            if not self.in_flight[0].done():
                return True  # the next checkpoint starts once this one has landed
            if not self._settle():
                return self()  # it failed: again, in the foreground, waiting out an outage
        if not self.due():
            return True
        if self.start_flush is None:
            return self()
        with self.metrics.timing_checkpoint():
            if not self._flush_producer():
                return False
            try:
                started = self.start_flush()
            except Exception as exc:  # noqa: BLE001 - e.g. a store down: the foreground one waits it out
                log.warning("%s: cannot start a checkpoint in the background (%s)", self.service.name, exc)
                return self()
            self.in_flight = (started, dict(self.pending), self.metrics.take_staged())
            self.pending.clear()
            self.last = time.monotonic()
        return True

    def _settle(self) -> bool:
        """Wait for the background checkpoint, if any, and commit its offsets; False if its writes
        failed (not for a stale state: that raises :class:`Rewind`), leaving its offsets to the next."""
        if self.in_flight is None:
            return True
        flush, offsets, staged = self.in_flight
        self.in_flight = None
        try:
            flush.finish()
        except Rewind:
            raise
        except Exception as exc:  # noqa: BLE001 - what the background wrote is written again
            log.warning("%s: checkpoint in the background failed (%s); checkpointing again", self.service.name, exc)
            self.pending = {**offsets, **self.pending}
            self.metrics.restage(staged)
            return False
        if offsets:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        self.metrics.committed(staged)
        return True

    def __call__(self) -> bool:
        """Checkpoint now (after a background one, if any, has landed); False if asked to stop
        before it could finish (nothing committed).

        Producer first: outputs computed from the state are delivered before the state is
        saved, so a crash in between redelivers events that are scored from the earlier state.
        Raises :class:`Rewind` if some outputs were not delivered.
        """
        with self.metrics.timing_checkpoint():
            self._settle()  # failed: the flush below writes its states again
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
        """Forget the uncommitted offsets, a background checkpoint's too once its writes have
        ended: their messages will be consumed again."""
        if self.in_flight is not None:
            flush, self.in_flight = self.in_flight[0], None
            try:
                flush.finish()  # what it wrote stays valid: the per-card watermarks absorb the replay
            except Exception as exc:  # noqa: BLE001 - uncommitted either way
                log.warning("%s: checkpoint in the background failed (%s)", self.service.name, exc)
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
