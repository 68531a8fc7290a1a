"""Oversized input on real servers: dead-lettered as references, and everything goes on.

A message over the size limit on ``transactions`` (written by a producer with a higher
limit) used to make the dead-letter produce fail, so the service crashed before its
commit, and again on the same message after every restart. A replay row that became
over 1 MB once escaped did the same to the replay.
"""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
from confluent_kafka import TopicPartition

from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from producer.cards import CardProtector
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.events import DeadLetter
from schemas.topics import DLQ, DRIFT, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_count, read_topic, wait_for

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"
PROTECTOR = CardProtector(b"integration-test-key-0123456789")


def topics_of(settings) -> Topics:
    return Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))


def test_a_message_over_the_limit_is_dead_lettered_as_a_reference_and_committed_past(fresh_clients, services):
    clients, settings = fresh_clients, fresh_clients.settings
    topic = settings.topic(TRANSACTIONS)
    huge = b'{"trans_num": "' + b"x" * 1_500_000 + b'"}'  # over the 1,000,000-byte default
    foreign = clients.producer(**{"message.max.bytes": 4_000_000})  # another producer, a higher limit
    foreign.produce(topic, huge, b"card", partition=0)
    assert foreign.flush(30) == 0 and foreign.delivery_errors() == 0
    sent = replay(CsvSource(str(KAGGLE)), clients.producer(), topics_of(settings), PROTECTOR,
                  ReplayOptions(labels=False))  # fmt: skip
    assert sent.accepted == 600

    names = {spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS, DRIFT)}
    services.start(PersistService(names, PostgresSink(clients.pg)), clients)
    wait_for(lambda: pg_count(clients, "transactions") == 600, what="the 600 events after it in PostgreSQL")

    (dead,) = read_topic(clients, settings.topic(DLQ))
    record = DeadLetter.from_headers(dead.headers)
    assert (record.service, record.where, record.error_class) == ("persist", f"{topic}[0]@0", "MessageTooLarge")
    assert (record.size, record.sha256) == (len(huge), hashlib.sha256(huge).hexdigest())
    assert orjson.loads(dead.value) == {"source": topic, "partition": 0, "offset": 0, "error_class": "MessageTooLarge",
                                        "size": len(huge), "sha256": hashlib.sha256(huge).hexdigest()}  # fmt: skip

    # (Asked of the topic itself: the embedded broker's high watermark is not an offset.)
    end = 1 + max(m.offset for m in read_topic(clients, topic) if m.partition == 0)

    def committed_past_it() -> bool:
        probe = clients.consumer("persist")
        try:
            (tp,) = probe.committed([TopicPartition(topic, 0)], timeout=10)
        finally:
            probe.close()
        return tp.offset == end > 1

    wait_for(committed_past_it, timeout=60, what="the commit past the oversized message")


def non_ascii_row(size: int) -> bytes:
    """A well-formed row whose merchant is ``size`` bytes of non-ASCII text: over 1 MB once
    JSON-escaped, as the quarantine record used to be."""
    row = KAGGLE.read_bytes().splitlines()[5].split(b",")
    row[3] = ("ü€" * (size // 5)).encode()
    return b",".join(row)


def test_a_replay_quarantines_over_long_lines_by_number_and_goes_on(fresh_clients, tmp_path):
    clients, settings = fresh_clients, fresh_clients.settings
    lines = KAGGLE.read_bytes().splitlines()
    wide, endless = non_ascii_row(400_000), b"7" * 5_000_000
    lines[99] = wide  # line 100
    path = tmp_path / "long.csv"
    path.write_bytes(b"\n".join(lines) + b"\n" + endless)  # line 602, no newline
    quarantine = tmp_path / "quarantine.jsonl"

    stats = replay(CsvSource(str(path)), clients.producer(), topics_of(settings), PROTECTOR,
                   ReplayOptions(labels=False, quarantine=quarantine))  # fmt: skip
    assert (stats.accepted, stats.rejected_rows, stats.delivery_errors) == (599, 2, 0)
    expected = [(100, {"bytes": len(wide), "hmac_sha256": PROTECTOR.fingerprint(wide)}),
                (602, {"bytes": len(endless), "hmac_sha256": PROTECTOR.fingerprint(endless)})]  # fmt: skip
    quarantined = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(q["line"], q["unparsed"]) for q in quarantined] == expected
    assert all(q["reason"].startswith("line too long") for q in quarantined)
    dead = [(DeadLetter.from_headers(m.headers).line, orjson.loads(m.value)["unparsed"]) for m in read_topic(
        clients, settings.topic(DLQ))]  # fmt: skip
    assert sorted(dead, key=lambda d: d[0]) == expected
    assert len(read_topic(clients, settings.topic(TRANSACTIONS))) == 599
