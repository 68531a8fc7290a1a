"""One learner, two scorers: the labels teach one online classifier, and both scorers score with it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from consumers.card_state import BehaviorStore
from consumers.learner import LearnerService
from consumers.persist import PersistService
from consumers.postgres import PostgresSink, ScoredFeatures
from consumers.scorer import ScorerService
from model.online_classifier import OnlineClassifier
from model.registry import ModelRegistry
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_query, wait_for
from txguard.app import App

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"


def test_two_scorer_processes_share_the_one_model_the_learner_publishes(clients, services, tmp_path):
    settings = clients.settings
    protector = CardProtector(App(settings).card_key())
    model, _ = train(load_history(CsvSource(str(KAGGLE)), protector))
    registry = ModelRegistry(tmp_path / "models")
    registry.save(model)
    # The fixture has few frauds: let the classifier join the ensemble after a handful.
    registry.save_learner_state(OnlineClassifier(min_frauds=1, min_labels=50, min_auc=0.0), settings.namespace)

    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    learner = LearnerService(settings.topic(LABELS), ScoredFeatures(clients.pg), registry, clients.producer(),
                             settings.topic(DLQ), namespace=settings.namespace)  # fmt: skip
    services.start(learner, clients)
    scorers, assigned = [], []
    for _ in range(2):  # one consumer group: the partitions are split between them
        scorer = ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                               BehaviorStore(clients.dynamodb(), settings.behavior_table), registry.load_current(),
                               clients.producer(), registry=registry, model_poll_s=0.2,
                               namespace=settings.namespace)  # fmt: skip
        assigned.append(threading.Event())
        services.start(scorer, clients, on_assign=lambda partitions, done=assigned[-1]: partitions and done.set())
        scorers.append(scorer)
    wait_for(lambda: all(e.is_set() for e in assigned), what="both scorers to hold partitions")
    topics = Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))

    def send(**options) -> None:  # noqa: ANN003
        replay(CsvSource(str(KAGGLE)), clients.producer(), topics, protector,
               ReplayOptions(quarantine=tmp_path / "q.jsonl", **options), stop=threading.Event())  # fmt: skip

    # The first 300 events, labelled at once (no delay): the learner joins each label with its stored features.
    send(limit=300, label_delay=timedelta(0))
    wait_for(lambda: registry.learned_version(settings.namespace) is not None, what="the learner's first snapshot")
    published = registry.load_learned(settings.namespace)
    assert published.labels_ == 300 and published.ready
    assert learner.dead_lettered == 0

    send(resume_after_line=300, labels=False)
    wait_for(lambda: pg_query(clients, "SELECT count(*) FROM scores")[0][0] >= 600, what="600 scores")
    assert all(s.scored > 0 for s in scorers)  # both scored a share of the events...
    versions = pg_query(clients, "SELECT learned_version, count(*), count(learned_score) FROM scores"
                                 " WHERE learned_version IS NOT NULL GROUP BY 1")  # fmt: skip
    # ...and every event either scored with the learner's snapshot or before the scorer took it up.
    assert {v for v, _, _ in versions} == {published.version}
    assert all(n == with_score for _, n, with_score in versions)
    later = pg_query(clients, "SELECT count(*) FROM scores WHERE learned_version IS NULL"
                              " AND trans_num NOT IN (SELECT trans_num FROM labels)")  # fmt: skip
    assert later == [(0,)]  # the 300 events after the snapshot all carry it
    assert {s.learned.version for s in scorers} == {published.version}
