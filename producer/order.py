"""Event-time order: find the first row out of order, and read an unsorted file sorted with bounded memory.

Many published copies of the Kaggle data are shuffled samples. The replay paces on the
event clock and releases labels by it, so such a file is read sorted by (event time,
line): an external merge sort. Runs of at most ``run_rows`` rows are sorted and spilled
to Arrow files in a private temporary directory; the merge holds one batch of each run.
The original line numbers go along, so rejects still name the line of the file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from producer.source import Chunk, CsvSource, MalformedLine
from streaming.signals import pid_alive

log = logging.getLogger(__name__)

TIME_COLUMN = "trans_date_trans_time"
UNTIMED = np.iinfo(np.int64).min  # the sort key of a row whose time cannot be read: first (validation rejects it)
RUN_ROWS = 100_000  # rows sorted in memory at a time (~30 MB of text for the Kaggle layout)
BATCH_ROWS = 4096  # rows per batch of a run: what the merge holds of each run, and the size of a merged chunk
PROGRESS_EVERY_S = 5.0


def sort_keys(times: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Event time in epoch ms per row (int64); ``UNTIMED`` where the text is not a time."""
    parsed = pc.strptime(times, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=True)
    return pc.fill_null(pc.cast(parsed, pa.int64()), UNTIMED).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class OutOfOrder:
    """The first row whose event time is earlier than one before it."""

    line: int
    time: str
    latest_before: str  # the latest event time on the lines before it

    def __str__(self) -> str:
        return f"line {self.line:,} ({self.time}) comes after {self.latest_before}"


def first_out_of_order(source: CsvSource) -> OutOfOrder | None:
    """The first row out of event-time order in ``source`` (a reading of its own), or None.

    Rows whose time cannot be read are left out: validation rejects them wherever they are.
    """
    probe = dataclasses.replace(source, malformed=[], _reader=None)
    latest = UNTIMED
    for chunk in probe.chunks(columns=(TIME_COLUMN,)):
        keys = sort_keys(chunk.batch.column(TIME_COLUMN))
        timed = np.flatnonzero(keys != UNTIMED)
        if not len(timed):
            continue
        before = np.maximum.accumulate(np.concatenate(([latest], keys[timed])))
        late = np.flatnonzero(keys[timed] < before[:-1])
        if len(late):
            row = int(timed[late[0]])
            return OutOfOrder(chunk.lines[row], chunk.batch.column(TIME_COLUMN)[row].as_py(),
                              _time_text(int(before[late[0]])))  # fmt: skip
        latest = int(before[-1])
    return None


def _time_text(ms: int) -> str:
    return str(np.datetime64(ms, "ms").astype("datetime64[s]")).replace("T", " ")


