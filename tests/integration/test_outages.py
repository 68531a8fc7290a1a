"""PostgreSQL down for 15 s, and separately the DynamoDB endpoint, in the middle of a replay.

The services wait and log, then recover: nothing lost, nothing duplicated, and the
per-card aggregates still equal a recomputation from PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import pytest

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.train import train
from producer.cards import CardProtector
from producer.generator import generate
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.integration.conftest import ServiceThreads, pg_count, wait_for
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_crash_recovery import assert_aggregates_equal_recomputation
from txguard import stack
from txguard.clients import Clients, setup
from txguard.settings import Settings

pytestmark = pytest.mark.integration
OUTAGE_S = 15
SPLIT = datetime(2019, 2, 1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("outage") / "transactions.csv"
    generate(path, customers=60, start=date(2019, 1, 1), end=date(2019, 5, 31), seed=11)
    return path


def run_with_outage(clients: Clients, scorer_clients: Clients, dataset, cut, restore) -> int:
    """Replay at a steady rate, cut a dependency after 3 s for OUTAGE_S, then restore it."""
    settings = clients.settings
    protector = CardProtector(b"outage-test-key-0123456789abcdef")
    model, _ = train(load_history(CsvSource(str(dataset)), protector, until=SPLIT))
    services = ServiceThreads()
    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    services.start(ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                                 BehaviorStore(scorer_clients.dynamodb(), settings.behavior_table), model,
                                 clients.producer()), clients)  # fmt: skip
    topics = Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))
    result = {}
    replaying = threading.Thread(target=lambda: result.update(stats=replay(
        CsvSource(str(dataset)), clients.producer(), topics, protector,
        ReplayOptions(start=SPLIT, labels=False, rate=1500))))  # fmt: skip
    try:
        replaying.start()
        time.sleep(3)
        cut()
        time.sleep(OUTAGE_S)
        restore()
        replaying.join()
        sent = result["stats"].accepted
        wait_for(lambda: pg_count(clients, "transactions") >= sent and pg_count(clients, "scores") >= sent,
                 180, f"{sent} rows and scores after the outage")  # fmt: skip
        ddb = scorer_clients.dynamodb()

        def applied() -> int:
            pages = ddb.get_paginator("scan").paginate(TableName=settings.behavior_table)
            return sum(int(i["txn_count"]["N"]) for page in pages for i in page["Items"])

        wait_for(lambda: applied() >= sent, 60, "card states after the outage")
    finally:
        services.stop()
    return sent


def assert_exact(clients: Clients, sent: int) -> None:
    for table in ("transactions", "scores"):
        assert pg_count(clients, table) == sent
    assert_aggregates_equal_recomputation(clients)


def test_postgres_outage_loses_and_doubles_nothing(clients, dataset, caplog):
    base = Settings(home=clients.settings.home)
    sent = run_with_outage(clients, clients, dataset, lambda: stack.stop_postgres(base),
                           lambda: stack.start_postgres(base))  # fmt: skip
    assert sent > 10_000
    assert_exact(clients, sent)
    assert any("cannot go on yet" in r.message and "persist" in r.message for r in caplog.records)


def test_dynamodb_outage_loses_and_doubles_nothing(settings, dataset, caplog):
    own = Clients(settings.model_copy(update={"namespace": settings.namespace + "d"}))
    setup(own)
    proxy = TcpProxy(int(own.endpoints.dynamodb_endpoint.rsplit(":", 1)[1]))
    through_proxy = Clients(own.settings.model_copy(update={"dynamodb_endpoint": proxy.url}))
    try:
        sent = run_with_outage(own, through_proxy, dataset, proxy.cut, proxy.restore)
    finally:
        proxy.close()
    assert_exact(own, sent)
    assert any("cannot go on yet" in r.message and "scorer" in r.message for r in caplog.records)
