"""Every event that crosses Kafka, defined once.

Each field says why it is carried: downstream events hold only what features,
analytics and alert triage need. Cardholder names, street and job never leave the
producer; the card number leaves only as a keyed token and a masked form.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any, ClassVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.fields import (
    Amount,
    BirthYear,
    CardMasked,
    CardToken,
    Category,
    CityPop,
    EventTime,
    Gender,
    HexId,
    Latitude,
    Longitude,
    Reason,
    Score,
    ShortText,
    State,
    TransNum,
    UnitScore,
    Zip,
)


class _Event(BaseModel):
    # Strict: a value is accepted only in the JSON type PostgreSQL will store it as
    # (no "4.0" for an integer, no epoch number for a time), so a message that
    # passes validation can never fail a database batch.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    # The field a sink deduplicates on: a redelivered event must not make a second row.
    IDEMPOTENCY_KEY: ClassVar[str] = "trans_num"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def encode_columns(cls, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> list[bytes]:
        """JSON of many events from columns, one per field of the model (the hot path).

        The columns must be exactly the model's fields, so this shape cannot drift
        from the model; values must already be JSON-ready (str, float, bool, None),
        or a numpy array (a row per event for a list field). Validated by the unit
        tests against the model, not per event. The bytes are those of
        ``orjson.dumps({field: value, ...})`` per event, made a column at a time:
        each column's texts by one ``orjson`` call where it can, then all events by
        one join, split again at the newline ending each (orjson never writes one:
        it escapes them in strings).
        """
        names = tuple(cls.model_fields)
        if set(columns) != set(names):
            raise ValueError(f"{cls.__name__}: expected columns {names}, got {tuple(columns)}")
        texts = [_json_texts(columns[n]) for n in names]
        if len({len(values) for values, _, _ in texts}) > 1:
            raise ValueError(f"{cls.__name__}: columns of different lengths")
        count = len(texts[0][0])
        if not count:
            return []
        # Per event: a constant piece (the end of the last value, the next field's name, the start
        # of its value), a value, and so on: piece j at 2j, value j at 2j + 1, the closing piece last.
        stride = 2 * len(names) + 1
        parts: list[bytes] = [b""] * (count * stride)
        closing = b"{"
        for j, (name, (values, opening, value_closing)) in enumerate(zip(names, texts, strict=True)):
            parts[2 * j :: stride] = [closing + (b"," if j else b"") + orjson.dumps(name) + b":" + opening] * count
            parts[2 * j + 1 :: stride] = values
            closing = value_closing
        parts[stride - 1 :: stride] = [closing + b"}\n"] * count
        events = b"".join(parts).split(b"\n")
        del events[-1]  # after the last newline
        return events


def _json_texts(column: Sequence[Any] | np.ndarray) -> tuple[Sequence[bytes], bytes, bytes]:
    """The JSON text of each value of a column, less what every value of it starts and ends with
    (a string's quotes, a list's brackets): (texts, start, end)."""
    if isinstance(column, np.ndarray):
        whole = orjson.dumps(np.ascontiguousarray(column), option=orjson.OPT_SERIALIZE_NUMPY)
        if column.ndim == 1:
            return (whole[1:-1].split(b",") if len(column) else []), b"", b""
        if column.ndim == 2:  # a list per event; numbers hold no brackets
            return (whole[2:-2].split(b"],[") if len(column) else []), b"[", b"]"
        raise ValueError(f"a column of {column.ndim} dimensions")
    if not column:
        return [], b"", b""
    first = column[0]
    if all(map(operator.is_, column, repeat(first))):  # one value for the batch (version, threshold)
        return [orjson.dumps(first)] * len(column), b"", b""
    if _strings_without_quotes(column):  # then no escaped string holds '","' either: split there
        return orjson.dumps(column)[2:-2].split(b'","'), b'"', b'"'
    dumps = orjson.dumps
    return [dumps(v) for v in column], b"", b""


def _strings_without_quotes(column: Sequence[Any]) -> bool:
    try:
        joined = "".join(column)
    except TypeError:  # not all strings
        return False
    return '"' not in joined


class TransactionEvent(_Event):
    """One card transaction, as published to the ``transactions`` topic."""

    trans_num: TransNum = Field(description="Unique transaction id; the idempotency key of every sink.")
    event_time: EventTime = Field(description="When the transaction happened (the event clock).")
    card_token: CardToken = Field(description="Keyed HMAC of the card number: Kafka key, per-card state key.")
    card_masked: CardMasked = Field(
        description="The card number with at least 6 digits hidden (first 6 and last 4 shown from 16 digits,"
        " last 4 below), for alert triage."
    )
    merchant: ShortText = Field(description="Merchant name, for triage and analytics.")
    category: Category = Field(description="Merchant category: per-category behaviour features.")
    amt: Amount = Field(description="Amount in USD: the strongest signal.")
    gender: Gender = Field(description="Profile segment.")
    city: ShortText = Field(description="Cardholder home city, for analytics.")
    state: State = Field(description="Home state, analytics.")
    zip: Zip = Field(description="Home zip.")
    lat: Latitude = Field(description="Home latitude: distance to merchant.")
    long: Longitude = Field(description="Home longitude: distance to merchant.")
    city_pop: CityPop = Field(description="Urban/rural profile segment.")
    birth_year: BirthYear = Field(description="Age band feature; the full date of birth is not needed downstream.")
    merch_lat: Latitude = Field(description="Merchant latitude.")
    merch_long: Longitude = Field(description="Merchant longitude.")
    merch_zipcode: Zip | None = Field(default=None, description="Merchant zip when known.")


class ScoreEvent(_Event):
    """The ensemble's verdict on one transaction (``scores`` topic, every event)."""

    trans_num: TransNum
    card_token: CardToken
    event_time: EventTime
    iforest_score: Score = Field(description="Isolation Forest anomaly score, higher = more anomalous.")
    online_score: Score = Field(description="Online river detector score, higher = more anomalous.")
    supervised_score: Score | None = Field(
        default=None, description="Fraud probability from the supervised classifier; null when the model has none."
    )
    learned_score: Score | None = Field(
        default=None,
        description="Fraud probability from the online classifier the learner trains on the labels topic;"
        " null until it has learned enough labels.",
    )
    learned_version: ShortText | None = Field(
        default=None, description="The learner's snapshot that gave learned_score (online-<n>)."
    )
    score: UnitScore = Field(
        description="Ensemble score in [0, 1): nines / (nines + 3), where nines = -log10(1 - training percentile)."
    )
    threshold: Score = Field(description="The alert threshold in force when the event was scored (score >= it).")
    flagged: bool
    reason: Reason = Field(description="Why the event was flagged: its top contributing features, in words.")
    model_version: ShortText
    features: list[Score] = Field(
        description="The feature row the event was scored from (model.features.FEATURE_NAMES order)."
    )
    shadow_score: UnitScore | None = Field(
        default=None, description="Ensemble score of the shadow (candidate) model, when one is set; it never alerts."
    )
    shadow_version: ShortText | None = Field(default=None, description="Version of the shadow model, when one is set.")


