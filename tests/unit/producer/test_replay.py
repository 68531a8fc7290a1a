"""The replay against a recording producer: what is sent, in which order, and resume."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

import orjson

from producer.cards import CardProtector
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.events import DeadLetter

PROTECTOR = CardProtector(b"unit-test-key-0123456789")
TOPICS = Topics("transactions", "labels", "dlq")


class RecordingProducer:
    """The part of confluent_kafka.Producer the replay uses; every record is kept."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, int, list | None]] = []

    def produce(self, topic, value=None, key=None, timestamp=0, headers=None) -> None:
        self.records.append((topic, key, value, timestamp, headers))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float | None = None) -> int:
        return 0

    def on(self, topic: str) -> list[tuple]:
        return [r for r in self.records if r[0] == topic]


def test_labels_are_released_on_time_across_a_resume(kaggle_csv, tmp_path):
    checkpoint, delay = tmp_path / "checkpoint.json", timedelta(hours=2)
    first, second = RecordingProducer(), RecordingProducer()
    stats = replay(CsvSource(str(kaggle_csv)), first, TOPICS, PROTECTOR,
                   ReplayOptions(limit=250, label_delay=delay, checkpoint=checkpoint))  # fmt: skip
    saved = json.loads(checkpoint.read_text())
    assert (stats.accepted, saved["line"], len(saved["pending_labels"])) == (250, 251, 250 - stats.labels)
    rest = replay(CsvSource(str(kaggle_csv)), second, TOPICS, PROTECTOR,
                  ReplayOptions(label_delay=delay, checkpoint=checkpoint, resume_after_line=saved["line"],
                                resume_labels=saved["pending_labels"]))  # fmt: skip
    assert rest.accepted == 350 and stats.labels + rest.labels == 600

    every_row = sorted(r["trans_num"] for r in csv.DictReader(kaggle_csv.open()))
    sent = first.records + second.records
    for topic in ("transactions", "labels"):
        assert sorted(orjson.loads(r[2])["trans_num"] for r in sent if r[0] == topic) == every_row
    event_ms = {orjson.loads(r[2])["trans_num"]: r[3] for r in sent if r[0] == "transactions"}
    delay_ms = delay.total_seconds() * 1000
    for producer in (first, second):
        clock = previous = float("-inf")  # event time of the last event sent, and of the one before
        last_event = max(i for i, r in enumerate(producer.records) if r[0] == "transactions")
        for i, (topic, _, value, timestamp, _) in enumerate(producer.records):
            if topic == "transactions":
                previous, clock = clock, timestamp
                continue
            assert timestamp == event_ms[orjson.loads(value)["trans_num"]] + delay_ms
            if timestamp <= clock:
                assert previous < timestamp, "released with the first event at or after its due time"
            else:
                assert producer is second and i > last_event, "before its due time only at the end of the file"
    assert stats.labels > 0 and len(second.on("labels")) > len(saved["pending_labels"]) > 0


def test_rejected_rows_are_dead_lettered_with_the_one_header_layout(kaggle_csv, tmp_path):
    rows = list(csv.reader(kaggle_csv.open(newline="")))
    col = {name: i for i, name in enumerate(rows[0])}
    rows[3][col["cc_num"]] = "2.29E+15"
    mangled = tmp_path / "mangled.csv"
    with mangled.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    producer = RecordingProducer()
    stats = replay(CsvSource(str(mangled)), producer, TOPICS, PROTECTOR,
                   ReplayOptions(labels=False, quarantine=tmp_path / "q.jsonl"))  # fmt: skip
    assert (stats.accepted, stats.rejected_rows) == (599, 1)
    ((_, key, value, _, headers),) = producer.on("dlq")
    record = DeadLetter.from_headers(headers)
    assert (record.service, record.source, record.line, record.error_class) == (
        "replay",
        str(mangled),
        4,
        "RejectedRow",
    )
    assert record.reason.startswith("cc_num is in scientific notation") and record.kind == "replay: RejectedRow"
    assert key is None and orjson.loads(value)["line"] == 4
    assert json.loads((tmp_path / "q.jsonl").read_text())["reason"] == record.reason
