"""A verdict is stored and published both or neither, on the real PostgreSQL and Kafka
(the browser tests click the buttons; these break Kafka underneath)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from schemas.topics import LABELS
from tests.integration.conftest import pg_query, read_topic
from txguard.dashboard.store import LabelPublisher, PublishFailed, UnknownTransaction, record_verdict

pytestmark = pytest.mark.integration
TRANS_NUM, CARD_TOKEN = "a" * 32, "b" * 32
EVENT_TIME = datetime(2020, 3, 1, 12, 30, 5)


@pytest.fixture(scope="module")
def transaction(clients) -> str:
    conn = clients.pg()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO transactions (trans_num, event_time, card_token, card_masked, merchant, category, amt,"
                " gender, city, state, zip, lat, long, city_pop, birth_year, merch_lat, merch_long, kafka_partition,"
                " kafka_offset) VALUES (%s, %s, %s, '411111******1111', 'm', 'grocery_pos', 12.5, 'F', 'x', 'NY',"
                " '10001', 40.0, -73.0, 1000, 1980, 40.1, -73.1, 0, 0)",
                (TRANS_NUM, EVENT_TIME, CARD_TOKEN),
            )
    finally:
        conn.close()
    return TRANS_NUM


def verdict_rows(clients) -> list[tuple]:
    return pg_query(clients, "SELECT trans_num, verdict, analyst FROM verdicts")


def labels(clients) -> list:
    return read_topic(clients, clients.settings.topic(LABELS))


def test_a_verdict_is_stored_and_published_as_a_label(clients, transaction):
    publisher = LabelPublisher(clients.producer(), clients.settings.topic(LABELS))
    conn = clients.pg()
    try:
        result = record_verdict(conn, publisher, transaction, "confirmed_fraud", "ana")
    finally:
        conn.close()
    assert result["verdict"] == "confirmed_fraud" and result["verdict_by"] == "ana"
    assert verdict_rows(clients) == [(TRANS_NUM, "confirmed_fraud", "ana")]
    (label,) = labels(clients)
    assert label.key == CARD_TOKEN.encode()
    assert json.loads(label.value) == {"trans_num": TRANS_NUM, "card_token": CARD_TOKEN,
                                       "event_time": "2020-03-01T12:30:05", "is_fraud": True}  # fmt: skip


def test_kafka_unreachable_stores_nothing(clients, transaction):
    before_rows, before_labels = verdict_rows(clients), len(labels(clients))
    dead = clients.producer(**{"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 1500})
    publisher = LabelPublisher(dead, clients.settings.topic(LABELS), timeout_s=1.0)
    conn = clients.pg()
    try:
        with pytest.raises(PublishFailed):
            record_verdict(conn, publisher, transaction, "false_positive", "bob")
    finally:
        conn.close()
    assert verdict_rows(clients) == before_rows  # still ana's confirmed fraud
    assert len(labels(clients)) == before_labels


def test_an_unknown_transaction_changes_nothing(clients, transaction):
    before_rows, before_labels = verdict_rows(clients), len(labels(clients))
    publisher = LabelPublisher(clients.producer(), clients.settings.topic(LABELS))
    conn = clients.pg()
    try:
        with pytest.raises(UnknownTransaction):
            record_verdict(conn, publisher, "c" * 32, "confirmed_fraud", "ana")
    finally:
        conn.close()
    assert (verdict_rows(clients), len(labels(clients))) == (before_rows, before_labels)
