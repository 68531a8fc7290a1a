"""Validated CSV blocks -> the JSON of TransactionEvent and LabelEvent, vectorised.

The JSON layout comes from the event models: keys in the order of
``model_fields`` (labels keep their published order, see ``LABEL_JSON``), each
written from a CSV column expression below. A template
builds, once per model, the literal text between the values, so a whole block is
encoded by one ``binary_join_element_wise`` per event kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector
from schemas.events import LabelEvent, TransactionEvent, _Event

Columns = Mapping[str, pa.Array]  # the block's CSV columns, plus card_token and card_masked


class Kind(Enum):
    """How a column's text becomes a JSON value."""

    STRING = "string"  # validated text that needs no escaping (ids, codes, dates): quoted
    TEXT = "text"  # free text (validated: no control characters): escaped and quoted
    NUMBER = "number"  # validated to be a JSON number already: as is
    JSON = "json"  # the expression already yields JSON literals (null, true, "...")


@dataclass(frozen=True)
class JsonField:
    """One event field: how it is written, and the expression over the block that gives it."""

    kind: Kind
    column: Callable[[Columns], pa.Array | pa.Scalar]


def _csv(name: str) -> Callable[[Columns], pa.Array]:
    return lambda c: c[name]


def _event_time(c: Columns) -> pa.Array:
    return pc.replace_substring(c["trans_date_trans_time"], " ", "T")


def _merch_zipcode(c: Columns) -> pa.Array | pa.Scalar:
    zips = c.get("merch_zipcode")
    if zips is None:  # the kartik2112 layout has no merch_zipcode column
        return pa.scalar("null")
    digits = pc.replace_substring_regex(zips, r"\.0$", "")
    return pc.if_else(pc.equal(zips, ""), "null", pc.binary_join_element_wise('"', digits, '"', ""))


def _birth_year(c: Columns) -> pa.Array:
    return pc.utf8_slice_codeunits(c["dob"], 0, 4)


def _is_fraud(c: Columns) -> pa.Array:
    return pc.if_else(pc.equal(c["is_fraud"], "1"), "true", "false")


# Event field -> how it is written from the CSV. Every field of the model, no other.
TRANSACTION_FIELDS: dict[str, JsonField] = {
    "trans_num": JsonField(Kind.STRING, _csv("trans_num")),
    "event_time": JsonField(Kind.STRING, _event_time),
    "card_token": JsonField(Kind.STRING, _csv("card_token")),
    "card_masked": JsonField(Kind.STRING, _csv("card_masked")),
    "merchant": JsonField(Kind.TEXT, _csv("merchant")),
    "category": JsonField(Kind.STRING, _csv("category")),
    "amt": JsonField(Kind.NUMBER, _csv("amt")),
    "gender": JsonField(Kind.STRING, _csv("gender")),
    "city": JsonField(Kind.TEXT, _csv("city")),
    "state": JsonField(Kind.STRING, _csv("state")),
    "zip": JsonField(Kind.STRING, _csv("zip")),
    "lat": JsonField(Kind.NUMBER, _csv("lat")),
    "long": JsonField(Kind.NUMBER, _csv("long")),
    "city_pop": JsonField(Kind.NUMBER, _csv("city_pop")),
    "birth_year": JsonField(Kind.NUMBER, _birth_year),
    "merch_lat": JsonField(Kind.NUMBER, _csv("merch_lat")),
    "merch_long": JsonField(Kind.NUMBER, _csv("merch_long")),
    "merch_zipcode": JsonField(Kind.JSON, _merch_zipcode),
}
LABEL_FIELDS: dict[str, JsonField] = {
    "trans_num": TRANSACTION_FIELDS["trans_num"],
    "event_time": TRANSACTION_FIELDS["event_time"],
    "card_token": TRANSACTION_FIELDS["card_token"],
    "is_fraud": JsonField(Kind.JSON, _is_fraud),
}


