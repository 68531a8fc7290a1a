"""The whole path on real servers: CSV -> Kafka -> persist + scorer -> PostgreSQL, DynamoDB, alerts."""

from __future__ import annotations

import csv
import json
import re
import threading

import pytest

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.features import FEATURE_NAMES
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.fields import CARD_MASKED_PATTERN
from schemas.topics import ALERTS, ALL_TOPICS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_count, read_topic, wait_for
from txguard.app import App

pytestmark = pytest.mark.integration
PAN_RUN = re.compile(rb"(?<![0-9])[0-9]{11,19}(?![0-9])")


@pytest.fixture(scope="module")
def replayed(clients, services, tmp_path_factory):
    """The 600-row real slice replayed through the running services."""
    settings = clients.settings
    kaggle_csv = FIXTURES / "kaggle_rows2301_2900.csv"
    protector = CardProtector(App(settings).card_key())
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), protector))
    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    scorer = ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                           BehaviorStore(clients.dynamodb(), settings.behavior_table), model,
                           clients.producer())  # fmt: skip
    services.start(scorer, clients)
    stats = replay(
        CsvSource(str(kaggle_csv)), clients.producer(),
        Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ)),
        protector, ReplayOptions(quarantine=tmp_path_factory.mktemp("q") / "q.jsonl"), stop=threading.Event(),
    )  # fmt: skip
    assert stats.accepted == 600 and stats.rejected_rows == 0 and stats.labels == 600
    for table in ("transactions", "scores", "labels"):
        wait_for(lambda t=table: pg_count(clients, t) >= 600, what=f"600 rows in {table}")
    return protector


def test_every_row_lands_once_with_one_score(clients, replayed, kaggle_csv):
    input_ids = sorted(r["trans_num"] for r in csv.DictReader(kaggle_csv.open()))
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT trans_num FROM transactions ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == input_ids
        cur.execute("SELECT trans_num FROM scores ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == input_ids
        cur.execute("SELECT count(*) FROM labels WHERE is_fraud")
        assert cur.fetchone()[0] == 5
    conn.close()


def test_scores_keep_the_served_features_and_the_threshold_in_force(clients, replayed):
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT features, threshold, supervised_score FROM scores")
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM scored_transactions WHERE threshold IS NOT NULL AND supervised_score IS NULL")
        exposed = cur.fetchone()[0]
    conn.close()
    assert len(rows) == 600 and exposed == 600  # 5 frauds: no classifier, the unsupervised ensemble
    assert all(len(f) == len(FEATURE_NAMES) and all(isinstance(v, float) for v in f) for f, _, _ in rows)
    assert all(0 <= t <= 1 and s is None for _, t, s in rows)


def test_behavior_items_equal_the_input_per_card(clients, replayed, kaggle_csv):
    expected: dict[str, list] = {}
    for r in csv.DictReader(kaggle_csv.open()):
        token = replayed.protect(r["cc_num"])[0]
        count, cents = expected.get(token, (0, 0))
        expected[token] = (count + 1, cents + round(float(r["amt"]) * 100))
    ddb = clients.dynamodb()

    def items() -> list[dict]:
        pages = ddb.get_paginator("scan").paginate(TableName=clients.settings.behavior_table)
        return [i for page in pages for i in page["Items"]]

    # The scorer writes card states at its next checkpoint (commit_interval_s).
    wait_for(lambda: sum(int(i["txn_count"]["N"]) for i in items()) >= 600, 30, "the scorer's checkpoint")
    got = {i["card_token"]["S"]: (int(i["txn_count"]["N"]), round(float(i["amount_sum"]["N"]) * 100)) for i in items()}
    assert got == expected


def test_alerts_reach_the_alerts_topic_with_reasons(clients, replayed):
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT trans_num FROM scores WHERE flagged")
        flagged = {r[0] for r in cur.fetchall()}
    conn.close()
    alerts = [json.loads(m.value) for m in read_topic(clients, clients.settings.topic(ALERTS))]
    assert alerts, "the model flagged nothing"
    assert {a["trans_num"] for a in alerts} == flagged
    assert all(a["reason"] and re.fullmatch(CARD_MASKED_PATTERN, a["card_masked"]) for a in alerts)


def test_no_card_number_reaches_kafka_postgres_or_dynamodb(clients, replayed, kaggle_csv):
    pans = {r["cc_num"].encode() for r in csv.DictReader(kaggle_csv.open())}
    settings = clients.settings
    for spec in ALL_TOPICS:
        for m in read_topic(clients, settings.topic(spec)):
            assert not set(PAN_RUN.findall(m.value or b"")) & pans
            assert not set(PAN_RUN.findall(m.key or b"")) & pans
    conn = clients.pg()
    with conn.cursor() as cur:
        for table in ("transactions", "scores", "labels"):
            cur.execute(f"SELECT t::text FROM {table} t")  # noqa: S608 - fixed table names
            dump = "\n".join(r[0] for r in cur.fetchall()).encode()
            assert not set(PAN_RUN.findall(dump)) & pans
    conn.close()
    dump = json.dumps(clients.dynamodb().scan(TableName=settings.behavior_table)["Items"])
    assert not set(PAN_RUN.findall(dump.encode())) & pans


def test_a_producer_resending_everything_changes_nothing(clients, replayed, kaggle_csv, tmp_path):
    """A producer that crashed before its checkpoint sends rows again, at new offsets."""
    settings = clients.settings
    ddb = clients.dynamodb()

    def card_totals() -> dict:
        pages = ddb.get_paginator("scan").paginate(TableName=settings.behavior_table)
        return {i["card_token"]["S"]: (i["txn_count"]["N"], i["amount_sum"]["N"]) for p in pages for i in p["Items"]}

    before = card_totals()
    dead_before = len(read_topic(clients, settings.topic(DLQ)))
    again = replay(CsvSource(str(kaggle_csv)), clients.producer(),
                   Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ)),
                   replayed, ReplayOptions(labels=False), stop=threading.Event())  # fmt: skip
    assert again.accepted == 600
    # One fresh event per partition, after the repeats: once the scorer has checkpointed
    # them, it has consumed everything before them.
    template = json.loads(read_topic(clients, settings.topic(TRANSACTIONS))[0].value)
    producer = clients.producer()
    sentinels = {}
    for partition in range(settings.partitions):
        token = f"{partition:032x}"
        sentinels[token] = {**template, "trans_num": f"{partition + 1:032x}", "card_token": token}
        producer.produce(settings.topic(TRANSACTIONS), json.dumps(sentinels[token]).encode(), token.encode(),
                         partition=partition)  # fmt: skip
    producer.flush()
    wait_for(lambda: set(sentinels) <= set(card_totals()), 60, "the scorer to pass the repeats")
    after = card_totals()
    for token in sentinels:
        del after[token]
    assert after == before
    wait_for(lambda: pg_count(clients, "scores") == 600 + len(sentinels), 60, "the sentinels' scores")
    assert pg_count(clients, "transactions") == 600 + len(sentinels)
    assert len(read_topic(clients, settings.topic(DLQ))) == dead_before
