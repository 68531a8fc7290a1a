"""Ingestion on real servers: S3 equals local, rejects reach the DLQ, resume sends nothing twice."""

from __future__ import annotations

import csv
import json
import threading
import uuid
from datetime import timedelta

import pytest

from producer.cards import CardProtector, mask
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import DLQ, LABELS, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import read_topic
from txguard.clients import Clients, setup

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"
PROTECTOR = CardProtector(b"integration-test-key-0123456789")


def topics_of(settings) -> Topics:
    return Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))


@pytest.fixture
def other_namespace(settings) -> Clients:
    clients = Clients(settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}"}))
    setup(clients)
    return clients


def test_s3_replay_publishes_exactly_what_local_replay_does(clients, other_namespace):
    s3 = clients.s3()
    bucket = f"txguard-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/kaggle.csv", Body=KAGGLE.read_bytes())

    local = replay(CsvSource(str(KAGGLE)), clients.producer(), topics_of(clients.settings), PROTECTOR,
                   ReplayOptions(labels=False))  # fmt: skip
    remote = replay(CsvSource(f"s3://{bucket}/in/kaggle.csv", s3_client=s3), other_namespace.producer(),
                    topics_of(other_namespace.settings), PROTECTOR, ReplayOptions(labels=False))  # fmt: skip
    assert local.accepted == remote.accepted == 600

    def published(c: Clients) -> list[tuple]:
        return sorted((m.key, m.value, m.timestamp) for m in read_topic(c, c.settings.topic(TRANSACTIONS)))

    assert published(clients) == published(other_namespace)


def test_rejected_rows_go_to_quarantine_and_dlq_with_line_and_reason(other_namespace, tmp_path):
    rows = list(csv.reader(KAGGLE.open(newline="")))
    header = rows[0]
    col = {name: i for i, name in enumerate(header)}
    pan = rows[5][col["cc_num"]]
    rows[5][col["trans_date_trans_time"]] = "2/1/2019 1:06"  # the PAN of this row is valid: it must be masked
    rows[9][col["cc_num"]] = "2.29E+15"
    mangled = tmp_path / "mangled.csv"
    with mangled.open("w", newline="") as f:
        csv.writer(f).writerows(rows)

    quarantine = tmp_path / "quarantine.jsonl"
    settings = other_namespace.settings
    stats = replay(CsvSource(str(mangled)), other_namespace.producer(), topics_of(settings), PROTECTOR,
                   ReplayOptions(quarantine=quarantine))  # fmt: skip
    assert (stats.accepted, stats.rejected_rows) == (598, 2)

    records = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(r["line"], r["reason"].split(" (")[0]) for r in records] == [
        (6, "trans_date_trans_time is in a spreadsheet date format"),
        (10, "cc_num is in scientific notation"),
    ]
    dlq = read_topic(other_namespace, settings.topic(DLQ))
    assert sorted(dict(m.headers)["line"] for m in dlq) == [b"10", b"6"]
    everything = quarantine.read_text() + "".join(m.value.decode() for m in dlq)
    assert pan not in everything and mask(pan) in everything


def test_resume_continues_after_the_last_acknowledged_row(other_namespace, tmp_path):
    settings = other_namespace.settings
    checkpoint = tmp_path / "checkpoint.json"
    delay = timedelta(hours=6)  # some labels are due inside the slice, some after it
    first = replay(CsvSource(str(KAGGLE)), other_namespace.producer(), topics_of(settings), PROTECTOR,
                   ReplayOptions(limit=250, label_delay=delay, checkpoint=checkpoint))  # fmt: skip
    assert first.accepted == 250
    saved = json.loads(checkpoint.read_text())
    assert (saved["source"], saved["line"]) == (str(KAGGLE), 251)
    assert 0 < len(saved["pending_labels"]) == 250 - first.labels
    rest = replay(CsvSource(str(KAGGLE)), other_namespace.producer(), topics_of(settings), PROTECTOR,
                  ReplayOptions(label_delay=delay, checkpoint=checkpoint, resume_after_line=saved["line"],
                                resume_labels=saved["pending_labels"]))  # fmt: skip
    assert rest.accepted == 350
    every_row = sorted(r["trans_num"] for r in csv.DictReader(KAGGLE.open()))
    for spec in (TRANSACTIONS, LABELS):
        sent = [json.loads(m.value)["trans_num"] for m in read_topic(other_namespace, settings.topic(spec))]
        assert sorted(sent) == every_row, spec.name


def test_stop_flushes_and_checkpoints_what_was_sent(other_namespace, tmp_path):
    settings = other_namespace.settings
    checkpoint = tmp_path / "checkpoint.json"
    stop = threading.Event()
    seen = []

    def on_progress(stats, _source) -> None:
        seen.append(stats.accepted + stats.accepted_in_block)
        stop.set()  # as Ctrl-C does: the first progress report interrupts the replay

    stats = replay(CsvSource(str(KAGGLE)), other_namespace.producer(), topics_of(settings), PROTECTOR,
                   ReplayOptions(rate=200, labels=False, checkpoint=checkpoint), stop=stop,
                   on_progress=on_progress)  # fmt: skip
    assert 0 < stats.accepted < 600
    assert len(read_topic(other_namespace, settings.topic(TRANSACTIONS))) == stats.accepted
    assert json.loads(checkpoint.read_text())["line"] == 1 + stats.accepted
