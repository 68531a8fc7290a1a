"""Read a Kaggle transaction CSV, local or ``s3://bucket/key``, in bounded chunks.

Every value is read as text: validation decides what it means, so a spreadsheet's
``2.29E+15`` is rejected instead of being silently turned into a number.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import pyarrow as pa
import pyarrow.csv as pacsv

from schemas.source import INDEX_COLUMN_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

BLOCK_BYTES = 1 << 20


class SourceError(Exception):
    """The input cannot be read at all (missing, wrong columns): nothing was sent."""


@dataclass
class MalformedLine:
    line: int | None
    text: str
    reason: str


@dataclass
class Chunk:
    """A block of rows as text columns, and the file line number of each row."""

    batch: pa.RecordBatch
    lines: list[int]


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


@dataclass
class CsvSource:
    """A transaction CSV and how far it has been read."""

    location: str
    s3_client: object | None = None
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
            return _check_columns(_read_header(io.BufferedReader(cast(io.RawIOBase, raw))), self.location)
        finally:
            raw.close()

    def chunks(self) -> Iterator[Chunk]:
        """Yield blocks of rows; rows with the wrong number of fields go to ``malformed``."""
        self._reader = _CountingReader(self._open())
        stream = io.BufferedReader(self._reader, buffer_size=1 << 20)
        header = _read_header(stream)
        names = _check_columns(header, self.location)

        def on_invalid(row: pacsv.InvalidRow) -> str:
            # pyarrow counts the rows it sees from 1; the header was read off before it.
            line = row.number + 1 if row.number is not None and row.number >= 0 else None
            self.malformed.append(
                MalformedLine(line, row.text, f"expected {row.expected_columns} fields, got {row.actual_columns}")
            )
            return "skip"

        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                include_columns=[n for n in names if n != "_index"],
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


def _read_header(stream: BinaryIO) -> list[str]:
    first = stream.readline()
    if not first:
        raise SourceError("the file is empty")
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
