"""Replay a transaction file into Kafka: validate, tokenise, pace, publish, release labels.

The pieces: ``blocks`` reads, validates and encodes ahead in a thread; this module
sends (the hot path), paces, hands rejects to ``rejects``, labels to ``labels`` and
records progress in ``checkpoint``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from producer.blocks import Position, Prepared, Source, prefetch, prepare_blocks
from producer.cards import CardProtector
from producer.checkpoint import ReplayCheckpoint
from producer.encode import EncodedBlock
from producer.labels import LabelScheduler, PendingLabel
from producer.options import ReplayOptions
from producer.order import SortedSource, first_out_of_order
from producer.pacing import Pacer
from producer.progress import ReplayStats
from producer.rejects import Rejects
from producer.source import CsvSource, SourceError
from schemas.topics import SENT_AT_HEADER
from streaming.producer import delivery_errors, produce

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 2.0  # a checkpoint flushes the producer: not after every block
PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True)
class Topics:
    transactions: str
    labels: str
    dlq: str


ProgressCallback = Callable[[ReplayStats, Source], None]


def replay(
    source: CsvSource,
    producer: Any,  # confluent_kafka.Producer
    topics: Topics,
    protector: CardProtector,
    options: ReplayOptions,
    *,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> ReplayStats:
    """Publish every valid row of ``source``; reject the others with a reason.

    After each block the producer is flushed and the last acknowledged line is
    checkpointed, so ``resume_after_line`` continues without resending. The
    producer should report delivery errors through ``delivery_errors`` (see
    ``streaming.producer.ReportingProducer``): a block with failed deliveries is
    not checkpointed.

    A file not in event-time order is replayed sorted by (event time, line)
    (:class:`producer.order.SortedSource`); its checkpoint then holds the event time
    of the last row handled besides its line.
    """
    stop = stop or threading.Event()
    stream: Source = source
    late = first_out_of_order(source)
    if late is not None:
        if options.resume_after_line and options.resume_after_key is None:
            raise SourceError(
                f"{source.location} is not in event-time order ({late}) but the checkpoint was "
                "written replaying it in line order: the file changed; replay without --resume"
            )
        log.info("%s is not in event-time order (%s): replaying it sorted by event time", source.location, late)
        stream = SortedSource(source, options.spill_dir, options.sort_run_rows, stop=stop)
    elif options.resume_after_key is not None:
        raise SourceError(f"{source.location} is in event-time order but the checkpoint was written replaying it "
                          "sorted: the file changed; replay it without --resume")  # fmt: skip
    run = _Replay(stream, producer, topics, protector, options, stop, on_progress)
    try:
        for prepared in prefetch(prepare_blocks(stream, options, protector)):
            if not run.take(prepared):
                break
        if not run.stop.is_set() and not run.limit_reached:
            # End of the file: the history is complete, every outstanding label is known.
            # (Stopped or limited, they stay pending in the checkpoint for --resume.)
            run.send_labels(run.labels.release_all())
    finally:
        run.close()
    return run.stats


class _Replay:
    """The state of one replay: what was sent, what is pending, when to checkpoint."""

    def __init__(self, source: Source, producer: Any, topics: Topics, protector: CardProtector,
                 options: ReplayOptions, stop: threading.Event, on_progress: ProgressCallback | None):  # fmt: skip
        self.source, self.producer, self.topics, self.options = source, producer, topics, options
        self.stop, self.on_progress = stop, on_progress
        self.stats = ReplayStats()
        self.pacer = Pacer(options.speed, options.rate)
        self.labels = LabelScheduler.from_json(options.label_delay, options.resume_labels)
        self.rejects = Rejects(producer, topics.dlq, source.location, options.quarantine, self.stats, protector)
        self.errors_before = delivery_errors(producer)
        self.last_progress = self.last_checkpoint = time.monotonic()
        self.limit_reached = False
        self.sorted_order = isinstance(source, SortedSource)
        self.position: Position | None = None  # the last row handled: sent, rejected or out of scope

    def take(self, prepared: Prepared) -> bool:
        """Send, reject and account for one block; False when the replay should end.

        Cut short (the limit, a stop), only the rejects before the last event sent are
        reported: the checkpoint is that event, so a resume reports the others, once.
        """
        stats = self.stats
        stats.bytes_read, stats.total_bytes = prepared.bytes_read, prepared.total_bytes
        stats.skipped += prepared.skipped
        stats.masked_text += prepared.masked
        block = prepared.block
        n = self.send_block(block) if block is not None else 0
        cut = block is not None and (n < len(block.events) or self.limit_reached)
        for (line, raw, reasons), before in zip(prepared.rejects, prepared.events_before, strict=True):
            if not cut or before < n:
                self.rejects.reject(line, raw, reasons)
        stats.accepted += n
        stats.accepted_in_block = 0
        if cut:
            if n:
                self.position = prepared.event_position(n - 1)
        elif prepared.end is not None:
            self.position = prepared.end
        if self.position is not None:
            stats.last_line = self.position[1]
        if block is not None and n:
            stats.first_event = stats.first_event or block.first_event
            stats.last_event = block.last_event
        if time.monotonic() - self.last_checkpoint > CHECKPOINT_EVERY_S:
            self.checkpoint()
            self.last_checkpoint = time.monotonic()
        return not (self.stop.is_set() or self.limit_reached)

    def send_block(self, block: EncodedBlock) -> int:
        """Send the block's events in order (paced, up to the limit); return how many were sent."""
        n = len(block.events)
        limit = self.options.limit
        self.limit_reached = limit is not None and self.stats.accepted + n >= limit
        if limit is not None and self.limit_reached:
            n = limit - self.stats.accepted
        producer, stop, pacer, stats = self.producer, self.stop, self.pacer, self.stats
        send, topic, labels_topic = producer.produce, self.topics.transactions, self.topics.labels
        keys, events, labels, event_ms = block.keys, block.events, block.labels, block.event_ms
        schedule, labels_on = self.labels.add, self.options.labels
        paced = pacer.active
        time_ns = time.time_ns
        for i in range(n):
            ms = event_ms[i]
            if paced:
                pacer.wait(ms / 1000, stop)
                if stop.is_set():
                    return i
            key = keys[i]
            sent_at = [(SENT_AT_HEADER, b"%d" % time_ns())]
            try:  # the hot path: one C call, no wrapper
                send(topic, events[i], key, timestamp=ms, headers=sent_at)
            except BufferError:
                produce(producer, topic, events[i], key, timestamp=ms, headers=sent_at)
            if labels_on:  # send_labels, inlined: a call per event costs on the hot path
                for due_ms, label_key, label in schedule(ms, key, labels[i]):
                    produce(producer, labels_topic, label, label_key, timestamp=int(due_ms))
                    stats.labels += 1
            if i & 255 == 0:
                producer.poll(0)
                self.report_progress(i)
        return n

    def send_labels(self, due: Iterable[PendingLabel]) -> None:
        for due_ms, key, value in due:
            produce(self.producer, self.topics.labels, value, key, timestamp=int(due_ms))
            self.stats.labels += 1

    def report_progress(self, accepted_in_block: int) -> None:
        if self.on_progress and (now := time.monotonic()) - self.last_progress > PROGRESS_EVERY_S:
            self.last_progress = now
            self.stats.accepted_in_block = accepted_in_block
            self.on_progress(self.stats, self.source)

    def checkpoint(self) -> None:
        """Record the last line whose event the broker acknowledged (after a flush), and the
        labels not yet due: a resumed replay releases them on time instead of losing them."""
        if self.options.checkpoint is None or self.position is None:
            return
        if self.producer.flush(30) != 0 or delivery_errors(self.producer) > self.errors_before:
            log.error("not checkpointing: deliveries failed or are still pending")
            return
        key = self.position[0] if self.sorted_order and self.position is not None else None
        saved = ReplayCheckpoint(self.source.location, self.stats.last_line, self.labels.to_json(), key)
        saved.save(self.options.checkpoint)

    def close(self) -> None:
        """Flush, count failed deliveries, checkpoint, report: also after an error or a stop."""
        self.producer.flush()
        self.stats.delivery_errors = delivery_errors(self.producer) - self.errors_before
        self.checkpoint()
        self.rejects.close()
        if self.on_progress:
            self.on_progress(self.stats, self.source)
