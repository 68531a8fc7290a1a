"""``learner``: delayed labels -> the features each event was scored with -> the online classifier.

One learner per namespace owns the online classifier (``model.online_classifier``).
Each label on the ``labels`` topic is joined with the feature row stored beside its
score in PostgreSQL, so the classifier learns from exactly what serving saw. At
every checkpoint the learner saves its state and publishes a snapshot to the model
registry; every scorer polls for it and scores with the same snapshot, so several
scorers share one learned model instead of each learning its own.

A label whose score is not in PostgreSQL yet (``persist`` is behind) is waited for:
the batch is retried, nothing of it learned, until the scores arrive; one still
missing after ``join_timeout_s`` goes to the dead-letter topic with the reason.

A crash between learning and the commit re-learns those labels once: the
classifier's state is saved at each checkpoint, before the offsets are committed.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
from confluent_kafka import Message, Producer

from consumers.postgres import ScoredFeatures
from model.online_classifier import OnlineClassifier
from model.registry import ModelRegistry
from schemas.events import DeadLetter, LabelEvent
from streaming.deadletter import dead_letter
from streaming.message import offset_of, partition_of, topic_of, value_of
from streaming.service import Decoded

log = logging.getLogger(__name__)


class ScoresNotStoredYet(Exception):
    """Some labels' events have no stored score yet: retry the batch (a transient failure)."""


class LearnerService:
    name = "learner"

    def __init__(
        self,
        topic: str,
        features: Callable[[Sequence[str]], dict[str, list[float]]],
        registry: ModelRegistry,
        producer: Producer,
        dlq_topic: str,
        *,
        namespace: str = "",
        join_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.topics = [topic]
        self.features, self.registry, self.namespace = features, registry, namespace
        self.producer, self.dlq_topic = producer, dlq_topic
        self.join_timeout_s, self.clock = join_timeout_s, clock
        saved = registry.load_learner_state(namespace)
        self.classifier: OnlineClassifier = saved if saved is not None else self._initial()
        log.info("learner: %s %s", "resuming" if saved is not None else "starting from", self.classifier.describe())
        self.waiting_since: dict[str, float] = {}  # trans_num -> when its score was first missing
        self.unpublished = 0  # labels learned since the last snapshot
        self.learned = 0
        self.dead_lettered = 0

    def _initial(self) -> OnlineClassifier:
        """The classifier the current model was trained with (on its labelled history), else a new one."""
        try:
            trained = self.registry.load_current().learned
        except FileNotFoundError:
            trained = None
        return copy.deepcopy(trained) if trained is not None else OnlineClassifier()

    def decode(self, message: Message) -> LabelEvent:
        return LabelEvent.model_validate_json(value_of(message))

    def process(self, batch: list[Decoded]) -> None:
        labels: list[LabelEvent] = [d.event for d in batch]
        found = self.features([label.trans_num for label in labels])
        missing = [i for i, label in enumerate(labels) if label.trans_num not in found]
        if missing:
            self._wait_or_give_up(batch, missing)
        joined = sorted((i for i, label in enumerate(labels) if label.trans_num in found),
                        key=lambda i: labels[i].event_time)  # fmt: skip
        for label in labels:
            self.waiting_since.pop(label.trans_num, None)
        if not joined:
            return
        X = np.array([found[labels[i].trans_num] for i in joined], dtype=np.float64)
        y = np.array([labels[i].is_fraud for i in joined], dtype=bool)
        self.classifier.learn_many(X, y, learned_until=labels[joined[-1]].event_time.isoformat())
        self.unpublished += len(joined)
        self.learned += len(joined)

    def _wait_or_give_up(self, batch: list[Decoded], missing: list[int]) -> None:
        """Raise while a missing score may still arrive; dead-letter the labels that waited too long."""
        now = self.clock()
        for i in missing:
            self.waiting_since.setdefault(batch[i].event.trans_num, now)
        overdue = [i for i in missing if now - self.waiting_since[batch[i].event.trans_num] >= self.join_timeout_s]
        if len(overdue) < len(missing):
            first = next(i for i in missing if i not in overdue)
            raise ScoresNotStoredYet(
                f"{len(missing) - len(overdue)} labels wait for their scores in PostgreSQL"
                f" (first: {batch[first].event.trans_num})"
            )
        for i in overdue:
            message = batch[i].message
            record = DeadLetter(
                service=self.name,
                source=topic_of(message),
                partition=partition_of(message),
                offset=offset_of(message),
                error_class="ScoreNotFound",
                reason=f"no stored score with features for trans_num {batch[i].event.trans_num}"
                f" after {self.join_timeout_s:g}s: the label cannot be joined with what serving saw",
            )
            dead_letter(self.producer, self.dlq_topic, message.value(), message.key(), record)
        self.dead_lettered += len(overdue)

    def flush(self) -> None:
        """Save the learner's state, then publish a snapshot for the scorers (when it learned something)."""
        if not self.unpublished:
            return
        snapshot = self.classifier.snapshot()
        self.registry.save_learner_state(self.classifier, self.namespace)
        self.registry.publish_learned(snapshot, self.namespace)
        log.info("learner: published %s", snapshot.describe())
        self.unpublished = 0

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, (ScoresNotStoredYet, *ScoredFeatures.TRANSIENT))

    def on_revoke(self) -> None:
        return None  # one model for all partitions: nothing is cached per partition

    def close(self) -> None:
        return None  # the loop's last checkpoint saved and published the state
