"""``persist``: transactions, scores and labels -> PostgreSQL, idempotent on trans_num."""

from __future__ import annotations

from confluent_kafka import Message

from consumers.loop import Decoded
from consumers.sinks import JsonRows, PostgresSink
from schemas.events import LabelEvent, ScoreEvent, TransactionEvent

MODELS = {"transactions": TransactionEvent, "scores": ScoreEvent, "labels": LabelEvent}


class PersistService:
    name = "persist"

    def __init__(self, topics: dict[str, str], sink: PostgresSink):
        # topics: table ("transactions" | "scores" | "labels") -> topic name
        self._table_of = {topic: table for table, topic in topics.items()}
        self.topics = list(topics.values())
        self.sink = sink
        self.rows_written = 0

    def decode(self, message: Message) -> None:
        """Validate against the schema; the sink stores the JSON as it came."""
        MODELS[self._table_of[message.topic()]].model_validate_json(message.value())

    def process(self, batch: list[Decoded]) -> None:
        rows = {
            table: JsonRows(tuple(model.model_fields), with_position=table == "transactions")
            for table, model in MODELS.items()
        }
        for d in batch:
            m = d.message
            rows[self._table_of[m.topic()]].docs.append((m.value(), m.partition(), m.offset()))
        inserted = self.sink.write(rows)
        self.rows_written += sum(inserted.values())

    def flush(self) -> None:
        return None  # every batch is committed to PostgreSQL in process()

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, PostgresSink.TRANSIENT)

    def on_revoke(self) -> None:
        return None
