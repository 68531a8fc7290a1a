"""Event-time order: detection, the external merge sort, and a replay of a shuffled file."""

from __future__ import annotations

import csv
import json
import random
import stat
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.cards import CardProtector
from producer.history import load_history
from producer.order import UNTIMED, SortedSource, first_out_of_order, sort_keys
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource, SourceError
from tests.conftest import FIXTURES
from tests.unit.producer.test_replay import RecordingProducer
from txguard.demo import time_range

PROTECTOR = CardProtector(b"unit-test-key-0123456789")
TOPICS = Topics("transactions", "labels", "dlq")


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(path.open(newline="")))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture
def shuffled(kaggle_csv: Path, tmp_path: Path) -> Path:
    """The 600 real rows shuffled (a fixed seed), header first."""
    header, rows = read_rows(kaggle_csv)
    random.Random(11).shuffle(rows)
    return write_rows(tmp_path / "shuffled.csv", header, rows)


def test_sort_keys_are_event_time_in_ms_and_untimed_first():
    keys = sort_keys(pa.array(["2019-01-01 00:00:01", "1/1/2019 0:00", "", "2019-01-01 00:00:00"]))
    assert keys.tolist() == [1546300801000, UNTIMED, UNTIMED, 1546300800000]


def test_a_file_in_order_is_found_in_order_and_a_shuffled_one_names_its_first_late_line(kaggle_csv, shuffled):
    assert first_out_of_order(CsvSource(str(kaggle_csv))) is None
    late = first_out_of_order(CsvSource(str(shuffled)))
    assert late is not None
    header, rows = read_rows(shuffled)
    times = [r[header.index("trans_date_trans_time")] for r in rows]
    first_late = next(i for i in range(1, len(times)) if times[i] < max(times[:i]))
    assert (late.line, late.time, late.latest_before) == (first_late + 2, times[first_late], max(times[:first_late]))
    assert str(late).startswith(f"line {late.line} ({late.time}) comes after")


class RecordingSort(SortedSource):
    """SortedSource that notes the size of each run it writes."""

    run_sizes: list[int]

    def _write_run(self, tmp, table):  # noqa: ANN001, ANN202
        self.run_sizes = [*getattr(self, "run_sizes", []), table.num_rows]
        self.spilled_in = tmp
        return super()._write_run(tmp, table)


def test_the_sort_gives_every_row_once_by_event_time_then_line_with_its_own_line_number(tmp_path):
    header, rows = read_rows(FIXTURES / "kaggle_rows2301_2900.csv")
    when, ident = header.index("trans_date_trans_time"), header.index("trans_num")
    for r in rows[100:140]:  # ties: 40 rows at one time, spread over the file by the shuffle
        r[when] = "2019-01-02 00:00:00"
    rows[7][when] = "not a time"
    random.Random(3).shuffle(rows)
    path = write_rows(tmp_path / "ties.csv", header, rows)
    by_line = {line: r for line, r in enumerate(rows, start=2)}

    sorter = RecordingSort(CsvSource(str(path)), tmp_path / "spill", run_rows=70, batch_rows=16)
    chunks, shares = [], []
    for chunk in sorter.chunks():
        chunks.append(chunk)
        shares.append(sorter.bytes_read / path.stat().st_size)  # progress: the rows handed on, not the bytes spilled
    positions = [(int(k), ln) for c in chunks for k, ln in zip(c.keys, c.lines, strict=True)]
    assert positions == sorted(positions) and len(positions) == len(rows)  # stable: ties by line
    assert sorted(ln for _, ln in positions) == list(by_line)
    assert positions[0][0] == UNTIMED and by_line[positions[0][1]][when] == "not a time"
    for c in chunks:  # each row keeps its own line number
        assert c.batch.column("trans_num").to_pylist() == [by_line[ln][ident] for ln in c.lines]
    # Bounded: runs of at most run_rows, merged chunks of at most batch_rows.
    assert sorter.run_sizes == [70] * 8 + [40] and max(c.batch.num_rows for c in chunks) <= 16
    assert shares == sorted(shares) and shares[0] < 0.1 and shares[-1] == 1.0
    assert stat.S_IMODE((tmp_path / "spill").stat().st_mode) == 0o700
    assert not sorter.spilled_in.exists() and not list((tmp_path / "spill").iterdir())  # runs removed


