"""``persist``: transactions, scores and labels -> PostgreSQL, idempotent on trans_num."""

from __future__ import annotations

from confluent_kafka import Message

from consumers.loop import Decoded
from consumers.sinks import PostgresSink
from schemas.events import LabelEvent, ScoreEvent, TransactionEvent

_TXN_COLUMNS = tuple(TransactionEvent.model_fields) + ("kafka_partition", "kafka_offset")
_SCORE_COLUMNS = tuple(ScoreEvent.model_fields)
_LABEL_COLUMNS = tuple(LabelEvent.model_fields)


class PersistService:
    name = "persist"

    def __init__(self, topics: dict[str, str], sink: PostgresSink):
        # topics: kind ("transactions" | "scores" | "labels") -> topic name
        self._kind_of = {topic: kind for kind, topic in topics.items()}
        self._models = {"transactions": TransactionEvent, "scores": ScoreEvent, "labels": LabelEvent}
        self.topics = list(topics.values())
        self.sink = sink
        self.rows_written = 0

    def decode(self, message: Message):
        return self._models[self._kind_of[message.topic()]].model_validate_json(message.value())

    def process(self, batch: list[Decoded]) -> None:
        rows: dict[str, list] = {"transactions": [], "scores": [], "labels": []}
        for d in batch:
            kind = self._kind_of[d.message.topic()]
            values = list(d.event.__dict__.values())
            if kind == "transactions":
                values += [d.message.partition(), d.message.offset()]
            rows[kind].append(values)
        columns = {"transactions": _TXN_COLUMNS, "scores": _SCORE_COLUMNS, "labels": _LABEL_COLUMNS}
        inserted = self.sink.write({k: (columns[k], v) for k, v in rows.items() if v})
        self.rows_written += sum(inserted.values())

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, PostgresSink.TRANSIENT)

    def on_revoke(self) -> None:
        return None
