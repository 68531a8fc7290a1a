"""The msgspec decoder never accepts what the event model refuses, and gives the model's values."""

import gzip
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from producer.cards import CardProtector
from producer.encode import encode_events
from producer.source import CsvSource
from schemas.events import EVENT_MODELS, ScoreEvent, TransactionEvent, _Event
from schemas.fast import COLUMN_WISE_FROM, FastDecoder

FIXTURES = Path(__file__).parents[2] / "fixtures"
ODD_VALUES = [None, True, 0, 1, -1, 4.0, 1.5, 1e400, -1e400, 2**40, "", "x", "x\n", "a\x00b", "F\n", "M",
              "0" * 32, "0" * 32 + "\n", "AB", "12345", "1234\n", "2019-01-01T00:00:00", "2019-01-01 00:00:00",
              "2019-01-01T00:00:00\n", "2019-02-30T00:00:00", "2019-01-01T00:00", "2019-01-01T00:00:00.5",
              "2019-01-01T00:00:00Z", "2019-01-01T00:00:00.1234567", "home", "x" * 201, "x" * 501, [], [1.0],
              [1, 2.5], ["1"], [None], {}, "\ud800"]  # fmt: skip


def valid_documents() -> dict[type[_Event], dict]:
    chunk = next(CsvSource(str(FIXTURES / "kaggle_rows2301_2900.csv")).chunks())
    block = encode_events(chunk.batch, chunk.lines, CardProtector(b"unit-test-key-0123456789"))
    golden = [orjson.loads(line) for line in gzip.decompress((FIXTURES / "scorer_golden.jsonl.gz").read_bytes())
              .splitlines()]  # fmt: skip
    return {
        TransactionEvent: orjson.loads(block.events[0]),
        ScoreEvent: next(r["value"] for r in golden if r["topic"] == "scores" and r["value"]["flagged"]),
    }


def check(decoder: FastDecoder, raw: bytes) -> bool:
    """Whether the fast path accepted ``raw``; if it did, the model accepts it with the same values."""
    record = decoder.decode_many([raw])[0]
    if record is None:  # refused: the model decides
        return False
    event = decoder.model.model_validate_json(raw)  # raises if the fast path was looser than the model
    assert {f: getattr(record, f) for f in record.__struct_fields__} == event.model_dump()
    return True


@pytest.mark.parametrize("model", [TransactionEvent, ScoreEvent])
def test_every_variant_of_every_field_is_accepted_only_if_the_model_accepts_it_and_with_its_values(model):
    decoder, doc = FastDecoder(model), valid_documents()[model]
    assert check(decoder, orjson.dumps(doc))
    raws = []
    for name in doc:
        variants = [{**doc, name: value} for value in ODD_VALUES] + [{k: v for k, v in doc.items() if k != name}]
        for variant in variants:
            raws.append(
                orjson.dumps(variant) if "\ud800" not in variant.values() else _with_lone_surrogate(variant, name)
            )
    one_by_one = [check(decoder, raw) for raw in raws]  # patterns by Python's re
    assert 20 < sum(one_by_one)  # some variants are valid (another id, None for an optional field, ...)
    assert len(raws) >= COLUMN_WISE_FROM
    in_a_batch = decoder.decode_many(raws)  # patterns a column at a time, by RE2
    assert [r is not None for r in in_a_batch] == one_by_one
    for raw, record in zip(raws, in_a_batch, strict=True):
        if record is not None:
            assert {f: getattr(record, f) for f in record.__struct_fields__} == decoder.model.model_validate_json(
                raw
            ).model_dump()
    assert not check(decoder, orjson.dumps({**doc, "extra": 1}))
    assert not check(decoder, orjson.dumps(doc) + b"\n{}")


def _with_lone_surrogate(doc: dict, name: str) -> bytes:
    return orjson.dumps({**doc, name: "@"}).replace(b'"@"', b'"\\ud800"')


def test_a_refused_message_gets_the_models_error_and_an_unusual_valid_one_the_models_values():
    decoder, doc = FastDecoder(TransactionEvent), valid_documents()[TransactionEvent]
    with pytest.raises(ValidationError, match="amt"):
        decoder.decode_or_model(orjson.dumps({**doc, "amt": -1.0}))
    unusual = decoder.decode_or_model(orjson.dumps({**doc, "event_time": "2019-01-01 00:00"}))  # the model's only
    assert unusual.event_time == datetime(2019, 1, 1) and unusual.trans_num == doc["trans_num"]


