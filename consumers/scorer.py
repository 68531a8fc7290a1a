"""``scorer``: per-card behaviour (DynamoDB) -> features -> ensemble -> scores and alerts."""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Message, Producer

from consumers.card_state import BehaviorCache, BehaviorStore, CardWriter, StaleStateError, write_snapshot
from model.behavior import CardBehavior
from model.drift import DriftEvent
from model.ensemble import BatchScores, Ensemble
from model.explain import EventContext
from model.features import EPOCH, SMALL_BATCH, epoch_seconds, event_time_of, featurize_columns
from model.online_classifier import OnlineClassifier
from model.registry import ModelRegistry, OnlineCheckpoint, Pointers, Watcher
from model.threshold import AlertBudget
from schemas.events import AlertEvent, DriftEventRecord, ScoreEvent, TransactionEvent
from schemas.fast import FastDecoder
from schemas.topics import ALERTS, DRIFT, SCORES, SENT_AT_HEADER, TopicSpec
from streaming.message import header_of, value_of
from streaming.metrics import count_alerts
from streaming.producer import delivery_errors, is_transactional, produce
from streaming.service import Decoded, Rewind

log = logging.getLogger(__name__)


def _key_field(spec: TopicSpec) -> str:
    assert spec.key is not None, f"{spec.name} has no key"
    return spec.key


SCORE_KEY, ALERT_KEY = _key_field(SCORES), _key_field(ALERTS)  # same card -> same partition
TRANSACTION_DECODER = FastDecoder(TransactionEvent)
DRIFT_KEY = _key_field(DRIFT)


# The fields of a transaction the features take, read from a batch's events a column at a time.
_FEATURE_FIELDS = ("card_token", "event_time", "amt", "category", "birth_year", "city_pop", "trans_num")
_PARTITION, _OFFSET, _HEADERS = methodcaller("partition"), methodcaller("offset"), methodcaller("headers")


def _columns(events: list[Any], fields: tuple[str, ...]) -> list[list[Any]]:
    """One list per field of the events, read in C (an attribute getter mapped over them)."""
    return [list(map(attrgetter(name), events)) for name in fields]


def process_name() -> str:
    """host:pid, naming the scorer process that detected a drift (each watches its own partitions)."""
    return f"{socket.gethostname()}:{os.getpid()}"


_MICROSECOND = timedelta(microseconds=1)