class AlertEvent(_Event):
    """A flagged transaction, with what an analyst needs to triage it (``alerts`` topic)."""

    trans_num: TransNum
    card_token: CardToken
    card_masked: CardMasked
    event_time: EventTime
    amt: Amount
    category: Category
    merchant: ShortText
    score: UnitScore
    reason: Reason
    model_version: ShortText


class LabelEvent(_Event):
    """The delayed ground truth for one transaction (chargeback / analyst feedback)."""

    trans_num: TransNum
    card_token: CardToken
    event_time: EventTime
    is_fraud: bool


class DriftEventRecord(_Event):
    """A change in the mean of the score or of a feature, found by a scorer's drift monitor (``drift`` topic).

    Each scorer watches the partitions it owns, so two scorers may report the same
    change; ``scorer`` tells them apart. Made with :meth:`of`: the id is a hash of the
    other fields, so the same detection published or delivered again is the same row.
    """

    IDEMPOTENCY_KEY: ClassVar[str] = "drift_id"

    drift_id: HexId = Field(description="Hash of the other fields: the idempotency key of the sink.")
    detected_at: EventTime = Field(description="Latest event time of the micro-batch that revealed the change.")
    quantity: ShortText = Field(description='What changed: "score" (the ensemble score) or a feature name.')
    mean_before: Score = Field(description="Mean of the quantity's batch means before the change point.")
    mean_after: Score = Field(description="Mean of the quantity's batch means after the change point.")
    model_version: ShortText = Field(description="The model that was scoring when the change was detected.")
    scorer: ShortText = Field(description="The scorer process that detected it (host:pid).")

    @classmethod
    def of(
        cls,
        *,
        detected_at: datetime,
        quantity: str,
        mean_before: float,
        mean_after: float,
        model_version: str,
        scorer: str,
    ) -> DriftEventRecord:
        """The record of one detection, with its id computed from the rest."""
        fields: dict[str, Any] = {
            "detected_at": detected_at,
            "quantity": quantity,
            "mean_before": float(mean_before),
            "mean_after": float(mean_after),
            "model_version": model_version,
            "scorer": scorer,
        }
        digest = hashlib.sha256(orjson.dumps(fields)).hexdigest()[:32]
        return cls(drift_id=digest, **fields)