def test_in_a_batch_only_the_messages_the_fast_path_refuses_go_to_the_model():
    decoder, doc = FastDecoder(TransactionEvent), valid_documents()[TransactionEvent]
    raws = [orjson.dumps({**doc, "trans_num": f"{i:032x}"}) for i in range(5)]
    raws[1] = orjson.dumps({**doc, "zip": "1234\n"})  # a pattern fails
    raws[3] = orjson.dumps({**doc, "event_time": "2019-01-01 00:00"})  # the model's form only
    fast = decoder.decode_many(raws)
    assert [r is None for r in fast] == [False, True, False, True, False]
    assert [r.trans_num for r in fast if r is not None] == [f"{i:032x}" for i in (0, 2, 4)]
    decoded = decoder.many_or_model(raws)
    assert isinstance(decoded[1], ValidationError) and "zip" in str(decoded[1])
    assert decoded[3].event_time == datetime(2019, 1, 1) and decoded[4].trans_num == f"{4:032x}"


def test_every_event_model_has_a_fast_decoder_with_its_fields_in_order():
    for model in EVENT_MODELS.values():
        assert FastDecoder(model).struct.__struct_fields__ == tuple(model.model_fields)


def test_columns_encode_to_the_bytes_of_one_orjson_dict_per_event():
    rng = np.random.default_rng(0)
    n = 300
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    floats[:4] = [0.0, -0.0, 1e16, 1e-5]
    texts = ["", "a,b", 'quote " and \\ back', "tab\tnew\nline", "\u00e9t\u00e9 \U0001f600", "],[", "%s %d"]
    columns = {
        "trans_num": [f"{i:032x}" for i in range(n)],
        "card_token": ["c" * 32] * n,  # equal values, distinct objects
        "event_time": ["2019-01-01T00:00:00"] * n,
        "iforest_score": floats,
        "online_score": floats.tolist(),
        "supervised_score": [None] * n,
        "learned_score": [None if i % 3 else float(i) for i in range(n)],
        "learned_version": ["online-3"] * n,
        "score": rng.random((n, 2))[:, 1],  # a view: not contiguous
        "threshold": [0.5] * n,
        "flagged": rng.random(n) > 0.5,
        "reason": [texts[i % len(texts)] for i in range(n)],
        "model_version": ["v1"] * n,
        "features": rng.standard_normal((n, 28)),
        "shadow_score": [True, 1, 1.0] * (n // 3),  # equal, not the same JSON
        "shadow_version": [None] * n,
    }
    # Strings without a quote are written by one orjson call per column and split: escapes, commas,
    # brackets and empty strings must not move the cut.
    unquoted = [t for t in texts if '"' not in t] + ["back \\ slash", "\x00\x1f", ", ],["]
    for reason in ([texts[i % len(texts)] for i in range(n)], [unquoted[i % len(unquoted)] for i in range(n)]):
        columns["reason"] = reason
        as_lists = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in columns.items()}
        expected = [orjson.dumps(dict(zip(ScoreEvent.model_fields, row, strict=True)))
                    for row in zip(*(as_lists[f] for f in ScoreEvent.model_fields), strict=True)]  # fmt: skip
        assert ScoreEvent.encode_columns(columns) == expected
        assert ScoreEvent.encode_columns({k: v[:1] for k, v in columns.items()}) == expected[:1]
    assert ScoreEvent.encode_columns({k: v[:0] for k, v in columns.items()}) == []
    with pytest.raises(ValueError, match="lengths"):
        ScoreEvent.encode_columns({**columns, "reason": columns["reason"][:-1]})


@pytest.mark.parametrize("size", [5, COLUMN_WISE_FROM + 6])
def test_a_batch_every_message_of_which_decodes_still_refuses_a_date_that_does_not_exist(size):
    decoder, doc = FastDecoder(TransactionEvent), valid_documents()[TransactionEvent]
    raws = [orjson.dumps({**doc, "trans_num": f"{i:032x}", "event_time": f"2019-02-{i % 28 + 1:02d}T10:00:00"})
            for i in range(size)]  # fmt: skip
    assert all(isinstance(r.event_time, datetime) for r in decoder.decode_many(raws))
    raws[2] = orjson.dumps({**doc, "event_time": "2019-02-30T10:00:00"})  # the pattern's form, no such day
    fast = decoder.decode_many(raws)
    assert [r is None for r in fast] == [i == 2 for i in range(size)]
    assert fast[3].event_time == datetime(2019, 2, 4, 10)
    assert isinstance(decoder.many_or_model(raws)[2], ValidationError)