def _epoch_micros(event_times: list[datetime]) -> np.ndarray:
    """Microseconds since the epoch of naive event times, by pandas' converter (numpy's takes ~20x
    longer); a small batch's by datetime arithmetic (pandas' converter costs ~0.15 ms a call)."""
    if len(event_times) <= SMALL_BATCH:
        # A time zone makes the subtraction raise TypeError, as pandas' check below does.
        return np.fromiter(((t - EPOCH) // _MICROSECOND for t in event_times), np.int64, len(event_times))
    index = pd.DatetimeIndex(event_times)
    if index.tz is not None:
        raise TypeError("an event time with a time zone")
    return index.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _epoch_seconds(event_times: list[datetime]) -> tuple[np.ndarray, bool]:
    """Epoch seconds of event times, as :func:`model.features.epoch_seconds` counts them, and
    whether every one is a whole second (the producer's form)."""
    try:
        micros = _epoch_micros(event_times)
    except (TypeError, ValueError):  # not the usual naive datetimes: numpy's converter decides, as it did
        micros = np.array(event_times, dtype="datetime64[us]").astype(np.int64)
    if not (micros % 1_000_000).any():  # whole seconds: no rounding question
        return micros // 1_000_000, True
    return np.array([epoch_seconds(t) for t in event_times], dtype=np.int64), False


def _event_time_texts(event_times: list[datetime], seconds: np.ndarray, whole_seconds: bool) -> list[str]:
    """``isoformat()`` of each event time: for naive whole seconds (``seconds`` holds them exactly),
    the one form numpy writes them in, a column at a time."""
    if whole_seconds:
        return np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    return [t.isoformat() for t in event_times]


def _as_datetime(t: datetime | float) -> datetime:
    """A drift monitor's clock reading as an event time (this scorer feeds it epoch seconds)."""
    return t if isinstance(t, datetime) else event_time_of(t)


class CardWrites:
    """A checkpoint's card writes running in the background (``ScorerService.start_flush``)."""

    def __init__(self, cache: BehaviorCache, states: dict[str, CardBehavior], loaded: dict[str, int],
                 future: Future[tuple[list[str], BaseException | None]]):  # fmt: skip
        # ``loaded``: each state's version when written, the one the write is conditioned on.
        self.cache, self.states, self.loaded, self.future = cache, states, loaded, future

    def done(self) -> bool:
        return self.future.done()

    def finish(self) -> None:
        """The written states move to their new version; the others are changed-since-the-checkpoint again."""
        try:
            written, error = self.future.result()
        except Exception as exc:  # noqa: BLE001 - the writer failed (its process died): none known written
            written, error = [], exc
        self.cache.saving.clear()
        for token in written:
            self.states[token].version = self.loaded[token] + 1
        for token in self.loaded.keys() - set(written):
            if self.cache.get(token) is self.states[token]:  # not dropped (a rebalance) meanwhile
                self.cache.dirty.add(token)
        if isinstance(error, StaleStateError):
            raise Rewind(str(error)) from error
        if error is not None:
            raise error


class ScorerService:
    """Scores every transaction against its card's behaviour.

    Card states live in memory between checkpoints; ``flush`` writes the changed
    ones to DynamoDB (one fenced write per card), after which the loop commits.
    A crash loses only uncommitted work, which Kafka redelivers: the per-card
    watermark makes the already-written part a no-op.
    """

    name = "scorer"
    assigned_partitions: tuple[int, ...] = ()  # from the consumer's assignment

    def __init__(
        self,
        topic: str,
        scores_topic: str,
        alerts_topic: str,
        store: BehaviorStore,
        model: Ensemble,
        producer: Producer,
        *,
        threshold: float | None = None,
        cache_capacity: int = 200_000,
        online_checkpoint: OnlineCheckpoint | None = None,
        shadow: Ensemble | None = None,
        registry: ModelRegistry | None = None,
        model_poll_s: float = 5.0,
        namespace: str = "",
        drift_topic: str | None = None,
        instance: str | None = None,
        partition_count: int | None = None,
        card_writer: CardWriter | None = None,
    ):
        self.topics = [topic]
        self.scores_topic, self.alerts_topic = scores_topic, alerts_topic
        # Where detected drift is published (None: only logged and counted), and who detected it.
        self.drift_topic, self.instance = drift_topic, instance or process_name()
        self.store, self.model, self.producer = store, model.prepare(), producer
        self.threshold = threshold
        self.partition_count = partition_count  # of the input topic: a scorer's share of the stream
        self.cache = BehaviorCache(cache_capacity)
        # Where a checkpoint's card writes run: a child process (see CardWriter), or else a thread.
        self.card_writer = card_writer
        self._writer: ThreadPoolExecutor | None = None  # without a card writer: a thread, one checkpoint at a time
        self._card_writes: Future[tuple[list[str], BaseException | None]] | None = None  # the last one started
        self.evicted_unsaved = 0  # states written to DynamoDB ahead of a checkpoint to bound the cache
        self.scored = 0
        self.alerted = 0
        self.drift_events = 0
        self.online_checkpoint = online_checkpoint
        self._online_learned = False  # since the last save
        if online_checkpoint is not None:
            online_checkpoint.restore(model)
        # The shadow scores the same features, on its own copy of every detector: it raises
        # no alerts, and its online learning never touches the current model.
        self.shadow = shadow.prepare() if shadow is not None else None
        self.registry, self.namespace = registry, namespace
        self.watcher: Watcher[Pointers] | None = None
        self.learned_watcher: Watcher[str | None] | None = None
        self.learned: OnlineClassifier | None = None
        if registry is not None:
            self.watcher = Watcher(registry.pointers, model_poll_s)
            # The learner's snapshots: every scorer of the namespace scores with the same one.
            self.learned_watcher = Watcher(lambda: registry.learned_version(namespace), model_poll_s)
            self._use_learned(registry.load_learned(namespace))

    def save_online(self) -> None:
        """Merge what the online detector learned into the checkpoint the group's scorers share.

        Called with every checkpoint, before the offsets commit: a process killed after its
        last save loses only the learning of events the next owner consumes again.
        """
        if self.online_checkpoint is None or not self._online_learned:
            return
        self.online_checkpoint.save(self.model, writer=not self.assigned_partitions or 0 in self.assigned_partitions)
        self._online_learned = False

    def decode(self, message: Message) -> Any:
        """The ``TransactionEvent`` of the message, as a msgspec struct (the model's fields and values)."""
        return TRANSACTION_DECODER.decode_or_model(value_of(message))

    def decode_many(self, messages: list[Message]) -> list[Any]:
        """``decode`` of a whole batch (patterns checked a column at a time); an invalid message's error instead."""
        return TRANSACTION_DECODER.many_or_model([value_of(m) for m in messages])

    def process(self, batch: list[Decoded]) -> None:
        self.refresh_models()  # between batches: a promoted model scores the very next one
        self._write_back_overflow()
        events = [d.event for d in batch]
        messages = [d.message for d in batch]
        columns = _columns(events, _FEATURE_FIELDS)
        card_tokens, event_times, amts, categories, birth_years, city_pops, trans_nums = columns
        tokens = list(dict.fromkeys(card_tokens))
        missing = [t for t in tokens if t not in self.cache]
        if missing:
            self.cache.update(self.store.load_many(missing))
        times, whole_seconds = _epoch_seconds(event_times)
        partition_list, offsets = list(map(_PARTITION, messages)), list(map(_OFFSET, messages))
        assert None not in partition_list and None not in offsets, "an error event, not a message"
        X = featurize_columns(
            card_tokens,
            times.tolist(),
            amts,
            categories,
            birth_years,
            city_pops,
            list(zip(partition_list, offsets, strict=True)),
            trans_nums,
            self.cache,
            self.model.category_norms,
        )
        self.cache.touch(tokens)
        partitions = np.array(partition_list, dtype=np.int64)  # in event-time order each
        for budget in self._budgets():  # also the budget of a model swapped in since the assignment
            budget.expect_sources(self.assigned_partitions)
        result = self.model.score_batch(X, self.threshold, times, partitions)
        self._online_learned = True
        shadow = self.shadow.score_batch(X, None, times, partitions) if self.shadow is not None else None
        self._report_drift(result.drift)
        flagged = np.flatnonzero(result.flagged).tolist()
        reasons = [""] * len(events)
        if flagged:
            contexts = [EventContext(events[i].amt, events[i].category, event_times[i]) for i in flagged]
            for i, reason in zip(flagged, self.model.explain(X[flagged], contexts), strict=True):
                reasons[i] = reason
        event_time_texts = _event_time_texts(event_times, times, whole_seconds)
        self._emit(batch, X, result, reasons, flagged, shadow, event_time_texts)
        self.alerted += len(flagged)
        count_alerts(len(flagged))  # txguard_alerts_total, once this batch commits
        self.scored += len(events)

    def _emit(
        self,
        batch: list[Decoded],
        X: np.ndarray,
        result: BatchScores,
        reasons: list[str],
        flagged: list[int],
        shadow: BatchScores | None = None,
        event_times: list[str] | None = None,
    ) -> None:
        """One score per event on the scores topic, one alert per flagged event on the alerts topic.

        A score carries the feature row it was computed from, so a learner can later
        join a label with exactly what serving saw; score and alert carry the send
        time of their transaction (``SENT_AT_HEADER``), when it had one. ``event_times`` are the
        events' times as ``isoformat()`` writes them, when the caller has them already.
        """
        events = [d.event for d in batch]
        version = self.model.version
        n = len(events)
        nothing: list[Any] = [None] * n
        trans_nums, card_tokens = _columns(events, ("trans_num", "card_token"))
        if event_times is None:
            event_times = [e.event_time.isoformat() for e in events]
        scores: dict[str, Any] = {
            "trans_num": trans_nums,
            "card_token": card_tokens,
            "event_time": event_times,
            "iforest_score": result.iforest,
            "online_score": result.online,
            "supervised_score": nothing if result.supervised is None else result.supervised,
            "learned_score": nothing if result.learned is None else result.learned,
            "learned_version": [None if result.learned is None or self.learned is None else self.learned.version] * n,
            "score": result.score,
            "threshold": [result.threshold] * n,
            "flagged": result.flagged,
            "reason": reasons,
            "model_version": [version] * n,
            "features": X,
            "shadow_score": shadow.score if shadow is not None else nothing,
            "shadow_version": [self.shadow.version if shadow is not None and self.shadow else None] * n,
        }
        headers = list(map(_HEADERS, (d.message for d in batch)))
        if any(headers):
            sent_at = [header_of(d.message, SENT_AT_HEADER) for d in batch]
        else:  # no message has a header, as from a producer that stamps none
            sent_at = [None] * n
        self._produce(self.scores_topic, scores[SCORE_KEY], ScoreEvent.encode_columns(scores), sent_at)
        if not flagged:
            return
        alerted = [events[i] for i in flagged]
        score = result.score.tolist()
        alerts: dict[str, list[Any]] = {
            "trans_num": [e.trans_num for e in alerted],
            "card_token": [e.card_token for e in alerted],
            "card_masked": [e.card_masked for e in alerted],
            "event_time": [event_times[i] for i in flagged],
            "amt": [e.amt for e in alerted],
            "category": [e.category for e in alerted],
            "merchant": [e.merchant for e in alerted],
            "score": [score[i] for i in flagged],
            "reason": [reasons[i] for i in flagged],
            "model_version": [version] * len(flagged),
        }
        alerts_sent_at = [sent_at[i] for i in flagged]
        self._produce(self.alerts_topic, alerts[ALERT_KEY], AlertEvent.encode_columns(alerts), alerts_sent_at)

    def _report_drift(self, detected: list[DriftEvent]) -> None:
        """Log, count and publish the changes the drift monitor found in this batch (rarely any)."""
        for drift in detected:
            log.warning("drift in %s at %s: mean %.4g -> %.4g", drift.quantity, drift.detected_at_event_time,
                        drift.mean_before, drift.mean_after)  # fmt: skip
        self.drift_events += len(detected)
        if self.drift_topic is None or not detected:
            return
        records = [
            DriftEventRecord.of(
                detected_at=_as_datetime(d.detected_at_event_time),
                quantity=d.quantity,
                mean_before=d.mean_before,
                mean_after=d.mean_after,
                model_version=self.model.version,
                scorer=self.instance,
            )
            for d in detected
        ]
        # Produced with the batch's scores: the loop's checkpoint flushes them before committing.
        self._produce(self.drift_topic, [getattr(r, DRIFT_KEY) for r in records], [r.to_json() for r in records])

    def _produce(
        self, topic: str, keys: Sequence[str], values: list[bytes], sent_at: Sequence[bytes | None] | None = None
    ) -> None:
        producer = self.producer
        if sent_at is None:
            for key, value in zip(keys, values, strict=True):
                produce(producer, topic, value, key.encode())
            return
        for key, value, at in zip(keys, values, sent_at, strict=True):
            if at is None:
                produce(producer, topic, value, key.encode())
            else:
                produce(producer, topic, value, key.encode(), headers=[(SENT_AT_HEADER, at)])

    def _write_back_overflow(self) -> None:
        """Keep the card cache bounded: write the oldest unsaved states beyond its capacity to
        DynamoDB, then drop them (they load again from there when their card comes back).

        Done before a batch, so a failure retries a batch with nothing of it done yet. The
        outputs scored from those states are delivered first, as a checkpoint does (a crash
        after the write redelivers events the watermark marks applied: their scores are
        already stored). With a transactional producer those outputs are not committed until
        the checkpoint, so the states wait for it too, and the cache holds them until then.
        """
        overflow = self.cache.overflow()
        if not overflow or is_transactional(self.producer):
            return
        if self.cache.saving:  # the overflow waits for the checkpoint writing in the background
            if self._card_writes is not None:
                # The card writer is behind the stream: wait for it rather than grow the cache
                # (the loop settles the checkpoint after this batch; the overflow goes before the next).
                wait([self._card_writes])
            return
        failed_before = delivery_errors(self.producer)
        if self.producer.flush(30) > 0:
            return  # the broker is slow: the checkpoint will write them
        if delivery_errors(self.producer) > failed_before:
            raise Rewind("some outputs were not delivered")
        try:
            self.store.save_many({t: self.cache[t] for t in overflow})
        except StaleStateError as exc:
            raise Rewind(str(exc)) from exc
        self.cache.drop_saved(overflow)
        self.evicted_unsaved += len(overflow)

    def flush(self) -> None:
        if self.cache.dirty:
            try:
                self.store.save_many({t: self.cache[t] for t in self.cache.dirty})
            except StaleStateError as exc:
                raise Rewind(str(exc)) from exc
            self.cache.dirty.clear()
        self.save_online()

    def start_flush(self) -> CardWrites:
        """``flush``, the card writes in the background: the changed states are pickled now (scoring
        goes on changing them), then encoded and written while the next batches are scored (a
        checkpoint of many cards would otherwise hold every event behind it); the loop commits once
        ``CardWrites.finish`` succeeds."""
        self.save_online()  # small, and the detector it reads keeps learning on this thread
        states = {t: self.cache[t] for t in self.cache.dirty}
        snapshot = pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)
        if self.card_writer is not None:
            future = self.card_writer.submit(snapshot)
        else:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
            future = self._writer.submit(write_snapshot, self.store, snapshot)
        self._card_writes = future
        # Only once submitted: a writer that cannot start leaves them to the foreground checkpoint.
        self.cache.dirty.clear()
        self.cache.saving = set(states)
        return CardWrites(self.cache, states, {t: s.version for t, s in states.items()}, future)

    def refresh_models(self) -> None:
        """Before a batch: take up a newly promoted or shadowed version, and the learner's latest
        snapshot, without a restart.

        The registry's pointers are read at most every ``model_poll_s``; between reads this is a clock check.
        """
        moved = self.watcher.moved() if self.watcher is not None else None
        if moved is not None:
            self._follow(moved)
        if self.learned_watcher is not None and self.learned_watcher.moved() is not None:
            assert self.registry is not None
            try:
                self._use_learned(self.registry.load_learned(self.namespace))
            except Exception as exc:  # keep scoring with the snapshot we have
                log.warning("scorer: cannot load the learner's snapshot (%s): keeping %s", exc,
                            self.learned.version if self.learned is not None else "none")  # fmt: skip

    def _use_learned(self, learned: OnlineClassifier | None) -> None:
        if learned is None:
            return
        if self.learned is None or self.learned.version != learned.version:
            log.info("scorer: online classifier %s (%s labels, %s frauds%s)", learned.version, learned.labels_,
                     learned.frauds_, "" if learned.ready else ", not ready yet")  # fmt: skip
        self.learned = learned
        for model in (self.model, self.shadow):
            if model is not None:
                model.learned = learned

    def _follow(self, moved: Pointers) -> None:
        if moved.current is not None and moved.current != self.model.version:
            # A promoted shadow keeps what it learned from the stream; another version resumes its checkpoint.
            reuse = self.shadow is not None and self.shadow.version == moved.current
            model = self.shadow if reuse else self._load(moved.current)
            if model is not None:
                restored = not reuse and self.online_checkpoint is not None and self.online_checkpoint.restore(model)
                origin = "from shadow" if reuse else "restored" if restored else "from training"
                log.info("scorer: model %s -> %s without restart (online state %s)",
                         self.model.version, model.version, origin)  # fmt: skip
                self.model = model
                if reuse:
                    self.shadow = None
        wanted = moved.shadow if moved.shadow != self.model.version else None
        if wanted != (self.shadow.version if self.shadow is not None else None):
            self.shadow = self._load(wanted) if wanted is not None else None
            log.info("scorer: shadow model %s", self.shadow.version if self.shadow is not None else "none")
        self._use_learned(self.learned)

    def _load(self, version: str) -> Ensemble | None:
        assert self.registry is not None
        try:
            return self.registry.load(version).prepare()
        except Exception as exc:  # a bad version must not stop the stream: keep scoring with what we have
            log.warning("scorer: cannot load model %s (%s): keeping %s", version, exc, self.model.version)
            return None

    def is_transient(self, exc: Exception) -> bool:
        return BehaviorStore.is_transient(exc)

    def _budgets(self) -> list[AlertBudget]:
        return [m.budget for m in (self.model, self.shadow) if m is not None and m.budget is not None]

    def on_assign(self, partitions: list[int]) -> None:
        # The alert budget counts a day complete once every partition read has moved past it.
        self.assigned_partitions = tuple(partitions)
        if self.partition_count and partitions:
            for budget in self._budgets():
                budget.share = len(partitions) / self.partition_count

    def on_revoke(self) -> None:
        # Another consumer may now own some of these cards: reload from DynamoDB.
        self.cache.clear()
        self.assigned_partitions = ()
        if self._online_learned and self.online_checkpoint is not None:
            # Not saved: the events it learned from are consumed again, by this process or another.
            self.online_checkpoint.restore(self.model)
            self._online_learned = False
        for budget in self._budgets():
            budget.forget_sources()

    def close(self) -> None:
        """At shutdown, keep what the online detector learned, and stop the card writer."""
        self.save_online()
        if self.card_writer is not None:
            self.card_writer.close()
