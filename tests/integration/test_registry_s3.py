"""The model registry under an s3:// prefix, against the stack's S3 endpoint."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from model.online_classifier import OnlineClassifier
from model.registry import ModelRegistry
from model.train import feature_matrix, train
from producer.cards import CardProtector
from producer.history import load_history
from producer.source import CsvSource
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"


def test_versions_pointers_checkpoints_and_learner_snapshots_live_under_an_s3_prefix(clients):
    s3 = clients.s3()
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    location = f"s3://{bucket}/txguard/registry"
    registry = ModelRegistry.at(location, s3_client=clients.s3)
    history = load_history(CsvSource(str(KAGGLE)), CardProtector(b"s3-registry-test-key-0123"))
    model, _ = train(history)
    model.metadata["version"] = "v1"

    assert registry.save(model) == "v1"
    assert registry.save(model, shadow=True) == "v1-2"  # the conditional PUT refuses a version taken
    other = ModelRegistry.at(location, s3_client=clients.s3)  # another machine's view of the same prefix
    assert other.pointers().current == "v1" and other.pointers().shadow == "v1-2"
    assert [(v["version"], v["role"]) for v in other.list()] == [("v1", "current"), ("v1-2", "shadow")]
    X = feature_matrix(history, model.category_norms)
    assert np.array_equal(other.load_current().score_many(X), model.score_many(X))
    other.promote("v1-2")
    assert registry.current_version() == "v1-2" and registry.pointers().shadow is None

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="txguard/registry/")["Contents"]}
    assert {"txguard/registry/CURRENT", "txguard/registry/versions/v1/model.joblib",
            "txguard/registry/versions/v1-2/model.json"} <= keys  # fmt: skip

    checkpoint = registry.online_checkpoint("ns")
    loaded = other.load_current()
    loaded.online.learn_many(X * 3.0)
    checkpoint.save(loaded)
    fresh = registry.load_current()
    assert other.online_checkpoint("ns").restore(fresh)
    assert np.allclose(fresh.online.score_many(X), loaded.online.score_many(X))

    classifier = OnlineClassifier(min_frauds=1, min_labels=10)
    classifier.learn_many(X, history["is_fraud"].to_numpy(dtype=bool))
    registry.publish_learned(classifier.snapshot(), "ns")
    assert other.learned_version("ns") == "online-1"
    assert np.array_equal(other.load_learned("ns").score_many(X), classifier.score_many(X))


def test_scorers_on_two_machines_merge_their_online_state_through_conditional_puts(clients):
    s3 = clients.s3()
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    location = f"s3://{bucket}/registry"
    history = load_history(CsvSource(str(KAGGLE)), CardProtector(b"s3-registry-test-key-0123"))
    model, _ = train(history)
    ModelRegistry.at(location, s3_client=clients.s3).save(model)
    X = feature_matrix(history, model.category_norms)
    machines = [ModelRegistry.at(location, s3_client=clients.s3) for _ in range(2)]
    checkpoints = [m.online_checkpoint("ns") for m in machines]
    models = [m.load_current() for m in machines]
    for checkpoint, loaded in zip(checkpoints, models, strict=True):
        checkpoint.restore(loaded)
    checkpoints[0].save(models[0])  # the object exists: the race below is on its ETag
    models[0].online.learn_many(X)
    models[1].online.learn_many(X[:100])

    # The second machine's save races the first: its PUT no longer matches the ETag it read, so it is redone.
    store = machines[1].store
    first_try = True

    def racing(saved):
        nonlocal first_try
        if first_try:
            first_try = False
            checkpoints[0].save(models[0])
        return checkpoints[1]._merged(models[1], saved)

    merged = store.update_object("online.ns.joblib", racing)
    trained_n = max(model.online.scaler_.counts.values())
    assert max(merged["online"].scaler_.counts.values()) == trained_n + len(X) + 100
