"""The scorer's online detector checkpoint."""

import numpy as np

from consumers.scorer import ScorerService
from model.registry import OnlineCheckpoint
from model.train import feature_matrix, train
from producer.cards import CardProtector
from producer.replay import load_history
from producer.source import CsvSource


def test_online_detector_resumes_from_its_checkpoint(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), CardProtector(b"unit-test-key-0123456789"))
    model, _ = train(history)
    checkpoint = OnlineCheckpoint(tmp_path / "online.joblib")
    first = ScorerService("t", "s", "a", store=None, model=model, producer=None, online_checkpoint=checkpoint)
    X = feature_matrix(history, model.category_medians)
    first.model.online.learn_many(X[:100] * 3.0)  # drift the online state away from training
    first.save_online()

    fresh, _ = train(history)
    fresh.metadata["version"] = model.version
    second = ScorerService("t", "s", "a", store=None, model=fresh, producer=None, online_checkpoint=checkpoint)
    assert np.allclose(second.model.online.score_many(X), first.model.online.score_many(X))

    other, _ = train(history)
    other.metadata["version"] = "another-model"
    third = ScorerService("t", "s", "a", store=None, model=other, producer=None, online_checkpoint=checkpoint)
    assert not np.allclose(third.model.online.score_many(X), first.model.online.score_many(X))
