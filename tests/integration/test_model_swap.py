"""A model promoted while the pipeline runs takes over without a restart; a shadow's scores are stored."""

from __future__ import annotations

import threading

import pytest

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.registry import ModelRegistry
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_count, pg_query, wait_for
from txguard.app import App

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"


def test_a_promoted_shadow_takes_over_the_running_scorer(clients, services, tmp_path):
    settings = clients.settings
    protector = CardProtector(App(settings).card_key())
    history = load_history(CsvSource(str(KAGGLE)), protector)
    current, _ = train(history)
    candidate, _ = train(history, alerts_per_day=50.0, random_state=1)
    current.metadata["version"], candidate.metadata["version"] = "v-current", "v-candidate"
    registry = ModelRegistry(tmp_path / "models")
    registry.save(current)
    registry.save(candidate, shadow=True)

    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    scorer = ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                           BehaviorStore(clients.dynamodb(), settings.behavior_table), registry.load_current(),
                           clients.producer(), shadow=registry.load_shadow(), registry=registry,
                           model_poll_s=0.2)  # fmt: skip
    services.start(scorer, clients)
    topics = Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))

    def send(**options) -> None:  # noqa: ANN003
        stats = replay(CsvSource(str(KAGGLE)), clients.producer(), topics, protector,
                       ReplayOptions(labels=False, quarantine=tmp_path / "q.jsonl", **options),
                       stop=threading.Event())  # fmt: skip
        assert stats.rejected_rows == 0

    send(limit=300)
    wait_for(lambda: pg_count(clients, "scores") >= 300, what="300 scores")
    assert pg_query(clients, "SELECT DISTINCT model_version, shadow_version FROM scores") == [
        ("v-current", "v-candidate")
    ]
    assert pg_query(clients, "SELECT count(*), min(model_version) FROM shadow_scores") == [(300, "v-candidate")]

    registry.promote("v-candidate")  # while the scorer runs
    send(resume_after_line=300)
    wait_for(lambda: pg_count(clients, "scores") >= 600, what="600 scores")
    by_version = dict(pg_query(clients, "SELECT model_version, count(*) FROM scores GROUP BY 1"))
    assert by_version == {"v-current": 300, "v-candidate": 300}  # the scorer was idle: the next batch swapped
    assert scorer.model.version == "v-candidate" and scorer.shadow is None
