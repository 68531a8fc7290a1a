"""Reading ahead: read, scope, validate and encode the source block by block, in a thread."""

from __future__ import annotations

import bisect
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector
from producer.encode import EncodedBlock, encode_events
from producer.options import ReplayOptions
from producer.order import UNTIMED
from producer.source import Chunk, LineDigest, MalformedLine
from producer.validate import TransNumSet, mask_card_numbers, validate

# (line, the row, its text, or for an over-long line its size and hash; the reasons)
Reject = tuple[int | None, dict | str | LineDigest, list[str]]
# Where a row is in the order of the replay: (sort key, line). The key is 0 for a file read in
# line order, the event time in ms (``producer.order.UNTIMED`` for none) for one read sorted.
Position = tuple[int, int]


class Source(Protocol):
    """A CSV source, in line order (``CsvSource``) or sorted (``producer.order.SortedSource``)."""

    @property
    def location(self) -> str: ...
    @property
    def malformed(self) -> list[MalformedLine]: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def total_bytes(self) -> int | None: ...
    def chunks(self, line_hasher: Any) -> Iterator[Chunk]: ...


@dataclass
class Prepared:
    """One block, ready to send: its rejects, what was out of scope, the encoded rest."""

    rejects: list[Reject]
    skipped: int
    block: EncodedBlock | None
    bytes_read: int
    total_bytes: int | None
    events_before: list[int]  # per reject: how many of the block's events come before it
    end: Position | None  # the block's last row (rejected, sent or out of scope)
    masked: int = 0  # published free-text values whose card number was masked
    sorted: bool = False  # read in (event time, line) order

    def event_position(self, i: int) -> Position:
        assert self.block is not None
        return (self.block.event_ms[i] if self.sorted else 0, self.block.lines[i])


def in_scope(batch: pa.RecordBatch, lines: list[int], options: ReplayOptions, keys: np.ndarray | None = None
             ) -> pa.Array:  # fmt: skip
    """Rows inside --start/--end and after the --resume position (line, or sort key and line)."""
    after_line = pc.greater(pa.array(lines, pa.int64()), options.resume_after_line)
    if keys is None or options.resume_after_key is None:
        mask = after_line
    else:
        key = pa.array(keys, pa.int64())
        mask = pc.or_(pc.greater(key, options.resume_after_key),
                      pc.and_(pc.equal(key, options.resume_after_key), after_line))  # fmt: skip
    if options.start or options.end:
        # A damaged date stays in scope: validation then rejects it with its reason.
        ts = pc.strptime(batch.column("trans_date_trans_time"), format="%Y-%m-%d %H:%M:%S", unit="s",
                         error_is_null=True)  # fmt: skip
        if options.start:
            mask = pc.and_(mask, pc.fill_null(pc.greater_equal(ts, pa.scalar(options.start, pa.timestamp("s"))), True))
        if options.end:
            mask = pc.and_(mask, pc.fill_null(pc.less(ts, pa.scalar(options.end, pa.timestamp("s"))), True))
    return mask


def prepare_blocks(source: Source, options: ReplayOptions, protector: CardProtector) -> Iterator[Prepared]:
    """Read, scope, validate and encode block by block, in the order ``source`` gives."""
    seen = TransNumSet()
    reported = 0
    resuming = bool(options.resume_after_line) or options.resume_after_key is not None
    resume: Position = (options.resume_after_key or 0, options.resume_after_line)
    is_sorted = False
    for chunk in source.chunks(protector.line_hasher):
        is_sorted = chunk.keys is not None
        # A malformed line has no time: read sorted, it comes first, with the rows whose time is unreadable.
        malformed_key = UNTIMED if is_sorted else 0
        malformed = [bad for bad in source.malformed[reported:]
                     if not resuming or bad.line is None or (malformed_key, bad.line) > resume]  # fmt: skip
        reported = len(source.malformed)
        scope = in_scope(chunk.batch, chunk.lines, options, chunk.keys)
        batch = chunk.batch.filter(scope)
        kept_rows = np.flatnonzero(scope.to_numpy(zero_copy_only=False))
        lines = [chunk.lines[i] for i in kept_rows]
        verdict = validate(batch, seen)
        accepted = verdict.accepted.to_numpy(zero_copy_only=False)
        kept_lines = [ln for ln, ok in zip(lines, accepted, strict=True) if ok]
        rejects: list[Reject] = [_malformed(bad) for bad in malformed]
        before = [0 if is_sorted or bad.line is None else bisect.bisect_left(kept_lines, bad.line) for bad in malformed]
        if verdict.reasons:
            raw_rows = batch.to_pylist()
            events_so_far = np.concatenate(([0], np.cumsum(accepted)))
            for i, reasons in sorted(verdict.reasons.items()):
                rejects.append((lines[i], raw_rows[i], reasons))
                before.append(int(events_so_far[i]))
        good, masked = mask_card_numbers(batch.filter(verdict.accepted))
        block = encode_events(good, kept_lines, protector)
        end = None if not chunk.lines else (int(chunk.keys[-1]) if chunk.keys is not None else 0, chunk.lines[-1])
        yield Prepared(rejects, chunk.batch.num_rows - batch.num_rows, block, source.bytes_read, source.total_bytes,
                       before, end, masked, is_sorted)  # fmt: skip
    tail = source.malformed[reported:]
    if tail:
        lines_seen = [bad.line for bad in tail if bad.line is not None]
        end = (0, max(lines_seen)) if lines_seen and not is_sorted else None
        yield Prepared([_malformed(bad) for bad in tail], 0, None, source.bytes_read, source.total_bytes,
                       [0] * len(tail), end)  # fmt: skip


def _malformed(bad: MalformedLine) -> Reject:
    return bad.line, bad.digest or bad.text, [bad.reason]


def prefetch(blocks: Iterator[Prepared], depth: int = 2) -> Iterator[Prepared]:
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
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:  # a generator: its sources close now (a sort removes its runs)
                close()

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
