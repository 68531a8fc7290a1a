"""Kafka topics: name, what flows through them, the event model and the key."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import AlertEvent, DriftEventRecord, LabelEvent, ScoreEvent, TransactionEvent, _Event


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    # The value's model; None for dead letters, which carry the original bytes.
    model: type[_Event] | None
    # The event field used as the Kafka key: same card -> same partition -> in order.
    key: str | None = "card_token"


TRANSACTIONS = TopicSpec("transactions", "validated, tokenised transactions", TransactionEvent)
SCORES = TopicSpec("scores", "one ensemble score per transaction", ScoreEvent)
ALERTS = TopicSpec("alerts", "flagged transactions with the reason", AlertEvent)
LABELS = TopicSpec("labels", "is_fraud released after a delay (chargeback feedback)", LabelEvent)
# Keyed by quantity: the detections of one quantity stay in order.
DRIFT = TopicSpec("drift", "changes in the score or feature distributions, from the scorers", DriftEventRecord,
                  "quantity")  # fmt: skip
DLQ = TopicSpec("txguard.dlq", "rejected rows and unusable messages, with DeadLetter headers", None, None)

ALL_TOPICS = (TRANSACTIONS, SCORES, ALERTS, LABELS, DRIFT, DLQ)

# When the producer sent a transaction: epoch nanoseconds as ASCII digits. The scorer copies
# it onto the score and the alert of that transaction, so latency is measured end to end.
SENT_AT_HEADER = "txguard-sent-at"