def test_a_shuffled_file_is_replayed_in_event_time_order_labels_by_the_sorted_clock(kaggle_csv, shuffled, tmp_path):
    delay = timedelta(hours=2)
    producer = RecordingProducer()
    stats = replay(CsvSource(str(shuffled)), producer, TOPICS, PROTECTOR,
                   ReplayOptions(label_delay=delay, spill_dir=tmp_path / "spill"))  # fmt: skip
    assert (stats.accepted, stats.labels, stats.rejected_rows) == (600, 600, 0)
    events = producer.on("transactions")
    times = [ts for _, _, _, ts, _ in events]
    assert times == sorted(times)
    header, rows = read_rows(kaggle_csv)  # in order already: its sorted order is its line order
    ident = header.index("trans_num")
    assert [orjson.loads(v)["trans_num"] for _, _, v, _, _ in events] == [r[ident] for r in rows]
    # Each label released with the first event at or after its due time (or at the end), in due order.
    delay_ms = delay.total_seconds() * 1000
    clock, due_times = float("-inf"), []
    for topic, _, _, timestamp, _ in producer.records:
        if topic == "transactions":
            clock = timestamp
        else:
            due_times.append(timestamp)
            assert timestamp <= clock or clock == times[-1]
    assert due_times == sorted(due_times) and due_times == [t + delay_ms for t in times]


def test_rejects_name_their_line_in_the_file_not_in_the_sorted_order(shuffled, tmp_path):
    header, rows = read_rows(shuffled)
    rows[10][header.index("amt")] = "-5"
    rows[20].append("an extra field")  # a ragged line: no time, it comes first
    path = write_rows(tmp_path / "bad.csv", header, rows)
    producer = RecordingProducer()
    options = ReplayOptions(labels=False, quarantine=tmp_path / "q.jsonl", spill_dir=tmp_path / "spill")
    stats = replay(CsvSource(str(path)), producer, TOPICS, PROTECTOR, options)
    assert (stats.accepted, stats.rejected_rows) == (598, 2)
    assert [json.loads(line)["line"] for line in (tmp_path / "q.jsonl").read_text().splitlines()] == [22, 12]


def test_a_shuffled_file_resumes_in_sorted_order_each_row_and_reject_once(shuffled, tmp_path):
    header, rows = read_rows(shuffled)
    amt = header.index("amt")
    for i in range(0, 600, 37):
        rows[i][amt] = "-1"  # 17 rejects spread over the file, and so over the sorted order
    path = write_rows(tmp_path / "bad.csv", header, rows)
    checkpoint, quarantine = tmp_path / "checkpoint.json", tmp_path / "q.jsonl"
    options = {"label_delay": timedelta(hours=2), "checkpoint": checkpoint, "quarantine": quarantine,
               "spill_dir": tmp_path / "spill"}  # fmt: skip
    first, second = RecordingProducer(), RecordingProducer()
    head = replay(CsvSource(str(path)), first, TOPICS, PROTECTOR, ReplayOptions(limit=250, **options))
    saved = json.loads(checkpoint.read_text())
    assert saved["event_ms"] == first.on("transactions")[-1][3]  # the position in the sorted order
    rest = replay(CsvSource(str(path)), second, TOPICS, PROTECTOR,
                  ReplayOptions(resume_after_line=saved["line"], resume_after_key=saved["event_ms"],
                                resume_labels=saved["pending_labels"], **options))  # fmt: skip
    assert (head.accepted, rest.accepted) == (250, 583 - 250)
    assert head.rejected_rows + rest.rejected_rows == 17
    sent = [r[3] for r in first.on("transactions") + second.on("transactions")]
    assert sent == sorted(sent)
    ids = [orjson.loads(r[2])["trans_num"] for r in first.on("transactions") + second.on("transactions")]
    assert len(set(ids)) == len(ids) == 583
    rejected = [json.loads(line)["line"] for line in quarantine.read_text().splitlines()]
    assert sorted(rejected) == [i + 2 for i in range(0, 600, 37)]  # each once, by its line in the file
    last_sent = first.on("transactions")[-1][3]
    first_rejects = {orjson.loads(v)["line"] for _, _, v, _, _ in first.on("dlq")}
    line_time = {i + 2: r[header.index("trans_date_trans_time")] for i, r in enumerate(rows)}
    assert all(datetime.fromisoformat(line_time[ln]).timestamp() * 1000 <= last_sent + 1 for ln in first_rejects)


