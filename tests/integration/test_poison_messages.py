"""Poison messages on ``transactions`` cannot stop the pipeline nor reach the stores.

Over 5,000 malformed messages, generated with Hypothesis (bytes that are not JSON,
JSON that is not an object, missing, extra and wrongly typed fields, NaN, infinite,
negative and huge amounts, overlong strings, NUL characters, broken ids, out-of-range
coordinates, impossible dates, unicode look-alikes, SQL-looking text), are produced
shuffled with 2,000 valid events whose free text is as hostile as the schema allows.
With ``persist`` and ``scorer`` running on the real consumer loop, this module proves:

* every valid event is in PostgreSQL ``transactions`` and ``scores`` exactly once,
  stored verbatim, at the Kafka position it was produced to;
* every malformed message is on the dead-letter topic once per consuming service,
  byte for byte, with the position it came from and a non-empty reason;
* the per-card DynamoDB aggregates count the valid events only;
* both services are still running afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import orjson
import pandas as pd
import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.train import train
from schemas.events import DeadLetter, TransactionEvent
from schemas.fields import CARD_MASKED_PATTERN
from schemas.source import CATEGORIES
from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.integration.conftest import pg_count, read_topic, wait_for

pytestmark = pytest.mark.integration

N_VALID = 2000
N_INVALID = 5500
N_CARDS = 97
SHUFFLE_SEED = 20240611
CONSUMING_SERVICES = ("persist", "scorer")  # both consume `transactions`: each dead-letters on its own

FIELDS = tuple(TransactionEvent.model_fields)
REQUIRED = tuple(name for name, f in TransactionEvent.model_fields.items() if f.is_required())
FREE_TEXT = ("merchant", "city", "category")  # ShortText: at most 200 characters, no NUL
NUMBERS = ("amt", "lat", "long", "merch_lat", "merch_long", "city_pop", "birth_year")
PATTERNS = {
    "trans_num": r"[0-9a-f]{32}",
    "card_token": r"[0-9a-f]{32}",
    "card_masked": CARD_MASKED_PATTERN.strip("^$"),
    "gender": r"[FM]",
    "state": r"[A-Z]{2}",
    "zip": r"[0-9]{3,5}",
    "merch_zipcode": r"[0-9]{3,5}",
}
GEO_LIMITS = {"lat": 90.0, "merch_lat": 90.0, "long": 180.0, "merch_long": 180.0}
PLACEHOLDER = "@@txguard-raw-json-value@@"  # stands for a value orjson cannot write (NaN, 1e400)

SQL_LOOKING = (
    "'); DROP TABLE transactions; --",
    "Robert'); DROP TABLE scores;--",
    "1' OR '1'='1",
    '" OR ""="',
    "admin'--",
    "x'; DELETE FROM labels WHERE 't'='t",
    "$$; TRUNCATE transactions; $$",
    "E'\\x41' || chr(0) || '",
    "\\.",
    "\\N",
    "\\\\N",
    "NULL",
    "COPY transactions FROM PROGRAM 'id'",
    "%s %(merchant)s {0} ${amt}",
    "/* comment */ SELECT pg_sleep(10);",
)
HOSTILE_TEXT = SQL_LOOKING + (
    "",
    " ",
    "  padded  ",
    "tab\there",
    "line\nbreak",
    "crlf\r\nend",
    "trailing backslash \\",
    "back\\slash \\t not a tab",
    "quote ' double \" backtick `",
    "Caf\u00e9 vs Cafe\u0301",  # precomposed vs combining accent: must not be normalised
    "\u202eRTL override\u202c",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew, Arabic
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # emoji ZWJ sequence
    "\U0001f4b3\U0001f525\U0001f1fa\U0001f1f8",
    "\ufeffBOM at start",
    "line\u2028separator\u2029paragraph",
    "\u0085next line \x0b vertical tab \x0c form feed",
    "\ufffe\uffff noncharacters",
    "\U0010fffd last plane",
    "x" * 200,
    "\U0001f600" * 200,
    "e\u0301" * 100,
)


# --- message generation -------------------------------------------------------------------


def draw_many(strategy: st.SearchStrategy, count: int, per_example: int = 10) -> list:
    """``count`` distinct values of ``strategy``: the same values on every run.

    Hypothesis is a test runner, not a bulk data generator: ``.example()`` is neither
    reproducible nor meant for this. A throwaway ``@given`` function run with
    ``derandomize=True`` (seed fixed by the function) and no example database is
    deterministic. Each example draws a short list of distinct values: one example
    holding thousands would overrun Hypothesis's per-example data budget, one value per
    example is slow, and without ``unique_by`` Hypothesis likes to repeat a value
    within a list.
    """
    drawn: list = []

    @hypothesis_settings(
        max_examples=count // per_example + 50, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(st.lists(strategy, min_size=per_example, max_size=per_example, unique_by=repr))
    def collect(values: list) -> None:
        drawn.extend(values)

    collect()
    assert len(drawn) >= count, f"Hypothesis produced {len(drawn)} values, {count} wanted"
    return drawn[:count]


def card(i: int) -> tuple[str, str]:
    """(token, masked) of synthetic card ``i``."""
    return hashlib.md5(f"card-{i}".encode()).hexdigest(), f"{400000 + i:06d}******{i:04d}"


CARDS = [card(i) for i in range(N_CARDS)]

_text_chars = st.characters(codec="utf-8", exclude_characters="\x00")  # any code point UTF-8 can carry


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Valid free text that is hard to store: unicode, quotes, backslashes, SQL."""
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.text(_text_chars, max_size=max_size),
        st.tuples(st.sampled_from(HOSTILE_TEXT), st.text(_text_chars, max_size=40), st.sampled_from(HOSTILE_TEXT)).map(
            lambda parts: "".join(parts)[:200]
        ),
    )


