"""The producer's vectorised JSON is exactly the schema's event, with the CSV's values."""

import csv

import orjson
import pyarrow as pa

from producer.cards import CardProtector
from producer.encode import encode_events
from producer.source import CsvSource
from producer.validate import TransNumSet, validate
from schemas.events import LabelEvent, TransactionEvent

PROTECTOR = CardProtector(b"unit-test-key-0123456789")


def encode_file(path):
    blocks = []
    seen = TransNumSet()
    for chunk in CsvSource(str(path)).chunks():
        verdict = validate(chunk.batch, seen)
        blocks.append(encode_events(chunk.batch.filter(verdict.accepted), chunk.lines, PROTECTOR))
    return blocks


def test_every_event_validates_and_carries_the_csv_values(kaggle_csv):
    (block,) = encode_file(kaggle_csv)
    rows = list(csv.DictReader(kaggle_csv.open()))
    assert len(block.events) == len(rows) == len(block.labels)
    for raw, row, label, key in zip(block.events, rows, block.labels, block.keys, strict=True):
        event = TransactionEvent.model_validate_json(raw)
        assert event.trans_num == row["trans_num"]
        assert event.amt == float(row["amt"]) and f"{event.amt:.2f}" == f"{float(row['amt']):.2f}"
        assert event.merchant == row["merchant"] and event.city == row["city"]
        assert event.card_token.encode() == key == PROTECTOR.protect(row["cc_num"])[0].encode()
        assert event.merch_zipcode == (row["merch_zipcode"].removesuffix(".0") or None)
        assert event.birth_year == int(row["dob"][:4])
        assert row["cc_num"].encode() not in raw
        assert LabelEvent.model_validate_json(label).is_fraud == (row["is_fraud"] == "1")


def test_quotes_backslashes_and_unicode_survive_encoding(kaggle_csv):
    (block,) = encode_file(kaggle_csv)
    batch = next(CsvSource(str(kaggle_csv)).chunks()).batch.slice(0, 1)
    tricky = "fraud_O\"Brien \\ Söhne 🚀 '; DROP TABLE transactions; --"
    batch = batch.set_column(batch.schema.get_field_index("merchant"), "merchant", pa.array([tricky]))
    encoded = encode_events(batch, [2], PROTECTOR)
    assert orjson.loads(encoded.events[0])["merchant"] == tricky
    assert TransactionEvent.model_validate_json(encoded.events[0]).merchant == tricky


def test_kartik_layout_without_merch_zipcode_encodes_null(fraudtest_csv):
    (block,) = encode_file(fraudtest_csv)
    assert all(TransactionEvent.model_validate_json(e).merch_zipcode is None for e in block.events)


def test_a_damaged_date_stays_in_scope_for_validation_to_reject(kaggle_csv):
    from datetime import datetime

    from producer.blocks import in_scope
    from producer.replay import ReplayOptions

    chunk = next(CsvSource(str(kaggle_csv)).chunks())
    col = chunk.batch.schema.get_field_index("trans_date_trans_time")
    dates = chunk.batch.column(col).to_pylist()
    dates[0] = "2/1/2019 1:06"
    batch = chunk.batch.set_column(col, "trans_date_trans_time", pa.array(dates))
    scope = in_scope(batch, chunk.lines, ReplayOptions(start=datetime(2019, 1, 2)))
    assert scope.to_pylist()[0] is True
    assert sum(scope.to_pylist()) == 1 + sum(d >= "2019-01-02" for d in dates[1:])


def test_the_json_is_what_the_models_write(kaggle_csv, fraudtest_csv):
    for path in (kaggle_csv, fraudtest_csv):
        (block,) = encode_file(path)
        for raw, label in zip(block.events, block.labels, strict=True):
            assert orjson.loads(raw) == orjson.loads(TransactionEvent.model_validate_json(raw).to_json())
            assert orjson.loads(label) == orjson.loads(LabelEvent.model_validate_json(label).to_json())


def test_event_keys_follow_the_model(kaggle_csv):
    (block,) = encode_file(kaggle_csv)
    assert list(orjson.loads(block.events[0])) == list(TransactionEvent.model_fields)
    # Labels keep the key order they were always published with (see LABEL_JSON).
    assert sorted(orjson.loads(block.labels[0])) == sorted(LabelEvent.model_fields)


def test_a_mapping_that_does_not_cover_the_model_fails():
    import pytest

    from producer.encode import TRANSACTION_FIELDS, JsonField, JsonTemplate, Kind

    assert JsonTemplate.of(TransactionEvent, TRANSACTION_FIELDS).model is TransactionEvent
    missing = {k: v for k, v in TRANSACTION_FIELDS.items() if k != "amt"}
    with pytest.raises(ValueError, match=r"missing \['amt'\]"):
        JsonTemplate.of(TransactionEvent, missing)
    extra = {**TRANSACTION_FIELDS, "first": JsonField(Kind.TEXT, lambda c: c["first"])}
    with pytest.raises(ValueError, match=r"not in the model \['first'\]"):
        JsonTemplate.of(TransactionEvent, extra)
    quoted_number = {**TRANSACTION_FIELDS, "amt": JsonField(Kind.STRING, lambda c: c["amt"])}
    with pytest.raises(ValueError, match="amt"):
        JsonTemplate.of(TransactionEvent, quoted_number)
    with pytest.raises(ValueError, match="key order"):
        JsonTemplate.of(TransactionEvent, TRANSACTION_FIELDS, key_order=("trans_num",))
