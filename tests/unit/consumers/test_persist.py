"""The persist service: each topic's events to its table, deduplicated on the event's own id."""

from datetime import datetime

import pytest
from pydantic import ValidationError

from consumers.persist import PersistService
from schemas.events import DriftEventRecord, LabelEvent
from streaming.service import Decoded
from tests.unit.streaming.kafka_fakes import FakeMessage

TOPICS = {"transactions": "ns.transactions", "scores": "ns.scores", "labels": "ns.labels", "drift": "ns.drift"}


class RecordingSink:
    def __init__(self):
        self.writes: list[dict] = []

    def write(self, tables):
        self.writes.append(tables)
        return {table: len(rows.docs) for table, rows in tables.items() if rows.docs}


def test_drift_events_fill_their_table_keyed_on_the_drift_id_and_labels_theirs_on_trans_num():
    record = DriftEventRecord.of(detected_at=datetime(2019, 7, 3), quantity="score", mean_before=0.2,
                                 mean_after=0.3, model_version="v1", scorer="host:1")  # fmt: skip
    label = LabelEvent(trans_num="a" * 32, card_token="b" * 32, event_time=datetime(2019, 7, 1), is_fraud=True)
    sink = RecordingSink()
    persist = PersistService(TOPICS, sink)
    assert sorted(persist.topics) == sorted(TOPICS.values())
    messages = [FakeMessage("ns.drift", 1, 7, record.to_json(), b"score"),
                FakeMessage("ns.labels", 0, 3, label.to_json(), b"b" * 32)]  # fmt: skip
    persist.process([Decoded(m, persist.decode(m)) for m in messages])

    (tables,) = sink.writes
    drift = tables["drift_events"]
    assert (drift.key, drift.with_position, drift.docs) == ("drift_id", False, [(record.to_json(), 1, 7)])
    assert tuple(drift.columns) == tuple(DriftEventRecord.model_fields)
    assert (tables["labels"].key, tables["labels"].docs) == ("trans_num", [(label.to_json(), 0, 3)])
    assert tables["transactions"].with_position and not tables["transactions"].docs
    assert persist.rows_written == 2


def test_a_drift_message_that_breaks_the_schema_is_refused_at_decode():
    persist = PersistService(TOPICS, RecordingSink())
    with pytest.raises(ValidationError):
        persist.decode(FakeMessage("ns.drift", value_=b'{"quantity": "score"}'))