_digits = st.from_regex(r"[0-9]{3,5}", fullmatch=True)
_event_time = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2020, 12, 31, 23, 59, 59))


def event_fields(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    """Every field of a valid transaction except trans_num (unique ids are numbered, not drawn).

    Numbers cover the whole range the schema accepts, bounds and subnormal floats included:
    whatever passes validation must be storable.
    """
    return st.fixed_dictionaries({
        "event_time": _event_time,
        "card": st.integers(0, N_CARDS - 1),
        "merchant": text,
        "category": st.sampled_from(CATEGORIES),
        "amt": st.floats(0, 1_000_000),
        "gender": st.sampled_from("FM"),
        "city": text,
        "state": st.from_regex(r"[A-Z]{2}", fullmatch=True),
        "zip": _digits,
        "lat": st.floats(-90, 90),
        "long": st.floats(-180, 180),
        "city_pop": st.integers(0, 2**31 - 1),
        "birth_year": st.integers(1900, 2100),
        "merch_lat": st.floats(-90, 90),
        "merch_long": st.floats(-180, 180),
        "merch_zipcode": st.none() | _digits,
    })  # fmt: skip


def as_event(trans_num: str, fields: dict) -> dict:
    """A valid event dict (JSON-ready) from drawn fields."""
    fields = dict(fields)
    token, masked = CARDS[fields.pop("card")]
    fields["event_time"] = fields["event_time"].isoformat()
    return {"trans_num": trans_num, "card_token": token, "card_masked": masked, **fields}


def with_raw(event: dict, name: str, raw_json: str | bytes) -> bytes:
    """``event`` as JSON with field ``name`` written as the raw JSON text ``raw_json``."""
    raw = raw_json.encode() if isinstance(raw_json, str) else raw_json
    return orjson.dumps({**event, name: PLACEHOLDER}).replace(f'"{PLACEHOLDER}"'.encode(), raw)


def set_field(base: st.SearchStrategy[dict], names: tuple[str, ...], values: st.SearchStrategy):
    """Events of ``base`` as JSON, one of the fields ``names`` set to a drawn value."""
    return st.builds(lambda e, name, v: orjson.dumps({**e, name: v}), base, st.sampled_from(names), values)


def set_raw_field(base: st.SearchStrategy[dict], names: tuple[str, ...], raw_json: st.SearchStrategy):
    """Like ``set_field``, the value written as raw JSON text (what orjson refuses to write)."""
    return st.builds(with_raw, base, st.sampled_from(names), raw_json)


_json_int = st.integers(-(2**63), 2**63 - 1)  # what orjson can write
_json_scalar = st.one_of(
    st.none(), st.booleans(), _json_int, st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
_json_value = st.recursive(
    _json_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip
_not_a_number = st.sampled_from(["", "12,50", "$12.50", "1.5.6", "one", "NaN dollars", "0x1F", "1e", "--1",
                                 "0; DELETE FROM scores"]) | st.text(max_size=20).map("x".__add__)  # fmt: skip
_impossible_date = st.one_of(
    st.sampled_from([
        "2020-02-30T00:00:00", "2019-02-29T12:00:00", "2020-13-01T00:00:00", "2020-00-10T00:00:00",
        "2020-04-31T08:00:00", "2020-01-01T24:00:01", "2020-01-01T12:60:00", "2020-01-01T12:00:61",
        "yesterday", "now()", "", "01/02/2020 10:00", "2020-01-01 25:00", "10000-01-01T00:00:00",
        "2020-01-01T00:00:00+25:00", "\u0662\u0660\u0662\u0660-01-01T00:00:00",
    ]),
    st.builds("{:04d}-{:02d}-{:02d}T00:00:00".format, st.integers(1000, 9999), st.integers(13, 99), st.integers(1, 28)),
    st.builds("{:04d}-{:02d}-{:02d}T00:00:00".format, st.integers(1000, 9999), st.integers(1, 12), st.integers(32, 99)),
    st.text(max_size=30).map("x".__add__),
)  # fmt: skip
_NEAR_MISSES = {
    r"[0-9a-f]{32}": ["A" * 32, "0" * 31, "0" * 33, "0" * 32 + "\n", " " + "0" * 32, "g" * 32, "\uff10" * 32],
    CARD_MASKED_PATTERN.strip("^$"): ["4111111111111111", "411111**********1111", "41-**-1111",
                                      "411111\u2217\u22171111", "630423**7322", "30263540242"],
    r"[FM]": ["f", "m", "X", "FM", "Female", " F"],
    r"[A-Z]{2}": ["ny", "NYC", "N", "\uff2e\uff39", "\u039d\u03a5"],  # fullwidth and Greek look-alikes
    r"[0-9]{3,5}": ["12", "123456", "1234a", "\u0661\u0662\u0663\u0664\u0665", "12 34", "12345-6789"],
}  # fmt: skip


def mismatching(pattern: str) -> st.SearchStrategy[str]:
    return st.sampled_from(_NEAR_MISSES[pattern] + list(SQL_LOOKING)) | st.text(max_size=40).filter(
        lambda s: re.fullmatch(pattern, s) is None
    )


# What a poison message can look like: kind -> strategy of message values, given a
# strategy of valid events to break. Most break one field of a valid event, trans_num
# included: a poison message that slipped through would collide with its valid twin.
POISON_KINDS = {
    "not_json": lambda base: st.binary(max_size=300) | st.text(max_size=100).map(str.encode) | st.just(None),
    "truncated_json": lambda base: st.builds(
        lambda raw, cut: raw[: int(cut * (len(raw) - 1))], base.map(orjson.dumps), st.floats(0, 1)),
    "bad_utf8": lambda base: set_raw_field(
        base, FREE_TEXT, st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc"]).map(b'"x%s"'.__mod__)),
    "lone_surrogate": lambda base: set_raw_field(
        base, FREE_TEXT, st.sampled_from(['"a\\ud800b"', '"\\udfff"', '"\\ud83d"'])),
    "json_not_an_object": lambda base: st.one_of(
        _json_value.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps),
        base.map(lambda e: orjson.dumps([e])),
        base.map(lambda e: orjson.dumps(orjson.dumps(e).decode())),  # double-encoded
    ),
    "missing_fields": lambda base: st.builds(
        lambda e, gone: orjson.dumps({k: v for k, v in e.items() if k not in gone}),
        base, st.sets(st.sampled_from(REQUIRED), min_size=1)),
    "extra_field": lambda base: st.builds(
        lambda e, name, v: orjson.dumps({**e, name: v}), base,
        st.sampled_from(["Amt", "trans_num ", "TRANS_NUM", "is_fraud", "cc_num"])
        | st.text(max_size=30).filter(lambda k: k not in FIELDS), _json_value),
    "wrong_type": lambda base: st.one_of(
        set_field(base, NUMBERS, _not_a_number | st.lists(st.floats(-1, 1), max_size=3) | st.just({}) | st.none()),
        set_field(base, tuple(f for f in FIELDS if f not in NUMBERS and f != "event_time"),
                  _json_int | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()
                  | st.lists(st.text(max_size=5), max_size=3)),
        set_field(base, ("event_time",), st.lists(_json_int, max_size=3) | st.just({}) | st.none()),
    ),
    "non_finite_amount": lambda base: set_raw_field(base, ("amt",), st.sampled_from([
        "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", '"NaN"', '"inf"', '"-Infinity"', "1" + "0" * 400])),
    "negative_amount": lambda base: set_raw_field(
        base, ("amt",), st.floats(max_value=-5e-324, allow_infinity=False).map(repr)),
    "huge_amount": lambda base: set_raw_field(base, ("amt",), st.one_of(
        st.floats(min_value=1_000_000, exclude_min=True, allow_infinity=False).map(repr),
        st.integers(1_000_001, 10**30).map(str))),
    "non_finite_coordinate": lambda base: set_raw_field(
        base, tuple(GEO_LIMITS), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"])),
    "out_of_range_coordinate": lambda base: st.builds(
        lambda e, name, sign, excess: orjson.dumps({**e, name: sign * (GEO_LIMITS[name] + excess)}),
        base, st.sampled_from(tuple(GEO_LIMITS)), st.sampled_from([-1, 1]), st.floats(min_value=1e-9, max_value=1e300)),
    "out_of_range_integer": lambda base: st.one_of(
        set_field(base, ("city_pop",), st.integers(-(2**63), -1) | st.integers(2**31, 2**63 - 1)),  # PG integer
        set_field(base, ("birth_year",), st.integers(-(2**63), 1899) | st.integers(2101, 2**63 - 1)),
        set_field(base, ("city_pop", "birth_year"), st.integers(1900, 2000).map(lambda i: i + 0.5)),
    ),
    "overlong_text": lambda base: set_field(
        base, FREE_TEXT,
        st.text(_text_chars, min_size=201, max_size=400) | st.sampled_from(SQL_LOOKING).map(lambda s: (s * 201)[:201])),
    "nul_in_text": lambda base: set_field(
        base, FREE_TEXT, st.builds("{}\x00{}".format, st.text(max_size=60), st.text(max_size=60))),
    "pattern_mismatch": lambda base: st.sampled_from(tuple(PATTERNS)).flatmap(
        lambda name: set_field(base, (name,), mismatching(PATTERNS[name]))),
    "invalid_date": lambda base: set_field(base, ("event_time",), _impossible_date),
}  # fmt: skip


@dataclass(frozen=True)
class Poison:
    kind: str
    value: bytes | None
    key: bytes | None


def poison_message(base: st.SearchStrategy[dict]) -> st.SearchStrategy[Poison]:
    """A message that ``TransactionEvent`` must refuse, labelled with what is wrong with it.

    The key is absent, random bytes, or a real card's token (the message then shares
    that card's partition with its valid events).
    """
    key = st.none() | st.binary(max_size=40) | st.sampled_from([token.encode() for token, _ in CARDS])
    return st.one_of([
        st.builds(functools.partial(Poison, kind), values(base), key) for kind, values in POISON_KINDS.items()
    ])  # fmt: skip


def is_rejected(value: bytes | None) -> bool:
    try:
        TransactionEvent.model_validate_json(value)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the service dead-letters on any exception
        return True
    return False


# --- the run ------------------------------------------------------------------------------


@dataclass
class Corpus:
    valid: list[dict]
    poison: list[Poison]
    valid_position: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (partition, offset)
    poison_position: dict[int, tuple[int, int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    valid = [
        as_event(hashlib.md5(f"valid-{i}".encode()).hexdigest(), fields)
        for i, fields in enumerate(draw_many(event_fields(hostile_text()), N_VALID))
    ]
    poison = draw_many(poison_message(st.integers(0, len(valid) - 1).map(lambda i: valid[i])), N_INVALID)
    accepted = [p for p in poison if not is_rejected(p.value)]
    assert not accepted, f"{len(accepted)} generated 'poison' messages are valid, e.g. {accepted[:3]}"
    parsed = [TransactionEvent.model_validate_json(orjson.dumps(e)) for e in valid]
    assert [(p.merchant, p.city) for p in parsed] == [(e["merchant"], e["city"]) for e in valid]
    kinds = Counter(p.kind for p in poison)
    assert set(kinds) == set(POISON_KINDS) and min(kinds.values()) >= 100, kinds
    return Corpus(valid, poison)


def produce_shuffled(clients, corpus: Corpus) -> None:
    """Valid and poison messages interleaved; positions recorded from the delivery reports."""
    topic = clients.settings.topic(TRANSACTIONS)
    order = [("valid", i) for i in range(len(corpus.valid))] + [("poison", i) for i in range(len(corpus.poison))]
    random.Random(SHUFFLE_SEED).shuffle(order)
    failures: list[str] = []

    def delivered(kind: str, index: int, err, msg) -> None:  # noqa: ANN001 - librdkafka callback
        if err is not None:
            failures.append(f"{kind}[{index}]: {err}")
            return
        positions = corpus.valid_position if kind == "valid" else corpus.poison_position
        positions[index] = (msg.partition(), msg.offset())

    # Not clients.producer(): it asks librdkafka to report failed deliveries only, and
    # the positions come from the reports of the successful ones.
    producer = Producer({**clients.kafka_config(), "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 20})  # fmt: skip
    for kind, index in order:
        if kind == "valid":
            event = corpus.valid[index]
            key, value = event["card_token"].encode(), orjson.dumps(event)
        else:
            key, value = corpus.poison[index].key, corpus.poison[index].value
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=functools.partial(delivered, kind, index))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still undelivered after 60 s"
    assert not failures, failures[:5]
    assert len(corpus.valid_position) == len(corpus.valid) and len(corpus.poison_position) == len(corpus.poison)


def training_frame(valid: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "card_token": [e["card_token"] for e in valid],
        "event_time": pd.to_datetime([datetime.fromisoformat(e["event_time"]) for e in valid]),
        "amt": [e["amt"] for e in valid],
        "category": [e["category"] for e in valid],
        "birth_year": [e["birth_year"] for e in valid],
    })  # fmt: skip


class RecordCounter:
    """Counts the records of a topic as they arrive: assigned partitions, no group, no commits.

    (Watermarks are no substitute: on the embedded broker the high watermarks of a
    topic do not add up to its record count.)
    """

    def __init__(self, clients, topic: str):
        self.consumer = clients.consumer("record-counter")
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.count = 0

    def poll(self) -> int:
        self.count += sum(1 for m in self.consumer.consume(10_000, timeout=0.5) if not m.error())
        return self.count

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture(scope="module")
def poisoned(clients, services, corpus: Corpus) -> Corpus:
    """The corpus produced through running persist and scorer, once everything has landed."""
    settings = clients.settings
    model, _ = train(training_frame(corpus.valid))
    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    scorer = ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                           BehaviorStore(clients.dynamodb(), settings.behavior_table), model,
                           clients.producer())  # fmt: skip
    services.start(scorer, clients)  # started in the order of CONSUMING_SERVICES
    produce_shuffled(clients, corpus)

    expected_dlq = len(CONSUMING_SERVICES) * len(corpus.poison)
    dlq = RecordCounter(clients, settings.topic(DLQ))
    seen: dict[str, int] = {}

    def settled() -> bool:
        stopped = [name for name, (t, _) in zip(CONSUMING_SERVICES, services.threads, strict=True) if not t.is_alive()]
        assert not stopped, f"{stopped} stopped: a message broke the service (its exception is in the warnings)"
        seen.update(transactions=pg_count(clients, "transactions"), scores=pg_count(clients, "scores"),
                    dlq=dlq.poll())  # fmt: skip
        return seen["transactions"] >= N_VALID and seen["scores"] >= N_VALID and seen["dlq"] >= expected_dlq

    try:
        wait_for(settled, timeout=150, what=f"{N_VALID} rows in transactions and scores, {expected_dlq} DLQ records")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None
    finally:
        dlq.close()
    return corpus


# --- what is proven -----------------------------------------------------------------------


def test_every_valid_event_lands_once_in_transactions_and_scores(clients, poisoned):
    expected = sorted(e["trans_num"] for e in poisoned.valid)
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT trans_num FROM transactions ORDER BY 1")
            assert [r[0] for r in cur.fetchall()] == expected
            cur.execute("SELECT trans_num FROM scores ORDER BY 1")
            assert [r[0] for r in cur.fetchall()] == expected
    finally:
        conn.close()


def expected_row(event: dict, position: tuple[int, int]) -> tuple:
    """The ``transactions`` row of ``event``: text as produced, amount at numeric(12,2)."""
    amt = Decimal(repr(event["amt"])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return (
        event["trans_num"], datetime.fromisoformat(event["event_time"]), event["card_token"], event["card_masked"],
        event["merchant"], event["category"], amt, event["gender"], event["city"], event["state"], event["zip"],
        event["lat"], event["long"], event["city_pop"], event["birth_year"], event["merch_lat"], event["merch_long"],
        event["merch_zipcode"], *position,
    )  # fmt: skip


def test_every_field_is_stored_verbatim_at_its_kafka_position(clients, poisoned):
    columns = FIELDS + ("kafka_partition", "kafka_offset")
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(columns)} FROM transactions")  # noqa: S608 - fixed column names
            stored = {row[0]: tuple(row) for row in cur.fetchall()}
    finally:
        conn.close()
    wrong = []
    for i, event in enumerate(poisoned.valid):
        want = expected_row(event, poisoned.valid_position[i])
        got = stored.get(event["trans_num"])
        if got != want:
            wrong.append({c: (w, g) for c, w, g in zip(columns, want, got or [None] * len(columns), strict=True)
                          if w != g})  # fmt: skip
    assert not wrong, f"{len(wrong)} of {len(poisoned.valid)} rows differ (wanted, stored): {wrong[:5]}"


def test_every_poison_message_is_dead_lettered_once_per_service_with_a_reason(clients, poisoned):
    source_topic = clients.settings.topic(TRANSACTIONS)
    by_position = {poisoned.poison_position[i]: p for i, p in enumerate(poisoned.poison)}
    records = read_topic(clients, clients.settings.topic(DLQ))
    seen: Counter = Counter()
    by_service: Counter = Counter()
    wrong = []
    for r in records:
        h = {k: v for k, v in r.headers}
        record = DeadLetter.from_headers(r.headers)
        position = (record.partition, record.offset)
        seen[position] += 1
        by_service[record.service] += 1
        original = by_position.get(position)
        if (
            record.source != source_topic
            or original is None
            or r.value != original.value
            or r.key != original.key
            or not h.get("error_class")
            or not h.get("reason")
            or b"input_value" in h["reason"]  # pydantic's copy of the raw event
        ):
            wrong.append((position, h, r.value and r.value[:80]))
    assert not wrong, f"{len(wrong)} DLQ records do not match a poison message: {wrong[:5]}"
    assert seen == Counter({p: len(CONSUMING_SERVICES) for p in by_position})
    assert by_service == Counter({name: len(poisoned.poison) for name in CONSUMING_SERVICES})
    assert len(records) == len(CONSUMING_SERVICES) * len(poisoned.poison)


def test_behavior_aggregates_count_only_valid_events(clients, poisoned):
    ddb = clients.dynamodb()
    table = clients.settings.behavior_table
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    per_card = {i["card_token"]["S"]: int(i["txn_count"]["N"]) for i in items}
    assert sum(per_card.values()) == len(poisoned.valid)
    assert per_card == dict(Counter(e["card_token"] for e in poisoned.valid))


def test_both_services_are_still_running(services, poisoned):
    assert [t.is_alive() for t, _ in services.threads] == [True] * len(CONSUMING_SERVICES)
