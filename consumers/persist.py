"""``persist``: transactions, scores, labels and drift events -> PostgreSQL, idempotent on each event's id."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

from consumers.postgres import JsonRows, PostgresSink
from schemas.events import _Event
from schemas.fast import FastDecoder
from schemas.topics import DRIFT, LABELS, SCORES, TRANSACTIONS, TopicSpec
from streaming.message import topic_of, value_of
from streaming.service import Decoded

# The table each topic fills: the one of the same name, but for the drift topic,
# whose table says what its rows are.
TABLES: dict[str, TopicSpec] = {
    "transactions": TRANSACTIONS,
    "scores": SCORES,
    "labels": LABELS,
    "drift_events": DRIFT,
}
_TABLE_OF = {spec.name: table for table, spec in TABLES.items()}


def _model(spec: TopicSpec) -> type[_Event]:
    assert spec.model is not None, f"{spec.name} carries no event model"
    return spec.model


class PersistService:
    name = "persist"

    def __init__(self, topics: dict[str, str], sink: PostgresSink):
        # topics: TopicSpec.name ("transactions" | "scores" | "labels" | "drift") -> topic name
        self._table_of = {topic: _TABLE_OF[spec] for spec, topic in topics.items()}
        self._model_of = {topic: _model(TABLES[table]) for topic, table in self._table_of.items()}
        self._decoder_of = {topic: FastDecoder(model) for topic, model in self._model_of.items()}
        self.topics = list(topics.values())
        self.sink = sink
        self.rows_written = 0

    def decode(self, message: Message) -> None:
        """Validate against the schema (msgspec, or the model where msgspec is unsure); the sink stores
        the JSON as it came."""
        self._decoder_of[topic_of(message)].decode_or_model(value_of(message))

    def decode_many(self, messages: list[Message]) -> list[Any]:
        """``decode`` of a whole batch, a topic at a time; an invalid message's error in its place."""
        out: list[Any] = [None] * len(messages)
        by_topic: dict[str, list[int]] = {}
        for i, m in enumerate(messages):
            by_topic.setdefault(topic_of(m), []).append(i)
        for topic, positions in by_topic.items():
            decoded = self._decoder_of[topic].many_or_model([value_of(messages[i]) for i in positions])
            for i, event in zip(positions, decoded, strict=True):
                out[i] = None if not isinstance(event, Exception) else event
        return out

    def process(self, batch: list[Decoded]) -> None:
        rows = {
            table: JsonRows(
                tuple(_model(spec).model_fields),
                with_position=spec is TRANSACTIONS,
                key=_model(spec).IDEMPOTENCY_KEY,
            )
            for table, spec in TABLES.items()
        }
        for d in batch:
            m = d.message
            topic, value, partition, offset = m.topic(), m.value(), m.partition(), m.offset()
            assert topic is not None and value is not None and partition is not None and offset is not None  # decoded
            rows[self._table_of[topic]].docs.append((value, partition, offset))
        inserted = self.sink.write(rows)
        self.rows_written += sum(inserted.values())

    def flush(self) -> None:
        return None  # every batch is committed to PostgreSQL in process()

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, PostgresSink.TRANSIENT)

    def on_revoke(self) -> None:
        return None

    def close(self) -> None:
        return None  # nothing outlives a batch: each one is committed to PostgreSQL
