"""The scorer: scores and alerts as the schema defines them, and its online detector checkpoint."""

import copy
import logging
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta

import numpy as np
import orjson
import pytest

from consumers.card_state import BehaviorStore
from consumers.scorer import ScorerService, _epoch_seconds, _event_time_texts
from model.behavior import CardBehavior
from model.drift import SCORE, DriftEvent, DriftMonitor
from model.features import FEATURE_NAMES, Txn, epoch_seconds, featurize
from model.online_classifier import OnlineClassifier
from model.registry import LocalStore, ModelRegistry, OnlineCheckpoint, Watcher
from model.train import feature_matrix, train
from producer.cards import CardProtector
from producer.encode import encode_events
from producer.history import load_history
from producer.source import CsvSource
from schemas.events import AlertEvent, DriftEventRecord, ScoreEvent, TransactionEvent
from streaming.service import Decoded
from tests.unit.consumers.test_card_state import FakeDynamoDB
from tests.unit.streaming.kafka_fakes import FakeMessage, FakeProducer

PROTECTOR = CardProtector(b"unit-test-key-0123456789")


def test_online_detector_resumes_from_its_checkpoint(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, _ = train(history)
    checkpoint = OnlineCheckpoint(LocalStore(tmp_path), "online.joblib")
    first = ScorerService("t", "s", "a", store=None, model=model, producer=None, online_checkpoint=checkpoint)
    X = feature_matrix(history, model.category_norms)
    first.model.online.learn_many(X[:100] * 3.0)  # drift the online state away from training
    first.model.budget.observe(np.full(5000, 0.9), np.arange(5000) // 1000 + 20_000)  # and the budget's days
    checkpoint.save(first.model)

    fresh, _ = train(history)
    fresh.metadata["version"] = model.version
    second = ScorerService("t", "s", "a", store=None, model=fresh, producer=None, online_checkpoint=checkpoint)
    assert np.allclose(second.model.online.score_many(X), first.model.online.score_many(X))
    assert second.model.current_threshold() == first.model.current_threshold() != model.metadata["threshold"]

    other, _ = train(history)
    other.metadata["version"] = "another-model"
    third = ScorerService("t", "s", "a", store=None, model=other, producer=None, online_checkpoint=checkpoint)
    assert not np.allclose(third.model.online.score_many(X), first.model.online.score_many(X))


def test_scorers_sharing_a_checkpoint_add_up_what_each_learned_from_its_partitions(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    trained, _ = train(history)
    messages = transaction_messages(kaggle_csv)
    scorers = []
    for partition in (0, 1):
        model = copy.deepcopy(trained)
        checkpoint = OnlineCheckpoint(LocalStore(tmp_path), "online.joblib")  # one per process
        scorer = ScorerService("t", "s", "a", store=MemoryStore(), model=model, producer=FakeProducer(),
                               threshold=0.99, online_checkpoint=checkpoint)  # fmt: skip
        scorer.on_assign([partition])
        scorers.append(scorer)
    for round_ in (0, 1):  # each scores its partition's events in two batches, saving after each
        for partition, scorer in enumerate(scorers):
            mine = [m for m in messages if m.partition() == partition][round_::2]
            scorer.process([Decoded(m, scorer.decode(m)) for m in mine])
            scorer.flush()

    learned = len([m for m in messages if m.partition() in (0, 1)])
    assert sum(s.scored for s in scorers) == learned > 300
    restored = copy.deepcopy(trained)
    assert OnlineCheckpoint(LocalStore(tmp_path), "online.joblib").restore(restored)
    trained_n = max(trained.online.scaler_.counts.values())
    assert max(restored.online.scaler_.counts.values()) == trained_n + learned  # threshold 0.99: nothing flagged
    # After its save each scorer goes on from the sum; the last to save holds exactly the checkpoint.
    assert restored.online.scaler_.counts == scorers[1].model.online.scaler_.counts


def test_a_scorer_alone_saves_its_online_state_bit_for_bit(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, _ = train(history)
    X = feature_matrix(history, model.category_norms)
    checkpoint = OnlineCheckpoint(LocalStore(tmp_path), "online.joblib")
    checkpoint.restore(model)
    for part in (X[:200], X[200:400] * 1.7, X[400:]):  # checkpoint after checkpoint, nobody else writing
        model.online.learn_many(part)
        expected = copy.deepcopy(model.online.scaler_)
        checkpoint.save(model)
        assert (model.online.scaler_.means, model.online.scaler_.vars) == (expected.means, expected.vars)


class MemoryStore:
    """The scorer's DynamoDB boundary, in memory."""

    def __init__(self):
        self.saved: dict[str, CardBehavior] = {}

    def load_many(self, tokens):
        return {t: self.saved[t] for t in tokens if t in self.saved}

    def save_many(self, states):
        self.saved.update(states)


def transaction_messages(path) -> list[FakeMessage]:
    """The file's rows as the producer publishes them, at made-up Kafka positions."""
    chunk = next(CsvSource(str(path)).chunks())
    block = encode_events(chunk.batch, chunk.lines, PROTECTOR)
    return [FakeMessage(partition_=i % 3, offset_=i // 3, value_=v, key_=k)
            for i, (v, k) in enumerate(zip(block.events, block.keys, strict=True))]  # fmt: skip


def score_all(scorer: ScorerService, messages: list[FakeMessage], cut: int = 250) -> None:
    for batch in (messages[:cut], messages[cut:]):
        scorer.process([Decoded(m, scorer.decode(m)) for m in batch])


def test_every_event_gets_a_score_and_every_flagged_one_an_alert_as_the_schema_defines(kaggle_csv):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    reference = copy.deepcopy(model)
    producer = FakeProducer()
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, producer)
    messages = transaction_messages(kaggle_csv)
    batches = [messages[:250], messages[250:]]
    score_all(scorer, messages)

    events = [TransactionEvent.model_validate_json(m.value()) for m in messages]
    sent = {topic: [p for p in producer.produced if p["topic"] == topic] for topic in ("scores", "alerts")}
    scores = [ScoreEvent.model_validate_json(p["value"]) for p in sent["scores"]]
    alerts = [AlertEvent.model_validate_json(p["value"]) for p in sent["alerts"]]
    assert [s.trans_num for s in scores] == [e.trans_num for e in events]
    assert [p["key"] for p in sent["scores"]] == [e.card_token.encode() for e in events]
    assert all(list(orjson.loads(p["value"])) == list(ScoreEvent.model_fields) for p in sent["scores"])
    assert all(list(orjson.loads(p["value"])) == list(AlertEvent.model_fields) for p in sent["alerts"])

    # The values are the model's, computed from the card states before each event.
    states: dict[str, CardBehavior] = {}
    expected = []
    for batch in batches:
        txns = [Txn(e.card_token, epoch_seconds(e.event_time), e.amt, e.category, e.birth_year, e.city_pop,
                    (m.partition(), m.offset()), e.trans_num)
                for m in batch for e in [TransactionEvent.model_validate_json(m.value())]]  # fmt: skip
        X = featurize(txns, states, reference.category_norms)
        expected.append(reference.score_batch(X, None, np.array([t.t for t in txns])))
    assert [s.score for s in scores] == np.concatenate([r.score for r in expected]).tolist()
    assert [s.iforest_score for s in scores] == np.concatenate([r.iforest for r in expected]).tolist()
    assert [s.online_score for s in scores] == np.concatenate([r.online for r in expected]).tolist()
    assert [s.flagged for s in scores] == np.concatenate([r.flagged for r in expected]).tolist()
    assert [s.threshold for s in scores] == [r.threshold for r in expected for _ in range(len(r.score))]
    assert all(s.supervised_score is None for s in scores)  # 5 frauds: the unsupervised ensemble
    assert all(s.model_version == model.version and (s.reason != "") == s.flagged for s in scores)

    flagged = {s.trans_num: s for s in scores if s.flagged}
    assert alerts and [a.trans_num for a in alerts] == list(flagged)
    by_id = {e.trans_num: e for e in events}
    for a, p in zip(alerts, sent["alerts"], strict=True):
        e, s = by_id[a.trans_num], flagged[a.trans_num]
        assert (a.card_token, a.card_masked, a.event_time, a.amt, a.category, a.merchant) == (
            e.card_token, e.card_masked, e.event_time, e.amt, e.category, e.merchant)  # fmt: skip
        assert (a.score, a.reason, a.model_version) == (s.score, s.reason, s.model_version)
        assert p["key"] == e.card_token.encode()
    assert (scorer.scored, scorer.alerted) == (len(events), len(alerts))


def test_a_promoted_model_takes_over_at_the_next_poll_and_a_shadow_scores_without_alerting(tmp_path, kaggle_csv,
                                                                                          caplog):  # fmt: skip
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    current, _ = train(history)
    candidate, _ = train(history, alerts_per_day=200.0, random_state=1)  # flags far more than the current one
    current.metadata["version"], candidate.metadata["version"] = "v-current", "v-candidate"
    registry = ModelRegistry(tmp_path)
    registry.save(current)
    registry.save(candidate, shadow=True)
    reference = {"current": copy.deepcopy(current), "candidate": copy.deepcopy(candidate)}

    producer = FakeProducer()
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), registry.load_current(), producer,
                           shadow=registry.load_shadow(), registry=registry, model_poll_s=5.0)  # fmt: skip
    now = [0.0]
    scorer.watcher = Watcher(registry.pointers, 5.0, clock=lambda: now[0])
    messages = transaction_messages(kaggle_csv)
    batches = [messages[:200], messages[200:400], messages[400:]]

    def sent(topic: str, model):  # noqa: ANN001, ANN202
        return [model.model_validate_json(p["value"]) for p in producer.produced if p["topic"] == topic]

    # Batch 1: the current model scores and alerts; the shadow scores the same features.
    scorer.process([Decoded(m, scorer.decode(m)) for m in batches[0]])
    scores, alerts = sent("scores", ScoreEvent), sent("alerts", AlertEvent)
    states: dict[str, CardBehavior] = {}
    txns = [Txn(e.card_token, epoch_seconds(e.event_time), e.amt, e.category, e.birth_year, e.city_pop,
                (m.partition(), m.offset()), e.trans_num)
            for m in batches[0] for e in [TransactionEvent.model_validate_json(m.value())]]  # fmt: skip
    X = featurize(txns, states, current.category_norms)
    times = np.array([t.t for t in txns])
    expected_current = reference["current"].score_batch(X, None, times)
    expected_shadow = reference["candidate"].score_batch(X, None, times)
    assert [s.score for s in scores] == expected_current.score.tolist()  # the shadow does not disturb the current
    assert [s.shadow_score for s in scores] == expected_shadow.score.tolist()
    assert {(s.model_version, s.shadow_version) for s in scores} == {("v-current", "v-candidate")}
    assert expected_shadow.flagged.sum() > expected_current.flagged.sum()
    assert [a.trans_num for a in alerts] == [s.trans_num for s in scores if s.flagged]  # the current's alerts only
    assert all(a.model_version == "v-current" for a in alerts)

    # Promoted while running: not before the next poll...
    registry.promote("v-candidate")
    now[0] = 3.0
    scorer.process([Decoded(m, scorer.decode(m)) for m in batches[1]])
    assert {s.model_version for s in sent("scores", ScoreEvent)[200:]} == {"v-current"}
    # ...and at it, before the next batch, without a restart: one line in the log says so.
    now[0] = 6.0
    with caplog.at_level(logging.INFO, logger="consumers.scorer"):
        scorer.process([Decoded(m, scorer.decode(m)) for m in batches[2]])
    assert [r.getMessage() for r in caplog.records if "without restart" in r.getMessage()] == [
        "scorer: model v-current -> v-candidate without restart (online state from shadow)"
    ]
    later = sent("scores", ScoreEvent)[400:]
    assert later and {(s.model_version, s.shadow_version, s.shadow_score) for s in later} == {
        ("v-candidate", None, None)
    }
    assert all(a.model_version == "v-candidate" for a in sent("alerts", AlertEvent) if a.trans_num in
               {s.trans_num for s in later})  # fmt: skip


def test_a_version_that_cannot_load_keeps_the_scorer_on_the_one_it_has(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, _ = train(history)
    registry = ModelRegistry(tmp_path)
    first = registry.save(model)
    scorer = ScorerService("t", "s", "a", MemoryStore(), registry.load_current(), FakeProducer(), registry=registry,
                           model_poll_s=0.0)  # fmt: skip
    second = registry.save(model, promote=False)
    (tmp_path / "versions" / second / "model.joblib").write_bytes(b"not a model")
    registry.promote(second)
    scorer.refresh_models()
    assert scorer.model.version == first


def test_training_and_serving_compute_identical_feature_rows(kaggle_csv):
    """The same rows as a training frame (``model.train``) and as served events (the scorer)."""
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, _ = train(history)
    producer = FakeProducer()
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, producer)
    score_all(scorer, transaction_messages(kaggle_csv), cut=317)
    served = {}
    for p in producer.produced:
        if p["topic"] == "scores":
            s = ScoreEvent.model_validate_json(p["value"])
            served[s.trans_num] = s.features
    trained = feature_matrix(history, model.category_norms)
    trans_nums = [e.trans_num for e in map(TransactionEvent.model_validate_json, (m.value() for m in
                  transaction_messages(kaggle_csv)))]  # fmt: skip
    # The file is in time order, so the frame's row order is the stream's.
    assert history["event_time"].is_monotonic_increasing and len(trans_nums) == len(trained)
    assert np.array_equal(np.array([served[t] for t in trans_nums]), trained)
    assert trained.shape == (600, len(FEATURE_NAMES)) and history["city_pop"].gt(0).all()


def test_two_scorers_score_with_the_learners_one_snapshot_and_take_up_the_next_at_their_poll(tmp_path, kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    model, _ = train(history)
    registry = ModelRegistry(tmp_path)
    registry.save(model)
    learned = OnlineClassifier(min_frauds=1, min_labels=100, min_auc=0.0)
    learned.learn_many(feature_matrix(history, model.category_norms), history["is_fraud"].to_numpy(dtype=bool))
    registry.publish_learned(learned.snapshot(), "ns")

    now = [0.0]
    messages = transaction_messages(kaggle_csv)
    scorers, producers = [], []
    for _ in range(2):
        producers.append(FakeProducer())
        scorer = ScorerService("t", "scores", "alerts", MemoryStore(), registry.load_current(), producers[-1],
                               registry=registry, namespace="ns")  # fmt: skip
        scorer.learned_watcher = Watcher(lambda: registry.learned_version("ns"), 5.0, clock=lambda: now[0])
        scorers.append(scorer)
    for scorer in scorers:
        scorer.process([Decoded(m, scorer.decode(m)) for m in messages[:300]])
    first, second = ([ScoreEvent.model_validate_json(p["value"]) for p in pr.produced if p["topic"] == "scores"]
                     for pr in producers)  # fmt: skip
    assert {s.learned_version for s in first} == {"online-1"}
    assert [(s.learned_score, s.score) for s in first] == [(s.learned_score, s.score) for s in second]
    assert any(s.learned_score > 0.5 for s in first)
    # The ensemble used it: without the online classifier the same rows score otherwise.
    X = np.array([s.features for s in first])
    alone = copy.deepcopy(scorers[0].model)
    alone.learned = None
    assert not np.allclose(alone.score_many(X), [s.score for s in first])

    learned.learn_many(X, np.zeros(len(X), dtype=bool))
    registry.publish_learned(learned.snapshot(), "ns")
    now[0] = 6.0
    for scorer in scorers:
        scorer.process([Decoded(m, scorer.decode(m)) for m in messages[300:]])
    assert {scorer.model.learned.version for scorer in scorers} == {"online-2"}
    later = [ScoreEvent.model_validate_json(p["value"]) for p in producers[0].produced if p["topic"] == "scores"]
    assert {s.learned_version for s in later[300:]} == {"online-2"}


class DriftEveryBatch(DriftMonitor):
    """A drift monitor that reports a change in the score with every batch."""

    def __init__(self):
        super().__init__(())

    def update(self, score, X, feature_names, event_time_max):  # noqa: ANN001, ANN201
        return [DriftEvent(SCORE, event_time_max, 0.2, 0.4)]


@pytest.mark.parametrize("publish", [True, False])
def test_detected_drift_is_logged_counted_and_published_as_a_drift_record(kaggle_csv, caplog, publish):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    model.drift = DriftEveryBatch()
    producer = FakeProducer()
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, producer,
                           drift_topic="drift" if publish else None, instance="test-host:42")  # fmt: skip
    messages = transaction_messages(kaggle_csv)
    with caplog.at_level(logging.WARNING, logger="consumers.scorer"):
        score_all(scorer, messages, cut=250)

    events = [TransactionEvent.model_validate_json(m.value()) for m in messages]
    latest = [max(e.event_time for e in events[:250]), max(e.event_time for e in events[250:])]
    assert scorer.drift_events == 2  # the counter and the log line, published or not
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("drift in")] == [
        f"drift in score at {epoch_seconds(t)}: mean 0.2 -> 0.4" for t in latest
    ]
    sent = [p for p in producer.produced if p["topic"] == "drift"]
    if not publish:
        assert sent == []
        return
    records = [DriftEventRecord.model_validate_json(p["value"]) for p in sent]
    assert [(r.detected_at, r.quantity, r.mean_before, r.mean_after, r.model_version, r.scorer) for r in records] == [
        (t, SCORE, 0.2, 0.4, model.version, "test-host:42") for t in latest
    ]
    assert [p["key"] for p in sent] == [b"score", b"score"]
    assert records[0] == DriftEventRecord.of(detected_at=latest[0], quantity=SCORE, mean_before=0.2, mean_after=0.4,
                                             model_version=model.version, scorer="test-host:42")  # fmt: skip


def test_a_detector_that_cannot_merge_is_saved_by_the_owner_of_partition_0_and_taken_by_the_others(
    tmp_path, kaggle_csv
):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    trained, _ = train(history, online_detector="hst")
    X = feature_matrix(history, trained.category_norms)
    writer, reader = copy.deepcopy(trained), copy.deepcopy(trained)
    checkpoints = [OnlineCheckpoint(LocalStore(tmp_path), "online.joblib") for _ in range(2)]
    checkpoints[0].restore(writer)
    checkpoints[1].restore(reader)
    writer.online.learn_many(X * 3.0)
    reader.online.learn_many(X[:50])
    checkpoints[0].save(writer, writer=True)
    checkpoints[1].save(reader, writer=False)  # not the owner of partition 0: takes the writer's state
    assert np.array_equal(reader.online.score_many(X), writer.online.score_many(X))
    assert not np.array_equal(reader.online.score_many(X), trained.online.score_many(X))


def test_a_checkpoint_in_the_background_stores_what_a_foreground_one_does(kaggle_csv):
    """The card writes of ``start_flush`` run while the scorer goes on; once they land, and the
    next checkpoint ran, DynamoDB holds what checkpoints in the foreground would have written."""
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    messages = transaction_messages(kaggle_csv)
    foreground_db, background_db = FakeDynamoDB(), FakeDynamoDB()
    foreground = ScorerService("transactions", "scores", "alerts", BehaviorStore(foreground_db, "t"),
                               copy.deepcopy(model), FakeProducer())  # fmt: skip
    background = ScorerService("transactions", "scores", "alerts", BehaviorStore(background_db, "t"),
                               copy.deepcopy(model), FakeProducer())  # fmt: skip
    for scorer in (foreground, background):
        scorer.process([Decoded(m, scorer.decode(m)) for m in messages[:300]])
    foreground.flush()
    writes = background.start_flush()
    assert background.cache.saving and not background.cache.dirty
    for scorer in (foreground, background):  # the background scorer goes on while its writes run
        scorer.process([Decoded(m, scorer.decode(m)) for m in messages[300:]])
    writes.finish()
    assert not background.cache.saving
    foreground.flush()
    background.flush()
    assert background_db.items == foreground_db.items
    assert {t: s.version for t, s in background.cache.items()} == {t: s.version for t, s in foreground.cache.items()}


def test_cards_a_background_checkpoint_could_not_write_are_written_by_the_next(kaggle_csv):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    db = FakeDynamoDB()
    scorer = ScorerService("transactions", "scores", "alerts", BehaviorStore(db, "t"), model, FakeProducer())
    messages = transaction_messages(kaggle_csv)
    scorer.process([Decoded(m, scorer.decode(m)) for m in messages])
    down = sorted(scorer.cache.dirty)[:3]
    put_item = db.put_item

    def put_unless_down(**kwargs):
        if kwargs["Item"]["card_token"]["S"] in down:
            raise ConnectionError("endpoint unreachable")
        return put_item(**kwargs)

    db.put_item = put_unless_down
    writes = scorer.start_flush()
    with pytest.raises(ConnectionError):
        writes.finish()
    assert scorer.cache.dirty == set(down)  # written again by the next checkpoint; the others are done
    db.put_item = put_item
    scorer.flush()
    assert {t: int(item["version"]["N"]) for t, item in db.items.items()} == {t: 1 for t in scorer.cache}
    assert all(s.version == 1 for s in scorer.cache.values())


def with_card_writer(kaggle_csv, writer, db: FakeDynamoDB, **options) -> ScorerService:
    """A scorer whose checkpoints hand their card writes to ``writer``."""
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    return ScorerService("transactions", "scores", "alerts", BehaviorStore(db, "t"), model, FakeProducer(),
                         card_writer=writer, **options)  # fmt: skip


class DeadWriter:
    """A card writer whose process died: every write it was given fails as a whole."""

    def submit(self, items):
        future: Future = Future()
        future.set_exception(BrokenProcessPool("the card writer's process died"))
        return future


def test_when_the_card_writer_dies_every_card_of_its_checkpoint_is_written_by_the_next(kaggle_csv):
    db = FakeDynamoDB()
    scorer = with_card_writer(kaggle_csv, DeadWriter(), db)
    scorer.process([Decoded(m, scorer.decode(m)) for m in transaction_messages(kaggle_csv)])
    cards = set(scorer.cache.dirty)
    writes = scorer.start_flush()
    with pytest.raises(BrokenProcessPool):
        writes.finish()
    assert scorer.cache.dirty == cards and not scorer.cache.saving and not db.items
    scorer.flush()  # the loop's foreground checkpoint, in this process
    assert {t: int(item["version"]["N"]) for t, item in db.items.items()} == {t: 1 for t in cards}


class UnstartableWriter:
    def submit(self, snapshot):
        raise BrokenProcessPool("cannot start the card writer's process")


def test_a_checkpoint_whose_writer_cannot_start_leaves_every_changed_card_to_the_foreground_one(kaggle_csv):
    db = FakeDynamoDB()
    scorer = with_card_writer(kaggle_csv, UnstartableWriter(), db)
    scorer.process([Decoded(m, scorer.decode(m)) for m in transaction_messages(kaggle_csv)])
    cards = set(scorer.cache.dirty)
    with pytest.raises(BrokenProcessPool):
        scorer.start_flush()
    assert scorer.cache.dirty == cards and not scorer.cache.saving
    scorer.flush()
    assert set(db.items) == cards


class SlowWriter:
    """A card writer that lands its write only when the test says so (from another thread)."""

    def __init__(self):
        self.future: Future = Future()

    def submit(self, snapshot):
        return self.future


def test_a_cache_over_its_bound_waits_for_a_card_writer_that_is_behind(kaggle_csv):
    writer = SlowWriter()
    scorer = with_card_writer(kaggle_csv, writer, FakeDynamoDB(), cache_capacity=5)
    messages = transaction_messages(kaggle_csv)
    scorer.process([Decoded(m, scorer.decode(m)) for m in messages[:100]])
    scorer.start_flush()  # every card is being written now, none can be dropped
    scorer.process([Decoded(m, scorer.decode(m)) for m in messages[100:200]])
    assert len(scorer.cache) > scorer.cache.capacity and scorer.cache.overflow()
    threading.Timer(0.3, writer.future.set_result, [([], None)]).start()
    scorer.process([Decoded(m, scorer.decode(m)) for m in messages[200:300]])  # waits for the writer first
    assert writer.future.done()


@pytest.mark.parametrize("microseconds", [False, True])
def test_event_times_become_epoch_seconds_and_texts_a_column_at_a_time_as_one_by_one(microseconds):
    rng = np.random.default_rng(5)
    extremes = [datetime(1, 1, 1), datetime(999, 12, 31, 23, 59, 59), datetime(1969, 12, 31, 23, 59, 59),
                datetime(1970, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]  # fmt: skip
    times = extremes + [datetime(2019, 1, 1) + timedelta(seconds=int(s)) for s in rng.integers(-(2**33), 2**33, 500)]
    if microseconds:
        times[-1] = times[-1].replace(microsecond=500_000)  # rounded as model.features.epoch_seconds does
    seconds, whole = _epoch_seconds(times)
    assert whole is not microseconds
    assert seconds.tolist() == [epoch_seconds(t) for t in times]
    assert _event_time_texts(times, seconds, whole) == [t.isoformat() for t in times]
    assert _epoch_seconds([])[0].tolist() == [] and _event_time_texts([], np.array([], np.int64), True) == []
    for small in (times[:1], times[:64], times[-3:]):  # a small batch's path (no pandas index): the same
        assert _epoch_seconds(small)[0].tolist() == [epoch_seconds(t) for t in small]
