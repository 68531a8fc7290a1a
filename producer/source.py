"""Read a Kaggle transaction CSV, local or ``s3://bucket/key``, in bounded chunks.

Every value is read as text: validation decides what it means, so a spreadsheet's
``2.29E+15`` is rejected instead of being silently turned into a number. A line longer
than ``max_line_bytes`` is never held whole: it is rejected by its line number, size
and hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from schemas.source import INDEX_COLUMN_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 * 1024  # the default bound on a line (settings: max_line_bytes)


class SourceError(Exception):
    """The input cannot be read at all (missing, wrong columns): nothing was sent."""


@dataclass(frozen=True)
class LineDigest:
    """A line too long to read: its size in bytes (without the newline) and hash stand for it."""

    size: int
    fingerprint: str  # hex digest by the hasher given to CsvSource.chunks (the replay: keyed)


@dataclass
class MalformedLine:
    line: int | None
    text: str
    reason: str
    digest: LineDigest | None = None  # an over-long line: its text was not kept


@dataclass
class Chunk:
    """A block of rows as text columns, and the file line number of each row."""

    batch: pa.RecordBatch
    lines: list[int]
    keys: np.ndarray | None = None  # read sorted (``producer.order``): each row's sort key, its event time in ms


class _CountingReader(io.RawIOBase):
    """Wraps a byte stream to count what has been read, for progress and ETA."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.bytes_read += n
        return n


class _LineGuard(io.RawIOBase):
    """Hands a byte stream on with every line longer than ``limit`` bytes replaced by
    ``marker`` (a one-field line the CSV reader rejects, in the line's place) and its size
    and hash appended to ``oversized``, in order.

    At most ``limit`` bytes of a line are held at a time: a line of any length, with or
    without a newline, is hashed as it streams past and costs no more memory.
    """

    def __init__(self, raw: BinaryIO, limit: int, marker: bytes, hasher: Callable[[], Any]):
        self.raw, self.limit, self.marker, self.hasher = raw, limit, marker + b"\n", hasher
        self.oversized: deque[LineDigest] = deque()
        self._ready = b""  # whole lines, to hand on
        self._partial = b""  # the start of the current line: at most ``limit`` bytes
        self._skipping: Any = None  # the hash of the over-long line being passed over
        self._skipped = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while not self._ready and not self._eof:
            self._fill()
        if size is None or size < 0 or size >= len(self._ready):
            out, self._ready = self._ready, b""
        else:
            out, self._ready = self._ready[:size], self._ready[size:]
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _fill(self) -> None:
        data = self.raw.read(BLOCK_BYTES)
        view = memoryview(data)
        out: list[bytes | memoryview] = []
        start = 0
        if not data:
            self._eof = True
            if self._skipping is not None:
                self._end_skipped_line(out)
            out.append(self._partial)
            self._partial = b""
        elif self._skipping is not None:
            start = data.find(b"\n") + 1
            self._skipping.update(view[: start - 1] if start else view)
            self._skipped += start - 1 if start else len(data)
            if start:
                self._end_skipped_line(out)
        if start or (data and self._skipping is None):
            self._split(data, view, start, out)
        self._ready += b"".join(out)

    def _split(self, data: bytes, view: memoryview, start: int, out: list[bytes | memoryview]) -> None:
        """Hand on the lines of the current one (``_partial``) and ``data[start:]`` that end in ``data``."""
        end = data.find(b"\n", start)
        if end < 0:  # the current line goes on
            self._extend(view[start:])
            return
        self._extend(view[start:end])  # the current line ends at ``end``
        if self._skipping is not None:
            self._end_skipped_line(out)
        else:
            out += [self._partial, b"\n"]
        self._partial = b""
        start = end + 1
        last = data.rfind(b"\n", start)
        if last >= 0:  # whole lines in data[start:last + 1]
            for long_start, long_end in self._long_lines(data, start, last + 1):
                out.append(view[start:long_start])
                hasher = self.hasher()
                hasher.update(view[long_start:long_end])
                self.oversized.append(LineDigest(long_end - long_start, hasher.hexdigest()))
                out.append(self.marker)
                start = long_end + 1
            out.append(view[start : last + 1])
            start = last + 1
        self._extend(view[start:])

    def _extend(self, piece: memoryview) -> None:
        """Add ``piece`` to the current line: held while short, hashed once too long."""
        if self._skipping is None and len(self._partial) + len(piece) <= self.limit:
            self._partial += piece
            return
        if self._skipping is None:
            self._skipping, self._skipped = self.hasher(), len(self._partial)
            self._skipping.update(self._partial)
            self._partial = b""
        self._skipping.update(piece)
        self._skipped += len(piece)

    def _long_lines(self, data: bytes, start: int, stop: int) -> list[tuple[int, int]]:
        """(start, end) of each line longer than ``limit`` in ``data[start:stop]`` (whole lines)."""
        # Cheap test first: a line longer than ``limit`` spans a whole stretch of
        # ``limit // 2 + 1`` bytes, so if each stretch holds a newline, none is.
        width = self.limit // 2 + 1
        if all(data.find(b"\n", at, at + width) >= 0 for at in range(start, stop - width + 1, width)):
            return []
        ends = np.flatnonzero(np.frombuffer(data, np.uint8, stop - start, start) == ord("\n")) + start
        starts = np.concatenate(([start], ends[:-1] + 1))
        return [(int(starts[i]), int(ends[i])) for i in np.flatnonzero(ends - starts > self.limit)]

    def _end_skipped_line(self, out: list[bytes | memoryview]) -> None:
        self.oversized.append(LineDigest(self._skipped, self._skipping.hexdigest()))
        out.append(self.marker)
        self._skipping, self._skipped = None, 0


