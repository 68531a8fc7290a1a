"""A shuffled copy of real rows, replayed from S3 into the real broker, comes out in event-time order."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from datetime import timedelta

import orjson
import pytest

from producer.cards import CardProtector
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import DLQ, LABELS, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import read_topic
from txguard.clients import Clients, setup

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"
PROTECTOR = CardProtector(b"integration-test-key-0123456789")
DELAY = timedelta(hours=3)


def namespace(settings) -> Clients:  # noqa: ANN001 - txguard.settings.Settings
    clients = Clients(settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}"}))
    setup(clients)
    return clients


def topics_of(clients: Clients) -> Topics:
    s = clients.settings
    return Topics(s.topic(TRANSACTIONS), s.topic(LABELS), s.topic(DLQ))


def test_a_shuffled_s3_copy_publishes_what_the_ordered_file_does_in_event_time_order(settings, tmp_path):
    rows = list(csv.reader(KAGGLE.open(newline="")))
    body = rows[1:]
    random.Random(5).shuffle(body)
    shuffled = io.StringIO()
    csv.writer(shuffled, lineterminator="\n").writerows([rows[0], *body])
    ordered, sorted_copy = namespace(settings), namespace(settings)
    s3 = sorted_copy.s3()
    bucket = f"txguard-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shuffled.csv", Body=shuffled.getvalue().encode())

    options = ReplayOptions(label_delay=DELAY, spill_dir=tmp_path / "spill")
    a = replay(CsvSource(str(KAGGLE)), ordered.producer(), topics_of(ordered), PROTECTOR, options)
    b = replay(CsvSource(f"s3://{bucket}/shuffled.csv", s3_client=s3), sorted_copy.producer(), topics_of(sorted_copy),
               PROTECTOR, options)  # fmt: skip
    assert a.accepted == b.accepted == 600 and a.labels == b.labels == 600

    def published(c: Clients, topic: str) -> list:
        return read_topic(c, c.settings.topic(topic))

    for topic in (TRANSACTIONS, LABELS):  # the same records, keys and timestamps
        assert sorted((m.key, m.value, m.timestamp) for m in published(ordered, topic)) == sorted(
            (m.key, m.value, m.timestamp) for m in published(sorted_copy, topic)
        )
    events = published(sorted_copy, TRANSACTIONS)
    per_card: dict[bytes, list[str]] = defaultdict(list)
    per_partition: dict[int, list[int]] = defaultdict(list)
    for m in sorted(events, key=lambda m: (m.partition, m.offset)):
        per_card[m.key].append(orjson.loads(m.value)["event_time"])
        per_partition[m.partition].append(m.timestamp)
    assert len(per_card) > 100 and all(times == sorted(times) for times in per_card.values())
    assert all(stamps == sorted(stamps) for stamps in per_partition.values())
    labels: dict[int, list[int]] = defaultdict(list)
    for m in sorted(published(sorted_copy, LABELS), key=lambda m: (m.partition, m.offset)):
        labels[m.partition].append(m.timestamp)  # the due time: released by the sorted event clock
    assert all(stamps == sorted(stamps) for stamps in labels.values())
