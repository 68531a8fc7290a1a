"""Reading ahead: read, scope, validate and encode the source block by block, in a thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector
from producer.encode import EncodedBlock, encode_events
from producer.options import ReplayOptions
from producer.source import CsvSource, LineDigest, MalformedLine
from producer.validate import TransNumSet, validate

# (line, the row, its text, or for an over-long line its size and hash; the reasons)
Reject = tuple[int | None, dict | str | LineDigest, list[str]]


@dataclass
class Prepared:
    """One block, ready to send: its rejects, what was out of scope, the encoded rest."""

    rejects: list[Reject]
    skipped: int
    block: EncodedBlock | None
    bytes_read: int
    total_bytes: int | None


def in_scope(batch: pa.RecordBatch, lines: list[int], options: ReplayOptions) -> pa.Array:
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


def prepare_blocks(source: CsvSource, options: ReplayOptions, protector: CardProtector) -> Iterator[Prepared]:
    """Read, scope, validate and encode block by block."""
    seen = TransNumSet()
    reported = 0
    for chunk in source.chunks(line_hasher=protector.line_hasher):
        rejects: list[Reject] = [
            _malformed(bad) for bad in source.malformed[reported:]
            if bad.line is None or bad.line > options.resume_after_line
        ]  # fmt: skip
        reported = len(source.malformed)
        scope = in_scope(chunk.batch, chunk.lines, options)
        batch = chunk.batch.filter(scope)
        lines = [ln for ln, keep in zip(chunk.lines, scope.to_pylist(), strict=True) if keep]
        verdict = validate(batch, seen)
        if verdict.reasons:
            raw_rows = batch.to_pylist()
            rejects += [(lines[i], raw_rows[i], reasons) for i, reasons in sorted(verdict.reasons.items())]
        kept_lines = [ln for ln, ok in zip(lines, verdict.accepted.to_pylist(), strict=True) if ok]
        block = encode_events(batch.filter(verdict.accepted), kept_lines, protector)
        yield Prepared(rejects, chunk.batch.num_rows - batch.num_rows, block, source.bytes_read, source.total_bytes)
    tail: list[Reject] = [_malformed(bad) for bad in source.malformed[reported:]]
    if tail:
        yield Prepared(tail, 0, None, source.bytes_read, source.total_bytes)


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
