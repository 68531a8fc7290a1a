"""Drift on real servers: a scorer's detections through Kafka into PostgreSQL, and a drift-started retrain."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.drift import SCORE, DriftEvent, DriftMonitor
from model.registry import ModelRegistry
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.events import DriftEventRecord
from schemas.topics import ALERTS, DLQ, DRIFT, LABELS, SCORES, TRANSACTIONS
from streaming.producer import produce
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_count, pg_query, read_topic, wait_for
from txguard.app import App
from txguard.clients import Clients

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"


class DriftEveryBatch(DriftMonitor):
    """Reports a change in the score with every batch (real detections need weeks of stream);
    each with its own means, so two batches ending at the same second stay two detections."""

    def __init__(self):
        super().__init__(())

    def update(self, score, X, feature_names, event_time_max):  # noqa: ANN001, ANN201
        self.n_batches_ += 1
        return [DriftEvent(SCORE, event_time_max, 0.2, 0.4 + self.n_batches_ / 1000)]


def persist_service(clients: Clients) -> PersistService:
    settings = clients.settings
    topics = {spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS, DRIFT)}
    return PersistService(topics, PostgresSink(clients.pg))


def replay_kaggle(clients: Clients, protector: CardProtector, tmp_path) -> None:
    settings = clients.settings
    stats = replay(CsvSource(str(KAGGLE)), clients.producer(),
                   Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ)), protector,
                   ReplayOptions(quarantine=tmp_path / "q.jsonl"), stop=threading.Event())  # fmt: skip
    assert stats.accepted == 600 and stats.labels == 600


def test_detected_drift_goes_through_kafka_into_postgres_once(clients, services, tmp_path):
    settings = clients.settings
    protector = CardProtector(App(settings).card_key())
    model, _ = train(load_history(CsvSource(str(KAGGLE)), protector))
    model.drift = DriftEveryBatch()
    services.start(persist_service(clients), clients)
    scorer = ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                           BehaviorStore(clients.dynamodb(), settings.behavior_table), model, clients.producer(),
                           drift_topic=settings.topic(DRIFT), instance="it-scorer:1")  # fmt: skip
    services.start(scorer, clients)
    replay_kaggle(clients, protector, tmp_path)

    wait_for(lambda: scorer.scored == 600, what="600 events scored")
    detections = scorer.drift_events
    wait_for(lambda: pg_count(clients, "drift_events") == detections, what=f"{detections} drift events stored")
    rows = pg_query(clients, "SELECT quantity, mean_before, mean_after, model_version, scorer, detected_at"
                             " FROM drift_events ORDER BY detected_at")  # fmt: skip
    latest = pg_query(clients, "SELECT max(event_time) FROM transactions")[0][0]
    assert detections >= 2  # one per scored batch
    assert {r[:5] for r in rows} == {(SCORE, 0.2, 0.4 + n / 1000, model.version, "it-scorer:1")
                                     for n in range(1, detections + 1)}  # fmt: skip
    assert max(r[5] for r in rows) == latest  # detected at the latest event time of its batch

    # Delivered again (a producer retry, a replayed batch): still one row each.
    sent = read_topic(clients, settings.topic(DRIFT))
    assert len(sent) == detections
    producer = clients.producer()
    for message in sent:
        produce(producer, settings.topic(DRIFT), message.value, message.key)
    sentinel = DriftEventRecord.of(detected_at=latest + timedelta(hours=1), quantity=SCORE, mean_before=0.4,
                                   mean_after=0.1, model_version=model.version, scorer="it-scorer:1")  # fmt: skip
    produce(producer, settings.topic(DRIFT), sentinel.to_json(), SCORE.encode())  # same key: after the repeats
    producer.flush(10)
    wait_for(lambda: pg_count(clients, "drift_events") > detections, what="the sentinel drift event")
    assert pg_count(clients, "drift_events") == detections + 1

    result = App(settings).evaluate()
    assert result["drift"] == {"events": detections + 1, "by_quantity": {SCORE: detections + 1}}


def test_drift_makes_the_retrainer_register_a_shadow_trained_on_postgres_history(fresh_clients, services, tmp_path):
    settings = fresh_clients.settings.model_copy(update={
        "model_path": str(tmp_path / "models"), "retrain_on_drift": True, "retrain_min_interval_days": 0.0,
        "label_delay_days": 2 / 24,
    })  # fmt: skip
    app = App(settings)
    protector = CardProtector(app.card_key())
    history = load_history(CsvSource(str(KAGGLE)), protector)
    first, _ = train(history.iloc[:200])  # the current model, trained on the first third
    registry = ModelRegistry(settings.model_location)
    current = registry.save(first)

    services.start(persist_service(fresh_clients), fresh_clients)
    replay_kaggle(fresh_clients, protector, tmp_path)
    for table in ("transactions", "labels"):
        wait_for(lambda t=table: pg_count(fresh_clients, t) == 600, what=f"600 rows in {table}")
    retrainer = app.retrainer()
    assert retrainer.trained_until == history["event_time"].iloc[199]
    services.start(retrainer, fresh_clients)

    detected_at = history["event_time"].max().to_pydatetime() + timedelta(minutes=1)
    drift = DriftEventRecord.of(detected_at=detected_at, quantity="log_amt", mean_before=3.1, mean_after=3.9,
                                model_version=current, scorer="it-scorer:1")  # fmt: skip
    producer = fresh_clients.producer()
    produce(producer, settings.topic(DRIFT), drift.to_json(), b"log_amt")
    producer.flush(10)
    wait_for(lambda: bool(retrainer.retrained), what="a retrain")

    pointers = registry.pointers()
    assert pointers.current == current and pointers.shadow != current
    meta = registry.load(pointers.shadow).metadata
    assert meta["training_data"]["source"] == f"postgresql:{settings.pg_schema}"
    assert meta["training_data"]["rows"] == 600 and meta["training_data"]["until"] == detected_at.isoformat()
    assert meta["retrain"]["reason"] == f"drift in log_amt at {detected_at}"
    # Only the labels that had arrived by the cut-off: those of events 2 event-hours before it.
    conn = fresh_clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE l.is_fraud) FROM transactions t"
                        " JOIN labels l USING (trans_num) WHERE t.event_time < %s",
                        (detected_at - timedelta(hours=2),))  # fmt: skip
            arrived = cur.fetchone()
    finally:
        conn.close()
    assert 0 < arrived[0] < 600
    assert (meta["supervised"]["labelled_rows"], meta["supervised"]["labelled_frauds"]) == arrived
    assert retrainer.retrained == [(pointers.shadow, detected_at, meta["retrain"]["reason"])]
    assert app.trained_until() == detected_at  # a restarted retrainer would not retrain again