def test_a_checkpoint_of_the_other_order_is_refused(shuffled, kaggle_csv, tmp_path):
    with pytest.raises(SourceError, match="not in event-time order"):
        replay(CsvSource(str(shuffled)), RecordingProducer(), TOPICS, PROTECTOR, ReplayOptions(resume_after_line=40))
    with pytest.raises(SourceError, match="is in event-time order"):
        replay(CsvSource(str(kaggle_csv)), RecordingProducer(), TOPICS, PROTECTOR,
               ReplayOptions(resume_after_line=40, resume_after_key=0))  # fmt: skip


def test_rejects_after_the_limit_are_reported_by_the_resume_only(kaggle_csv, tmp_path):
    header, rows = read_rows(kaggle_csv)
    for i in (5, 120, 121, 300):  # lines 7, 122, 123, 302
        rows[i][header.index("amt")] = "-1"
    path = write_rows(tmp_path / "bad.csv", header, rows)
    checkpoint, quarantine = tmp_path / "checkpoint.json", tmp_path / "q.jsonl"
    first = replay(CsvSource(str(path)), RecordingProducer(), TOPICS, PROTECTOR,
                   ReplayOptions(limit=119, labels=False, checkpoint=checkpoint, quarantine=quarantine))  # fmt: skip
    saved = json.loads(checkpoint.read_text())
    assert (first.accepted, first.rejected_rows, saved["line"]) == (119, 1, 121)  # line 7 only: before line 121
    second = replay(CsvSource(str(path)), RecordingProducer(), TOPICS, PROTECTOR,
                    ReplayOptions(labels=False, checkpoint=checkpoint, quarantine=quarantine,
                                  resume_after_line=saved["line"]))  # fmt: skip
    assert (second.accepted, second.rejected_rows) == (596 - 119, 3)
    assert [json.loads(line)["line"] for line in quarantine.read_text().splitlines()] == [7, 122, 123, 302]


def test_training_history_and_the_demo_range_ignore_the_order_of_the_file(kaggle_csv, shuffled):
    until = datetime(2019, 1, 2, 6, 0)
    in_order = load_history(CsvSource(str(kaggle_csv)), PROTECTOR, until)
    from_shuffled = load_history(CsvSource(str(shuffled)), PROTECTOR, until)
    key = ["event_time", "card_token", "amt"]
    assert len(in_order) == len(from_shuffled) > 0 and (in_order["event_time"] < until).all()
    in_order, from_shuffled = (f.sort_values(key).reset_index(drop=True) for f in (in_order, from_shuffled))
    assert in_order.equals(from_shuffled)
    header, rows = read_rows(shuffled)
    times = sorted(datetime.fromisoformat(r[header.index("trans_date_trans_time")]) for r in rows)
    assert time_range(shuffled) == time_range(kaggle_csv) == (times[0], times[-1])


def test_the_order_is_checked_on_readable_times_only(kaggle_csv, tmp_path):
    header, rows = read_rows(kaggle_csv)
    rows[3][header.index("trans_date_trans_time")] = "2/1/2019 1:06"  # rejected where it stands
    path = write_rows(tmp_path / "damaged.csv", header, rows)
    assert first_out_of_order(CsvSource(str(path))) is None
    assert np.array_equal(sort_keys(pa.array(["2/1/2019 1:06"])), [UNTIMED])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seconds=st.lists(st.integers(0, 9), min_size=1, max_size=60), run_rows=st.integers(1, 25),
       batch_rows=st.integers(1, 9))  # fmt: skip
def test_any_order_any_run_and_batch_size_comes_out_sorted_by_time_then_line(seconds, run_rows, batch_rows):
    header, rows = read_rows(FIXTURES / "kaggle_rows2301_2900.csv")
    when = header.index("trans_date_trans_time")
    body = [[*rows[0][:when], f"2019-01-01 00:00:0{s}", *rows[0][when + 1 :]] for s in seconds]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_rows(Path(tmp) / "any.csv", header, body)
        chunks = list(SortedSource(CsvSource(str(path)), Path(tmp) / "spill", run_rows, batch_rows).chunks())
        assert not list((Path(tmp) / "spill").iterdir())
    lines = [ln for c in chunks for ln in c.lines]
    assert lines == sorted(range(2, len(seconds) + 2), key=lambda ln: (seconds[ln - 2], ln))
    assert all(c.batch.num_rows <= batch_rows for c in chunks)
