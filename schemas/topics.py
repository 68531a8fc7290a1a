"""Kafka topics: names and what flows through them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    keyed_by_card: bool = True


TRANSACTIONS = TopicSpec("transactions", "validated, tokenised transactions, key = card token")
SCORES = TopicSpec("scores", "one ensemble score per transaction")
ALERTS = TopicSpec("alerts", "flagged transactions with the reason")
LABELS = TopicSpec("labels", "is_fraud released after a delay (chargeback feedback)")
DLQ = TopicSpec("txguard.dlq", "rejected rows and undecodable events, with reason headers", False)

ALL_TOPICS = (TRANSACTIONS, SCORES, ALERTS, LABELS, DLQ)
