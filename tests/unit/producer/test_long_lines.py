"""Lines longer than the limit: rejected by line number, size and hash, never read whole."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import orjson
import pytest

from producer.cards import CardProtector
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource, SourceError
from schemas.events import DeadLetter
from tests.unit.producer.test_replay import RecordingProducer

PROTECTOR = CardProtector(b"unit-test-key-0123456789")
TOPICS = Topics("transactions", "labels", "dlq")


def with_long_lines(kaggle_csv: Path, tmp_path: Path, long: dict[int, bytes], end: bytes | None = None) -> Path:
    """The fixture with the lines numbered in ``long`` (1-based) replaced, and ``end``
    appended as a last line without a newline."""
    lines = kaggle_csv.read_bytes().splitlines()
    for n, text in long.items():
        lines[n - 1] = text
    path = tmp_path / "long.csv"
    path.write_bytes(b"\n".join(lines) + b"\n" + (end or b""))
    return path


def non_ascii_row(kaggle_csv: Path, size: int) -> bytes:
    """A well-formed row whose merchant is ``size`` bytes of non-ASCII text."""
    row = kaggle_csv.read_bytes().splitlines()[5].split(b",")
    row[3] = ("ü€" * (size // 5)).encode()
    return b",".join(row)


@pytest.mark.parametrize("block_bytes", [1 << 20, 4096])
def test_over_long_lines_are_rejected_by_line_with_size_and_hash(tmp_path, kaggle_csv, monkeypatch, block_bytes):
    import producer.source

    monkeypatch.setattr(producer.source, "BLOCK_BYTES", block_bytes)
    wide = non_ascii_row(kaggle_csv, 400_000)
    endless = b"x" * 5_000_000
    path = with_long_lines(kaggle_csv, tmp_path, {10: wide, 300: b"y" * 70_000}, end=endless)
    source = CsvSource(str(path))
    numbered = {}
    for chunk in source.chunks():
        numbered |= dict(zip(chunk.lines, chunk.batch.column("trans_num").to_pylist(), strict=True))
    expected = {10: wide, 300: b"y" * 70_000, 602: endless}
    assert [(m.line, m.digest.size, m.digest.fingerprint) for m in source.malformed if m.digest] == [
        (n, len(text), hashlib.sha256(text).hexdigest()) for n, text in expected.items()
    ]
    assert [m.reason for m in source.malformed] == [
        f"line too long ({len(text):,} bytes; the limit is 65,536)" for text in expected.values()
    ]
    assert sorted(numbered) == [n for n in range(2, 602) if n not in expected]  # the others keep their numbers
    lines = kaggle_csv.read_text().splitlines()
    assert all(numbered[n] in lines[n - 1] for n in numbered)


def test_a_line_of_any_length_is_never_held_whole(tmp_path, kaggle_csv):
    path = with_long_lines(kaggle_csv, tmp_path, {}, end=b"z" * 50_000_000)
    source = CsvSource(str(path))
    tracemalloc.start()
    try:
        rows = sum(chunk.batch.num_rows for chunk in source.chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 600 and [m.line for m in source.malformed] == [602]
    assert peak < 8_000_000  # a few read blocks, not the 50 MB line


def test_the_limit_is_a_setting(tmp_path, kaggle_csv):
    path = with_long_lines(kaggle_csv, tmp_path, {20: b"y" * 2000})
    for limit, reason in (
        (1024, "line too long (2,000 bytes; the limit is 1,024)"),
        (4096, "expected 24 fields, got 1"),
    ):
        source = CsvSource(str(path), max_line_bytes=limit)
        assert sum(chunk.batch.num_rows for chunk in source.chunks()) == 599
        assert [(m.line, m.reason) for m in source.malformed] == [(20, reason)]


def test_an_over_long_header_is_refused_before_reading_on(tmp_path):
    path = tmp_path / "header.csv"
    path.write_bytes(b"a" * 1_000_000)
    with pytest.raises(SourceError, match="line 1 is longer than 65,536 bytes"):
        CsvSource(str(path)).check_header()
    with pytest.raises(SourceError, match="line 1 is longer than"):
        next(CsvSource(str(path)).chunks())


def test_the_replay_quarantines_over_long_rows_by_size_and_keyed_hash_and_goes_on(tmp_path, kaggle_csv):
    wide, endless = non_ascii_row(kaggle_csv, 400_000), b"\xff" * 5_000_000
    path = with_long_lines(kaggle_csv, tmp_path, {10: wide}, end=endless)
    producer = RecordingProducer()
    stats = replay(CsvSource(str(path)), producer, TOPICS, PROTECTOR,
                   ReplayOptions(labels=False, quarantine=tmp_path / "q.jsonl"))  # fmt: skip
    assert (stats.accepted, stats.rejected_rows, dict(stats.rejected)) == (599, 2, {"line too long": 2})
    # Keyed like any unparsable line: the line holds a card number, a plain hash could be reversed.
    expected = [(10, {"bytes": len(wide), "hmac_sha256": PROTECTOR.fingerprint(wide)}),
                (602, {"bytes": 5_000_000, "hmac_sha256": PROTECTOR.fingerprint(endless)})]  # fmt: skip
    quarantined = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(q["line"], q["unparsed"]) for q in quarantined] == expected
    assert all(q["reason"].startswith("line too long (") and "row" not in q for q in quarantined)
    dead = producer.on("dlq")
    assert [orjson.loads(value) for _, _, value, _, _ in dead] == quarantined
    assert [DeadLetter.from_headers(headers).line for *_, headers in dead] == [10, 602]