@dataclass(frozen=True)
class JsonTemplate:
    """The JSON of one event model as alternating literal text and column values."""

    model: type[_Event]
    literals: tuple[str, ...]  # len(fields) + 1 pieces: before, between and after the values
    fields: tuple[JsonField, ...]  # in key order

    @classmethod
    def of(
        cls, model: type[_Event], fields: Mapping[str, JsonField], key_order: tuple[str, ...] | None = None
    ) -> JsonTemplate:
        """The template of ``model``: ``fields`` must cover exactly the model's fields.

        Keys follow the model's field order unless ``key_order`` (the same names) says otherwise.
        """
        names = tuple(model.model_fields)
        _check_fields(model, fields)
        if key_order is not None:
            if sorted(key_order) != sorted(names):
                raise ValueError(f"{model.__name__} JSON: key order {key_order} is not the model's fields {names}")
            names = key_order
        literals, pending = [], "{"
        for i, name in enumerate(names):
            pending += ("," if i else "") + orjson.dumps(name).decode() + ":"
            quoted = fields[name].kind in (Kind.STRING, Kind.TEXT)
            literals.append(pending + ('"' if quoted else ""))
            pending = '"' if quoted else ""
        literals.append(pending + "}")
        return cls(model, tuple(literals), tuple(fields[name] for name in names))

    def render(self, columns: Columns) -> pa.Array:
        """One JSON document per row of ``columns``."""
        parts: list[str | pa.Array | pa.Scalar] = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            parts += [_as_json_text(field, columns), literal]
        return pc.binary_join_element_wise(*parts, "")


def _check_fields(model: type[_Event], fields: Mapping[str, JsonField]) -> None:
    """Every field of the model and no other, numbers written as numbers and only they."""
    names = tuple(model.model_fields)
    if set(fields) != set(names):
        missing, extra = sorted(set(names) - set(fields)), sorted(set(fields) - set(names))
        raise ValueError(f"{model.__name__} JSON: fields missing {missing}, not in the model {extra}")
    for name, info in model.model_fields.items():
        numeric = info.annotation in (int, float)
        if numeric != (fields[name].kind is Kind.NUMBER):
            raise ValueError(f"{model.__name__} JSON: {name} is {info.annotation}, written as {fields[name].kind}")


def _as_json_text(field: JsonField, columns: Columns) -> pa.Array | pa.Scalar:
    values = field.column(columns)
    if field.kind is Kind.TEXT:
        return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return values


TRANSACTION_JSON = JsonTemplate.of(TransactionEvent, TRANSACTION_FIELDS)
# Labels keep the key order they have always been published with; the model declares
# card_token before event_time. (Consumers parse the JSON: only the bytes would change.)
LABEL_JSON = JsonTemplate.of(LabelEvent, LABEL_FIELDS, key_order=("trans_num", "event_time", "card_token", "is_fraud"))


@dataclass
class EncodedBlock:
    """The accepted rows of one block, as ready-to-send Kafka records."""

    lines: list[int]
    event_ms: list[int]
    keys: list[bytes]
    events: list[bytes]
    labels: list[bytes]
    first_event: datetime | None
    last_event: datetime | None


def encode_events(good: pa.RecordBatch, lines: list[int], protector: CardProtector) -> EncodedBlock:
    """Build the JSON of every event and label with vectorised string operations.

    The validated text of the CSV is published as is (numbers were checked to be
    valid JSON numbers), so nothing is re-rounded on the way; only the card number is
    replaced. One Python step per distinct card of the block remains: its HMAC token.
    """
    columns = {name: good.column(name) for name in good.schema.names}
    columns["card_token"], columns["card_masked"] = protector.protect_many(columns["cc_num"])
    event = TRANSACTION_JSON.render(columns)
    label = LABEL_JSON.render(columns)
    times = columns["trans_date_trans_time"]
    ms = pc.cast(pc.strptime(times, format="%Y-%m-%d %H:%M:%S", unit="ms"), pa.int64())
    bounds = pc.min_max(times)
    return EncodedBlock(
        lines=lines,
        event_ms=ms.to_pylist(),
        keys=[t.encode() for t in columns["card_token"].to_pylist()],
        events=[v.encode() for v in event.to_pylist()],
        labels=[v.encode() for v in label.to_pylist()],
        first_event=None if not good.num_rows else datetime.fromisoformat(bounds["min"].as_py()),
        last_event=None if not good.num_rows else datetime.fromisoformat(bounds["max"].as_py()),
    )
