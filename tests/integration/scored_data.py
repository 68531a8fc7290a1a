"""A namespace with scored history: the 600-row real slice replayed through persist + scorer."""

from __future__ import annotations

import threading
from pathlib import Path

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import ServiceThreads, pg_count, wait_for
from txguard.app import App
from txguard.clients import Clients

ROWS = 600


def replay_scored(clients: Clients, services: ServiceThreads, quarantine: Path, verdict: bool = True) -> None:
    """Replay the slice with its labels through the real services; return once all of it is stored,
    with (``verdict``) a verdict on the first alert, so every view has rows and every column values."""
    settings = clients.settings
    kaggle_csv = FIXTURES / "kaggle_rows2301_2900.csv"
    protector = CardProtector(App(settings).card_key())
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), protector))
    topics = {spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)}
    services.start(PersistService(topics, PostgresSink(clients.pg)), clients)
    services.start(ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                                 BehaviorStore(clients.dynamodb(), settings.behavior_table), model,
                                 clients.producer()), clients)  # fmt: skip
    stats = replay(CsvSource(str(kaggle_csv)), clients.producer(),
                   Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ)),
                   protector, ReplayOptions(quarantine=quarantine), stop=threading.Event())  # fmt: skip
    assert stats.accepted == ROWS
    for table in ("transactions", "scores", "labels"):
        wait_for(lambda t=table: pg_count(clients, t) >= ROWS, what=f"{ROWS} rows in {table}")
    if not verdict:
        return
    conn = clients.pg()
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO verdicts (trans_num, verdict, analyst)"
                    " SELECT trans_num, 'false_positive', 'analyst@example.com' FROM scores WHERE flagged"
                    " ORDER BY trans_num LIMIT 1")  # fmt: skip
    conn.close()