@dataclass
class CsvSource:
    """A transaction CSV and how far it has been read."""

    location: str
    s3_client: object | None = None
    max_line_bytes: int = MAX_LINE_BYTES
    malformed: list[MalformedLine] = field(default_factory=list)
    total_bytes: int | None = None
    _reader: _CountingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes_read if self._reader else 0

    def _open(self) -> BinaryIO:
        if self.location.startswith("s3://"):
            bucket, _, key = self.location[5:].partition("/")
            if self.s3_client is None:
                raise SourceError("an s3:// path needs an S3 client (settings: TXGUARD_S3_ENDPOINT)")
            try:
                obj = self.s3_client.get_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
            except Exception as exc:  # botocore raises per-service classes
                raise SourceError(f"cannot read {self.location}: {exc}") from exc
            self.total_bytes = int(obj["ContentLength"])
            return obj["Body"]
        path = Path(self.location)
        if not path.is_file():
            raise SourceError(f"no such file: {self.location}")
        self.total_bytes = os.path.getsize(path)
        return open(path, "rb")

    def check_header(self) -> list[str]:
        """Fail now, before anything is sent, if the file is missing or has the wrong columns."""
        raw = self._open()
        try:
            # A file or an S3 body: both read like a raw stream.
            stream = io.BufferedReader(cast(io.RawIOBase, raw))
            return _check_columns(_read_header(stream, self.max_line_bytes), self.location)
        finally:
            raw.close()

    def chunks(
        self, line_hasher: Callable[[], Any] = hashlib.sha256, columns: tuple[str, ...] | None = None
    ) -> Iterator[Chunk]:
        """Yield blocks of rows (of ``columns`` only, if given); rows with the wrong number of
        fields, and lines longer than ``max_line_bytes``, go to ``malformed`` (those with their
        size and their hash by ``line_hasher``: the replay's is keyed, as a line may hold a card number)."""
        self._reader = _CountingReader(self._open())
        stream = io.BufferedReader(self._reader, buffer_size=1 << 20)
        header = _read_header(stream, self.max_line_bytes)
        names = _check_columns(header, self.location)
        # Stands for an over-long line in what the CSV reader sees; random, so no real line matches.
        marker = f"txguard-line-too-long-{secrets.token_hex(8)}"
        guard = _LineGuard(cast(BinaryIO, stream), self.max_line_bytes, marker.encode(), line_hasher)

        def on_invalid(row: pacsv.InvalidRow) -> str:
            # pyarrow counts the rows it sees from 1; the header was read off before it.
            line = row.number + 1 if row.number is not None and row.number >= 0 else None
            if row.text == marker and guard.oversized:  # markers come in the order of their lines
                digest = guard.oversized.popleft()
                reason = f"line too long ({digest.size:,} bytes; the limit is {self.max_line_bytes:,})"
                self.malformed.append(MalformedLine(line, "", reason, digest))
                return "skip"
            self.malformed.append(
                MalformedLine(line, row.text, f"expected {row.expected_columns} fields, got {row.actual_columns}")
            )
            return "skip"

        reader = pacsv.open_csv(
            guard,
            # A block holds whole lines: pyarrow fails on a row longer than a block.
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=max(BLOCK_BYTES, 2 * self.max_line_bytes), use_threads=False
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                include_columns=[n for n in names if n != "_index" and (columns is None or n in columns)],
            ),
        )
        next_line = 2  # line 1 is the header
        seen_malformed = 0
        bad_lines: set[int] = set()  # malformed lines not yet passed
        try:
            for batch in reader:
                bad_lines.update(m.line for m in self.malformed[seen_malformed:] if m.line is not None)
                seen_malformed = len(self.malformed)
                if bad_lines:
                    lines: list[int] = []
                    while len(lines) < batch.num_rows:
                        if next_line in bad_lines:
                            bad_lines.discard(next_line)
                        else:
                            lines.append(next_line)
                        next_line += 1
                else:
                    lines = list(range(next_line, next_line + batch.num_rows))
                    next_line += batch.num_rows
                yield Chunk(batch, lines)
        finally:
            stream.close()


def _read_header(stream: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> list[str]:
    first = stream.readline(max_line_bytes + 1)
    if not first:
        raise SourceError("the file is empty")
    if len(first) > max_line_bytes and not first.endswith(b"\n"):
        raise SourceError(f"line 1 is longer than {max_line_bytes:,} bytes: not a header of a transaction file")
    return next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]))


def _check_columns(header: list[str], location: str) -> list[str]:
    """Name the columns (the unnamed index column becomes ``_index``) or fail at once."""
    names = ["_index" if i == 0 and h in INDEX_COLUMN_NAMES else h for i, h in enumerate(header)]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    unknown = [c for c in names if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS + ("_index",)]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        raise SourceError(f"{location} is not a Kaggle transaction file ({'; '.join(parts)})")
    return names
