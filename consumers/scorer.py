"""``scorer``: per-card behaviour (DynamoDB) -> features -> ensemble -> scores and alerts."""

from __future__ import annotations

import logging
import time

import orjson
from confluent_kafka import Message, Producer

from consumers.card_state import BehaviorCache, BehaviorStore, StaleStateError
from model.ensemble import Ensemble
from model.features import epoch_seconds, featurize, txns_from_columns
from model.registry import OnlineCheckpoint
from schemas.events import TransactionEvent
from streaming.producer import produce
from streaming.service import Decoded, Rewind

log = logging.getLogger(__name__)


class ScorerService:
    """Scores every transaction against its card's behaviour.

    Card states live in memory between checkpoints; ``flush`` writes the changed
    ones to DynamoDB (one fenced write per card), after which the loop commits.
    A crash loses only uncommitted work, which Kafka redelivers: the per-card
    watermark makes the already-written part a no-op.
    """

    name = "scorer"

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
        online_checkpoint_every_s: float = 30.0,
    ):
        self.topics = [topic]
        self.scores_topic, self.alerts_topic = scores_topic, alerts_topic
        self.store, self.model, self.producer = store, model, producer
        self.threshold = threshold
        self.cache = BehaviorCache(cache_capacity)
        self.scored = 0
        self.alerted = 0
        self.online_checkpoint = online_checkpoint
        self.online_checkpoint_every_s = online_checkpoint_every_s
        self._online_saved_at = time.monotonic()
        if online_checkpoint is not None:
            online_checkpoint.restore(model)

    def save_online(self) -> None:
        """Checkpoint the online detector (its learned state drifts with the stream)."""
        if self.online_checkpoint is None:
            return
        self.online_checkpoint.save(self.model)
        self._online_saved_at = time.monotonic()

    def decode(self, message: Message) -> TransactionEvent:
        return TransactionEvent.model_validate_json(message.value())

    def process(self, batch: list[Decoded]) -> None:
        events: list[TransactionEvent] = [d.event for d in batch]
        tokens = list(dict.fromkeys(e.card_token for e in events))
        missing = [t for t in tokens if t not in self.cache]
        if missing:
            self.cache.update(self.store.load_many(missing))
        txns = txns_from_columns(
            [e.card_token for e in events],
            [epoch_seconds(e.event_time) for e in events],
            [e.amt for e in events],
            [e.category for e in events],
            [e.birth_year for e in events],
            positions=[(d.message.partition(), d.message.offset()) for d in batch],
            trans_nums=[e.trans_num for e in events],
        )
        X = featurize(txns, self.cache, self.model.category_medians)
        self.cache.touch(tokens)
        result = self.model.score_batch(X, self.threshold)

        version = self.model.version
        for i, e in enumerate(events):
            flagged = bool(result.flagged[i])
            reason = self.model.explain(X[i], e.amt, e.category) if flagged else ""
            key = e.card_token.encode()
            event_time = e.event_time.isoformat()
            score = {
                "trans_num": e.trans_num, "card_token": e.card_token, "event_time": event_time,
                "iforest_score": float(result.iforest[i]), "online_score": float(result.online[i]),
                "score": float(result.score[i]), "flagged": flagged, "reason": reason,
                "model_version": version,
            }  # fmt: skip
            produce(self.producer, self.scores_topic, orjson.dumps(score), key)
            if flagged:
                alert = {
                    "trans_num": e.trans_num, "card_token": e.card_token, "card_masked": e.card_masked,
                    "event_time": event_time, "amt": e.amt, "category": e.category, "merchant": e.merchant,
                    "score": float(result.score[i]), "reason": reason, "model_version": version,
                }  # fmt: skip
                produce(self.producer, self.alerts_topic, orjson.dumps(alert), key)
                self.alerted += 1
        self.scored += len(events)

    def flush(self) -> None:
        if not self.cache.dirty:
            return
        try:
            self.store.save_many({t: self.cache[t] for t in self.cache.dirty})
        except StaleStateError as exc:
            raise Rewind(str(exc)) from exc
        self.cache.dirty.clear()
        if time.monotonic() - self._online_saved_at >= self.online_checkpoint_every_s:
            self.save_online()

    def is_transient(self, exc: Exception) -> bool:
        return BehaviorStore.is_transient(exc)

    def on_revoke(self) -> None:
        # Another consumer may now own some of these cards: reload from DynamoDB.
        self.cache.clear()

    def close(self) -> None:
        """At shutdown, keep what the online detector learned."""
        self.save_online()
