"""``persist``: transactions, scores, labels and drift events -> PostgreSQL, idempotent on each event's id."""

from __future__ import annotations

from confluent_kafka import Message

from consumers.postgres import JsonRows, PostgresSink
from schemas.events import _Event
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
        self.topics = list(topics.values())
        self.sink = sink
        self.rows_written = 0

    def decode(self, message: Message) -> None:
        """Validate against the schema; the sink stores the JSON as it came."""
        self._model_of[topic_of(message)].model_validate_json(value_of(message))

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
