from datetime import datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas.__main__ import JSON_DIR, json_schemas
from schemas.events import EVENT_MODELS, DeadLetter, DriftEventRecord, TransactionEvent
from schemas.topics import ALL_TOPICS, DRIFT


def test_committed_json_schemas_match_the_models():
    for filename, text in json_schemas().items():
        assert (JSON_DIR / filename).read_text() == text, f"run `python -m schemas` to refresh {filename}"


def test_every_transaction_field_documents_its_purpose():
    assert all(field.description for field in TransactionEvent.model_fields.values())


def test_every_event_names_a_field_of_its_own_as_the_sinks_idempotency_key():
    assert all(model.IDEMPOTENCY_KEY in model.model_fields for model in EVENT_MODELS.values())
    assert DriftEventRecord.IDEMPOTENCY_KEY == "drift_id"


DETECTION = {
    "detected_at": datetime(2019, 7, 3, 12, 30),
    "quantity": "score",
    "mean_before": 0.21,
    "mean_after": 0.34,
    "model_version": "20260101T000000Z",
    "scorer": "host:123",
}


def test_a_drift_record_id_is_a_hash_of_the_detection_so_a_repeat_is_the_same_row():
    record = DriftEventRecord.of(**DETECTION)
    assert record == DriftEventRecord.of(**DETECTION)
    assert DriftEventRecord.model_validate_json(record.to_json()) == record
    assert len(record.drift_id) == 32 and all(field.description for field in DriftEventRecord.model_fields.values())
    changed = [
        DriftEventRecord.of(**{**DETECTION, key: value})
        for key, value in [("detected_at", datetime(2019, 7, 3, 12, 31)), ("quantity", "log_amt"),
                           ("mean_before", 0.2100001), ("mean_after", 0.35), ("model_version", "v2"),
                           ("scorer", "host:124")]
    ]  # fmt: skip
    assert len({record.drift_id, *(c.drift_id for c in changed)}) == 1 + len(changed)


@pytest.mark.parametrize(
    "change",
    [{"drift_id": "x" * 32}, {"detected_at": 1562157000}, {"detected_at": "2019-07-03T12:30:00+02:00"},
     {"mean_after": None}, {"quantity": 1}, {"extra": "field"}],
)  # fmt: skip
def test_a_drift_record_is_as_strict_as_every_event(change):
    doc = DriftEventRecord.of(**DETECTION).model_dump(mode="json")
    assert DriftEventRecord.model_validate_json(orjson.dumps(doc))
    with pytest.raises(ValidationError):
        DriftEventRecord.model_validate_json(orjson.dumps({**doc, **change}))


def test_the_drift_topic_is_created_with_the_others_and_carries_drift_records():
    assert DRIFT in ALL_TOPICS and DRIFT.model is DriftEventRecord
    assert DRIFT.key in DriftEventRecord.model_fields


def test_a_dead_letter_reason_from_any_other_error_is_its_first_line():
    error = ValueError('null value in column "amt" violates not-null constraint\nDETAIL:  Failing row contains (...)')
    assert DeadLetter.reason_of(error) == 'null value in column "amt" violates not-null constraint'
    assert DeadLetter.reason_of(KeyError()) == "KeyError"
