"""Replay a transaction file into Kafka: validate, tokenise, pace, publish, release labels."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector, redact
from producer.encode import EncodedBlock, encode_events
from producer.source import CsvSource
from producer.validate import TransNumSet, validate
from streaming.producer import delivery_errors
from streaming.producer import produce as produce_waiting

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 2.0  # a checkpoint flushes the producer: not after every block


@dataclass
class ReplayOptions:
    speed: float | None = None  # x event time; None with rate None = as fast as possible
    rate: float | None = None  # events per second
    start: datetime | None = None
    end: datetime | None = None
    limit: int | None = None
    labels: bool = True
    label_delay: timedelta = timedelta(days=7)
    resume_after_line: int = 0
    resume_labels: list = field(default_factory=list)  # labels still pending at the checkpoint
    quarantine: Path | None = None
    checkpoint: Path | None = None


@dataclass
class ReplayStats:
    accepted: int = 0
    rejected_rows: int = 0
    rejected: Counter = field(default_factory=Counter)  # per reason; a row may have several
    skipped: int = 0  # outside --start/--end/--limit or before --resume
    labels: int = 0
    delivery_errors: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    last_line: int = 0
    accepted_in_block: int = 0  # progress inside the block being sent
    bytes_read: int = 0
    total_bytes: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def rows_per_s(self) -> float:
        done = self.accepted + self.accepted_in_block + self.rejected_rows
        return done / max(time.monotonic() - self.started, 1e-9)


@dataclass(frozen=True)
class Topics:
    transactions: str
    labels: str
    dlq: str


class _Pacer:
    """Sleeps so that publishing follows event time x speed, or a fixed rate."""

    def __init__(self, speed: float | None, rate: float | None):
        self.speed, self.rate = speed, rate
        self.t0_wall: float | None = None
        self.t0_event = 0.0
        self.sent = 0

    @property
    def active(self) -> bool:
        return self.speed is not None or self.rate is not None

    def wait(self, event_s: float, stop: threading.Event) -> None:
        now = time.monotonic()
        if self.t0_wall is None:
            self.t0_wall, self.t0_event = now, event_s
        if self.speed is not None:
            due = self.t0_wall + (event_s - self.t0_event) / self.speed
        else:
            due = self.t0_wall + self.sent / self.rate  # type: ignore[operator]
        self.sent += 1
        if due - now > 0.002:
            stop.wait(due - now)


def _in_scope(batch: pa.RecordBatch, lines: list[int], options: ReplayOptions) -> pa.Array:
    """Rows inside --start/--end and after the --resume line."""
    mask = pc.greater(pa.array(lines, pa.int64()), options.resume_after_line)
    if options.start or options.end:
        # A damaged date stays in scope: validation then rejects it with its reason.
        ts = pc.strptime(batch.column("trans_date_trans_time"), format="%Y-%m-%d %H:%M:%S", unit="s",
                         error_is_null=True)  # fmt: skip
        if options.start:
            mask = pc.and_(mask, pc.fill_null(pc.greater_equal(ts, pa.scalar(options.start, pa.timestamp("s"))), True))
        if options.end:
            mask = pc.and_(mask, pc.fill_null(pc.less(ts, pa.scalar(options.end, pa.timestamp("s"))), True))
    return mask


@dataclass
class _Prepared:
    rejects: list[tuple[int | None, dict | str, list[str]]]
    skipped: int
    block: EncodedBlock | None
    bytes_read: int
    total_bytes: int | None


def _prepare_blocks(source: CsvSource, options: ReplayOptions, protector: CardProtector) -> Iterator[_Prepared]:
    """Read, scope, validate and encode block by block (runs ahead in its own thread)."""
    seen = TransNumSet()
    reported = 0
    for chunk in source.chunks():
        rejects: list[tuple[int | None, dict | str, list[str]]] = [
            (bad.line, bad.text, [bad.reason])
            for bad in source.malformed[reported:]
            if bad.line is None or bad.line > options.resume_after_line
        ]
        reported = len(source.malformed)
        scope = _in_scope(chunk.batch, chunk.lines, options)
        batch = chunk.batch.filter(scope)
        lines = [ln for ln, keep in zip(chunk.lines, scope.to_pylist(), strict=True) if keep]
        verdict = validate(batch, seen)
        if verdict.reasons:
            raw_rows = batch.to_pylist()
            rejects += [(lines[i], raw_rows[i], reasons) for i, reasons in sorted(verdict.reasons.items())]
        kept_lines = [ln for ln, ok in zip(lines, verdict.accepted.to_pylist(), strict=True) if ok]
        block = encode_events(batch.filter(verdict.accepted), kept_lines, protector)
        yield _Prepared(rejects, chunk.batch.num_rows - batch.num_rows, block, source.bytes_read, source.total_bytes)
    tail = [(bad.line, bad.text, [bad.reason]) for bad in source.malformed[reported:]]
    if tail:
        yield _Prepared(tail, 0, None, source.bytes_read, source.total_bytes)


def _prefetch(blocks: Iterator[_Prepared], depth: int = 2) -> Iterator[_Prepared]:
    """Run ``blocks`` in a thread, ``depth`` blocks ahead of the produce loop.

    Parsing, validation and encoding are mostly pyarrow kernels that release the
    GIL, so they overlap with the produce loop. (A forked process was measured
    slower: pickling the blocks cost more than the GIL.)
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    halt = threading.Event()  # the consumer has left (stopped, limit reached, error)

    def work() -> None:
        try:
            for item in blocks:
                while not halt.is_set():
                    try:
                        handoff.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                else:
                    return
            handoff.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.put(exc)

    worker = threading.Thread(target=work, name="replay-prepare", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        halt.set()
        worker.join(5)


def replay(
    source: CsvSource,
    producer,  # confluent_kafka.Producer
    topics: Topics,
    protector: CardProtector,
    options: ReplayOptions,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[ReplayStats, CsvSource], None] | None = None,
) -> ReplayStats:
    """Publish every valid row of ``source``; reject the others with a reason.

    After each block the producer is flushed and the last acknowledged line is
    checkpointed, so ``resume_after_line`` continues without resending. The
    producer should report delivery errors through ``delivery_errors`` (see
    ``Clients.producer``): a block with failed deliveries is not checkpointed.
    """
    stop = stop or threading.Event()
    stats = ReplayStats()
    pacer = _Pacer(options.speed, options.rate)
    pending_labels: deque[tuple[float, bytes, bytes]] = deque(
        (due, key.encode(), value.encode()) for due, key, value in options.resume_labels
    )
    delay_ms = options.label_delay.total_seconds() * 1000
    last_progress = last_checkpoint = time.monotonic()
    quarantine = open(options.quarantine, "a", encoding="utf-8") if options.quarantine else None
    errors_before = delivery_errors(producer)

    def produce(topic: str, key: bytes | None, value: bytes, ts: int = 0, headers=None) -> None:
        produce_waiting(producer, topic, value, key, timestamp=ts, headers=headers)

    def reject(line: int | None, raw: dict | str, reasons: list[str]) -> None:
        reason = redact("; ".join(reasons))  # a damage hint may quote the card number
        stats.rejected_rows += 1
        for r in reasons:
            stats.rejected[r.split(" (")[0]] += 1
        safe_raw = redact(raw if isinstance(raw, str) else json.dumps(raw))
        record = {"source": source.location, "line": line, "reason": reason, "raw": safe_raw}
        if quarantine:
            quarantine.write(json.dumps(record) + "\n")
        headers = [("source", source.location.encode()), ("line", str(line).encode()),
                   ("error", reason.encode()[:1000])]  # fmt: skip
        produce(topics.dlq, None, orjson.dumps(record), headers=headers)
        log.warning("rejected %s line %s: %s", source.location, line, reason)

    limit_reached = False
    send, transactions_topic = producer.produce, topics.transactions
    try:
        for prepared in _prefetch(_prepare_blocks(source, options, protector)):
            stats.bytes_read, stats.total_bytes = prepared.bytes_read, prepared.total_bytes
            for line, raw, reasons in prepared.rejects:
                reject(line, raw, reasons)
            stats.skipped += prepared.skipped
            block = prepared.block
            if block is None:
                continue
            n = len(block.events)
            keys, events, labels = block.keys, block.events, block.labels
            limit_reached = options.limit is not None and stats.accepted + n >= options.limit
            if limit_reached:
                n = options.limit - stats.accepted  # type: ignore[operator]
            for i in range(n):
                ms = block.event_ms[i]
                if pacer.active:
                    pacer.wait(ms / 1000, stop)
                    if stop.is_set():
                        n = i
                        break
                key = keys[i]
                try:  # the hot path: one C call, no wrapper
                    send(transactions_topic, events[i], key, timestamp=ms)
                except BufferError:
                    produce(transactions_topic, key, events[i], ms)
                if options.labels:
                    pending_labels.append((ms + delay_ms, key, labels[i]))
                    while pending_labels[0][0] <= ms:
                        due, label_key, value = pending_labels.popleft()
                        produce(topics.labels, label_key, value, int(due))
                        stats.labels += 1
                if i & 255 == 0:
                    producer.poll(0)
                    if on_progress and (now := time.monotonic()) - last_progress > 1.0:
                        last_progress = now
                        stats.accepted_in_block = i
                        on_progress(stats, source)
            stats.accepted += n
            stats.accepted_in_block = 0
            if n:
                stats.last_line = block.lines[n - 1]
                stats.first_event = stats.first_event or block.first_event
                stats.last_event = block.last_event
            if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY_S:
                _checkpoint(producer, stats, options, source, errors_before, pending_labels)
                last_checkpoint = time.monotonic()
            if stop.is_set() or limit_reached:
                break
        if not stop.is_set() and not limit_reached:
            # End of the file: the history is complete, every outstanding label is known.
            # (Stopped or limited, they stay pending in the checkpoint for --resume.)
            while pending_labels:
                due, key, value = pending_labels.popleft()
                produce(topics.labels, key, value, int(due))
                stats.labels += 1
    finally:
        producer.flush()
        stats.delivery_errors = delivery_errors(producer) - errors_before
        _checkpoint(producer, stats, options, source, errors_before, pending_labels)
        if quarantine:
            quarantine.close()
        if on_progress:
            on_progress(stats, source)
    return stats