class DeadLetter(BaseModel):
    """Where a dead-lettered record came from and why: the headers of every record on
    the dead-letter topic, whether a producer rejected an input row or a service
    could not use a message. The record's value is the rejected row (as JSON) or the
    message's original bytes; or, for one too large to carry (``size`` and ``sha256``
    set), a JSON reference to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(description="Who dead-lettered it: replay, persist, scorer, ...")
    source: str = Field(description="The topic the message came from, or the input file.")
    partition: int | None = Field(default=None, description="Kafka partition of the message.")
    offset: int | None = Field(default=None, description="Kafka offset of the message.")
    line: int | None = Field(default=None, description="Line of the input file.")
    error_class: str = Field(description="Kind of failure, for counting.")
    reason: str = Field(description="What was wrong, in words.")
    # Set when the record was too large to carry: the value is then a small JSON reference
    # (where it came from, its size and hash), not the record itself.
    size: int | None = Field(default=None, description="Bytes of the record left out (the value is a reference).")
    sha256: str | None = Field(default=None, description="sha256 (hex) of the record left out.")

    HEADER_LIMIT: ClassVar[int] = 2000

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [
            (name, str(value).encode()[: self.HEADER_LIMIT])
            for name, value in self.model_dump().items()
            if value is not None
        ]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]] | None) -> DeadLetter:
        raw = {k: (v or b"").decode(errors="replace") for k, v in headers or []}
        fields = {k: raw[k] for k in cls.model_fields if k in raw}
        fields.setdefault("service", "?")
        fields.setdefault("source", "?")
        fields.setdefault("error_class", "?")
        fields.setdefault("reason", "")
        return cls.model_validate(fields)

    @staticmethod
    def reason_of(exc: BaseException) -> str:
        """What was wrong, in words, without the input: a reason must never copy the message.

        A validation error gives each failing field's location, message and error type,
        never pydantic's ``input_value`` (which would be the whole raw event); any other
        exception its first line (PostgreSQL's next lines can hold the whole failing row).
        """
        if isinstance(exc, ValidationError):
            problems = [
                f"{_location(e['loc'], e['type'])}: {e['msg']} [{e['type']}]"
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            return f"{exc.title}: " + "; ".join(problems)
        return (str(exc).splitlines() or [type(exc).__name__])[0][:300]

    @property
    def where(self) -> str:
        if self.offset is not None:
            return f"{self.source}[{self.partition}]@{self.offset}"
        return f"{self.source}:{self.line}"

    @property
    def kind(self) -> str:
        """The failure without the per-message detail, for counting."""
        return f"{self.service}: {self.error_class}"


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _location(loc: tuple[int | str, ...], error_type: str) -> str:
    """A validation error's location; a key that came from the input is not repeated."""
    parts = [str(p) if isinstance(p, int) or _FIELD_NAME.fullmatch(p) else "<key>" for p in loc]
    if error_type == "extra_forbidden" and parts:  # the last part is the unexpected key itself
        parts[-1] = "<extra field>"
    return ".".join(parts) or "<message>"


EVENT_MODELS: dict[str, type[_Event]] = {
    "transaction": TransactionEvent,
    "score": ScoreEvent,
    "alert": AlertEvent,
    "label": LabelEvent,
    "drift": DriftEventRecord,
}