@dataclass
class SortedSource:
    """``source`` read in (event time, line) order: what :class:`CsvSource` gives, sorted.

    Each chunk carries the sort key of its rows (``Chunk.keys``). Malformed lines are all
    known once the file is spilled, so they come with the first chunk. ``stop`` ends the
    sort early (nothing is then yielded).
    """

    source: CsvSource
    spill_dir: Path | None = None  # None: the system's temporary directory
    run_rows: int = RUN_ROWS
    batch_rows: int = BATCH_ROWS
    stop: threading.Event | None = None
    runs_written: int = 0
    rows_spilled: int = 0
    rows_merged: int = 0  # handed on so far: the share of the replay done, once the file is spilled

    @property
    def location(self) -> str:
        return self.source.location

    @property
    def malformed(self) -> list[MalformedLine]:
        return self.source.malformed

    @property
    def bytes_read(self) -> int:
        """While spilling, the bytes read; then the share of the rows handed on, in bytes (for progress and ETA)."""
        total = self.source.total_bytes
        if not self.rows_merged or not total:
            return self.source.bytes_read
        return int(total * self.rows_merged / self.rows_spilled)

    @property
    def total_bytes(self) -> int | None:
        return self.source.total_bytes

    def chunks(self, line_hasher: Callable[[], Any] | None = None) -> Iterator[Chunk]:
        if self.spill_dir is not None:
            self.spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            remove_abandoned(self.spill_dir)
        # Created 0700 and removed afterwards: the runs hold the rows as the file does, card numbers included.
        with tempfile.TemporaryDirectory(prefix=f"txguard-sort-{os.getpid()}-", dir=self.spill_dir) as tmp:
            runs = self._spill(Path(tmp), line_hasher)
            if runs is not None:
                yield from self._merge(runs)

    def _spill(self, tmp: Path, line_hasher: Callable[[], Any] | None) -> list[Path] | None:
        started = last_report = time.monotonic()
        pending: list[pa.Table] = []
        held = rows = 0
        runs: list[Path] = []
        chunks = self.source.chunks(line_hasher) if line_hasher else self.source.chunks()
        for chunk in chunks:
            if self.stop is not None and self.stop.is_set():
                return None
            lines = pa.array(chunk.lines, pa.int64())
            pending.append(pa.Table.from_batches([chunk.batch]).append_column("_line", lines))
            held += chunk.batch.num_rows
            while held >= self.run_rows:
                table = pa.concat_tables(pending)
                runs.append(self._write_run(tmp, table.slice(0, self.run_rows)))
                rest = table.slice(self.run_rows)
                pending, held = [rest], rest.num_rows
            rows += chunk.batch.num_rows
            if time.monotonic() - last_report > PROGRESS_EVERY_S:
                last_report = time.monotonic()
                total = self.source.total_bytes
                share = f"{100 * self.source.bytes_read / total:.0f}% read, " if total else ""
                log.info("sorting %s: %s%s rows in %d runs", self.location, share, f"{rows:,}", len(runs))
        if held:
            runs.append(self._write_run(tmp, pa.concat_tables(pending)))
        self.rows_spilled = rows
        log.info("sorting %s: %s rows in %d runs of at most %s rows, spilled in %.1fs", self.location,
                 f"{rows:,}", len(runs), f"{self.run_rows:,}", time.monotonic() - started)  # fmt: skip
        return runs

    def _write_run(self, tmp: Path, table: pa.Table) -> Path:
        """Sort ``table`` by (event time, line) and write it in batches of ``batch_rows``."""
        table = table.append_column("_key", pa.array(sort_keys(table.column(TIME_COLUMN)), pa.int64()))
        table = table.take(pc.sort_indices(table, sort_keys=[("_key", "ascending"), ("_line", "ascending")]))
        path = tmp / f"run{self.runs_written:05d}.arrow"
        self.runs_written += 1
        options = pa.ipc.IpcWriteOptions(compression="lz4" if pa.Codec.is_available("lz4") else None)
        with pa.ipc.new_file(path, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=self.batch_rows)
        return path

    def _merge(self, paths: list[Path]) -> Iterator[Chunk]:
        """K-way merge of the runs, a batch of each at a time.

        (key, line) is unique, so the rows up to the smallest last (key, line) among the
        held batches are all the rows up to it: they are sorted and handed on.
        """
        runs = [_Run(path) for path in paths]
        try:
            live = [r for r in runs if r.load()]
            while live:
                bound = min((int(r.keys[-1]), int(r.lines[-1])) for r in live)
                pieces = [r.take_up_to(bound) for r in live]
                merged = pa.concat_tables([p for p in pieces if p.num_rows])
                merged = merged.take(pc.sort_indices(merged, sort_keys=[("_key", "ascending"), ("_line", "ascending")]))
                for at in range(0, merged.num_rows, self.batch_rows):
                    chunk = _chunk(merged.slice(at, self.batch_rows))
                    self.rows_merged += chunk.batch.num_rows
                    yield chunk
                live = [r for r in live if r.rows or r.load()]
        finally:
            for r in runs:
                r.close()


def _chunk(table: pa.Table) -> Chunk:
    table = table.combine_chunks()
    keys = table.column("_key").to_numpy()
    lines = table.column("_line").to_pylist()
    batch = table.drop_columns(["_key", "_line"]).to_batches()[0]
    return Chunk(batch, lines, keys)


class _Run:
    """One sorted run being merged: the batch held, read on as it empties."""

    def __init__(self, path: Path) -> None:
        self.file = pa.OSFile(str(path))
        self.reader = pa.ipc.open_file(self.file)
        self.next_batch = 0
        self.held: pa.Table | None = None
        self.keys = self.lines = np.empty(0, np.int64)

    @property
    def rows(self) -> int:
        return len(self.keys)

    def load(self) -> bool:
        """Hold the next batch; False when the run is done."""
        while self.next_batch < self.reader.num_record_batches:
            batch = self.reader.get_batch(self.next_batch)
            self.next_batch += 1
            if batch.num_rows:
                self.held = pa.Table.from_batches([batch])
                self.keys = batch.column("_key").to_numpy()
                self.lines = batch.column("_line").to_numpy()
                return True
        return False

    def take_up_to(self, bound: tuple[int, int]) -> pa.Table:
        """Hand over the held rows at or before ``bound`` (key, line)."""
        key, line = bound
        low, high = np.searchsorted(self.keys, key, "left"), np.searchsorted(self.keys, key, "right")
        n = int(low + np.searchsorted(self.lines[low:high], line, "right"))
        assert self.held is not None
        taken, self.held = self.held.slice(0, n), self.held.slice(n)
        self.keys, self.lines = self.keys[n:], self.lines[n:]
        return taken

    def close(self) -> None:
        self.file.close()


def remove_abandoned(spill_dir: Path) -> None:
    """Remove the sort directories of processes that are gone (killed before they could)."""
    import shutil

    for entry in spill_dir.glob("txguard-sort-*-*"):
        pid = entry.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