def _checkpoint(producer, stats: ReplayStats, options: ReplayOptions, source: CsvSource, errors_before: int,
                pending_labels: deque) -> None:  # fmt: skip
    """Record the last line whose event the broker acknowledged (after a flush), and the
    labels not yet due: a resumed replay releases them on time instead of losing them."""
    if options.checkpoint is None or stats.last_line == 0:
        return
    if producer.flush(30) != 0 or delivery_errors(producer) > errors_before:
        log.error("not checkpointing: deliveries failed or are still pending")
        return
    labels = [[due, key.decode(), value.decode()] for due, key, value in pending_labels]
    tmp = options.checkpoint.with_suffix(".tmp")
    tmp.write_text(json.dumps({"source": source.location, "line": stats.last_line, "pending_labels": labels}))
    os.replace(tmp, options.checkpoint)


def load_history(source: CsvSource, protector: CardProtector, until: datetime | None = None):
    """Valid rows before ``until`` as a frame for batch training (tokenised, with is_fraud)."""
    import pandas as pd

    frames = []
    seen = TransNumSet()
    for chunk in source.chunks():
        good = chunk.batch.filter(validate(chunk.batch, seen).accepted)
        c = {name: good.column(name) for name in good.schema.names}
        frame = pd.DataFrame({
            "card_token": [protector.protect(p)[0] for p in c["cc_num"].to_pylist()],
            "event_time": pd.to_datetime(c["trans_date_trans_time"].to_pylist()),
            "amt": pc.cast(c["amt"], pa.float64()).to_numpy(),
            "category": c["category"].to_pylist(),
            "birth_year": pc.cast(pc.utf8_slice_codeunits(c["dob"], 0, 4), pa.int64()).to_numpy(),
            "is_fraud": pc.equal(c["is_fraud"], "1").to_numpy(zero_copy_only=False),
        })  # fmt: skip
        if until is not None:
            frame = frame[frame["event_time"] < until]
            if frame.empty:
                break  # the files are in time order
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
