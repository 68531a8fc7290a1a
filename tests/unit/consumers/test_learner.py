"""The learner: labels joined with the features they were scored with, one published model."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from consumers.learner import LearnerService, ScoresNotStoredYet
from model.registry import ModelRegistry
from model.train import train
from producer.history import load_history
from producer.source import CsvSource
from schemas.events import DeadLetter, LabelEvent
from streaming.service import Decoded
from tests.unit.consumers.test_scorer import PROTECTOR
from tests.unit.model.test_online_classifier import labelled
from tests.unit.streaming.kafka_fakes import FakeMessage, FakeProducer

START = datetime(2019, 7, 1)
CARD = "a" * 32


def trans(i: int) -> str:
    return f"{i:032x}"


def label_messages(y: np.ndarray, first: int = 0) -> list[FakeMessage]:
    return [
        FakeMessage(
            topic_="labels", partition_=0, offset_=first + i, key_=CARD.encode(),
            value_=LabelEvent(trans_num=trans(first + i), card_token=CARD,
                              event_time=START + timedelta(minutes=first + i), is_fraud=bool(y[i])).to_json(),
        )
        for i in range(len(y))
    ]  # fmt: skip


class StoredFeatures:
    """The ``scores.features`` boundary: feature rows of the events whose score is stored."""

    def __init__(self, X: np.ndarray):
        self.rows = {trans(i): X[i].tolist() for i in range(len(X))}
        self.asked: list[list[str]] = []

    def __call__(self, trans_nums):
        self.asked.append(list(trans_nums))
        return {t: self.rows[t] for t in trans_nums if t in self.rows}


def learner(registry: ModelRegistry, features, producer=None, **kwargs) -> LearnerService:
    return LearnerService("labels", features, registry, producer or FakeProducer(), "dlq", namespace="ns", **kwargs)


def feed(service: LearnerService, messages: list[FakeMessage]) -> None:
    service.process([Decoded(m, service.decode(m)) for m in messages])


def test_it_learns_from_the_features_serving_stored_and_publishes_one_snapshot_for_every_scorer(tmp_path):
    X, y = labelled(6_000, 0.02, seed=0)
    registry = ModelRegistry(tmp_path)
    stored = StoredFeatures(X)
    service = learner(registry, stored)
    assert registry.learned_version("ns") is None
    feed(service, label_messages(y[:3_000]))
    feed(service, label_messages(y[3_000:], first=3_000))
    assert sorted(t for ask in stored.asked for t in ask) == sorted(stored.rows)
    assert registry.load_learned("ns") is None  # nothing is published before the checkpoint
    service.flush()

    assert registry.learned_version("ns") == "online-1"
    published = registry.load_learned("ns")
    described = published.describe()
    assert described.pop("checked_auc") > 0.9  # the second batch was scored before it was learned
    assert described == {
        "version": "online-1",
        "labels": 6_000,
        "frauds": int(y.sum()),
        "learned_until": (START + timedelta(minutes=5_999)).isoformat(),
        "ready": True,
    }
    assert np.array_equal(published.score_many(X), service.classifier.score_many(X))
    service.flush()  # nothing new learned: no new snapshot
    assert registry.learned_version("ns") == "online-1"

    # A restarted learner resumes from its saved state, reference rows included.
    resumed = learner(registry, stored)
    assert resumed.classifier.labels_ == 6_000 and len(resumed.classifier.reference_) == 6_000
    feed(resumed, label_messages(y[:10]))
    resumed.flush()
    assert registry.learned_version("ns") == "online-2"


def test_labels_wait_for_their_scores_then_a_missing_one_is_dead_lettered_with_its_reason(tmp_path):
    X, y = labelled(100, 0.1, seed=1)
    stored = StoredFeatures(X[:90])  # the last 10 events' scores are not in PostgreSQL yet
    producer = FakeProducer()
    now = [0.0]
    service = learner(ModelRegistry(tmp_path), stored, producer, join_timeout_s=60.0, clock=lambda: now[0])
    messages = label_messages(y)
    with pytest.raises(ScoresNotStoredYet, match="10 labels wait for their scores"):
        feed(service, messages)
    assert service.classifier.labels_ == 0  # nothing of a retried batch is learned
    assert service.is_transient(ScoresNotStoredYet("x"))  # the loop retries it with back-off

    stored.rows.update({trans(i): X[i].tolist() for i in range(90, 95)})  # persist catches up, in part
    now[0] = 61.0
    feed(service, messages)
    assert service.classifier.labels_ == 95 and service.dead_lettered == 5
    letters = [p for p in producer.produced if p["topic"] == "dlq"]
    assert [p["value"] for p in letters] == [m.value() for m in messages[95:]]
    record = DeadLetter.from_headers(letters[0]["headers"])
    assert (record.service, record.source, record.partition, record.offset, record.error_class) == (
        "learner", "labels", 0, 95, "ScoreNotFound")  # fmt: skip
    assert trans(95) in record.reason


def test_a_first_learner_starts_from_the_classifier_the_current_model_was_trained_with(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, report = train(history, label_cutoff=history["event_time"].max() + timedelta(days=1))  # every label
    registry = ModelRegistry(tmp_path)
    registry.save(model)
    service = learner(registry, StoredFeatures(np.zeros((0, 28))))
    assert service.classifier.labels_ == report["supervised"]["labelled_rows"] > 0
    assert service.classifier is not model.learned  # its own copy: the model's stays as trained
