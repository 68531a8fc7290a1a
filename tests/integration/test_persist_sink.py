"""The PostgreSQL sink on a real server: the typed COPY stores exactly what json_populate_record stored.

The reference is computed by PostgreSQL itself from the same JSON documents, with the
query the sink used before its typed path, and every column of every row is compared
as PostgreSQL's text of the row (shortest exact doubles, so bit for bit).
"""

from __future__ import annotations

import json
import random
import struct
import threading
import uuid

import orjson
import psycopg2.errors
import pytest

import consumers.postgres as postgres
from consumers.persist import PersistService
from consumers.postgres import JsonRows, PostgresSink
from schemas.events import ScoreEvent, TransactionEvent, _Event
from schemas.source import CATEGORIES
from streaming.batch import BatchProcessor
from streaming.retry import Retry
from streaming.stats import LoopStats
from tests.unit.streaming.kafka_fakes import FakeMessage, FakeProducer

pytestmark = pytest.mark.integration

NASTY_TEXTS = ["tab\there", "new\nline", "cr\r\nlf", 'quote " and ""', "comma, comma", "back\\slash \\N \\.", "\\.",
               "", "NULL", "é ü 中文 😀", "  spaced  ", "{braces}", "semi;colon", "'single'"]  # fmt: skip
NASTY_DOUBLES = [0.1, 1e-300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
                 -0.0, 0.0, 3.0, 1e21, 1e-7, 0.30000000000000004, 123456789.0, 2**53 + 0.0]  # fmt: skip
POSITION = ("kafka_partition", "kafka_offset")


def random_double(rng: random.Random) -> float:
    """Any finite double, every exponent alike: the round trip through text must keep its bits."""
    while True:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if x == x and abs(x) != float("inf"):
            return x


def transaction(trans_num: str, rng: random.Random, i: int) -> dict:
    text = NASTY_TEXTS[i % len(NASTY_TEXTS)]
    event = {"trans_num": trans_num, "event_time": f"2019-0{1 + i % 9}-1{i % 10}T0{i % 10}:3{i % 10}:00",
             "card_token": f"{rng.getrandbits(128):032x}", "card_masked": "411111******1234",
             "merchant": text, "category": CATEGORIES[i % len(CATEGORIES)],
             "amt": [0.1, 12.34, 99.99, 5.0, 0.0, 1000000.0, 0.01][i % 7] if i < 40 else round(rng.uniform(0, 3000), 2),
             "gender": "FM"[i % 2], "city": NASTY_TEXTS[-1 - i % len(NASTY_TEXTS)], "state": "IL", "zip": "01234",
             "lat": [d for d in NASTY_DOUBLES if abs(d) <= 90][i % 9] if i < 40 else rng.uniform(-90, 90),
             "long": rng.uniform(-180, 180),
             "city_pop": [0, 2**31 - 1, 116250][i % 3], "birth_year": 1900 + i % 200,
             "merch_lat": -0.0 if i % 5 == 0 else rng.uniform(-90, 90), "merch_long": rng.uniform(-180, 180),
             "merch_zipcode": [None, "00501", "62702"][i % 3]}  # fmt: skip
    if i % 6 == 0:
        del event["merch_zipcode"]  # absent: NULL as much as null is
    return event


def score(trans_num: str, rng: random.Random, i: int) -> dict:
    features = [NASTY_DOUBLES[(i + k) % len(NASTY_DOUBLES)] for k in range(14)] if i < 40 else [
        random_double(rng) for _ in range(14)]  # fmt: skip
    return {"trans_num": trans_num, "card_token": f"{rng.getrandbits(128):032x}",
            "event_time": f"2019-07-0{1 + i % 9}T12:00:0{i % 10}.{i:06d}",
            "iforest_score": random_double(rng), "online_score": NASTY_DOUBLES[i % len(NASTY_DOUBLES)],
            "supervised_score": [None, 0.5, 1e-300][i % 3], "learned_score": [None, 0.25][i % 2],
            "learned_version": [None, "", "online-3"][i % 3], "score": rng.random(), "threshold": 0.1,
            "flagged": i % 2 == 0, "reason": NASTY_TEXTS[i % len(NASTY_TEXTS)], "model_version": "v1",
            "features": [] if i % 11 == 0 else features, "shadow_score": [None, 1.0][i % 2],
            "shadow_version": [None, "", "cand\t\"1\""][i % 3]}  # fmt: skip


# Number texts other than the shortest ones orjson writes: without a fraction, with an
# exponent, longer than a double holds, halfway between two doubles, a trailing zero.
RAW_NUMBERS = {
    "transactions": [
        {"lat": b"40", "amt": b"1e2", "long": b"-0", "city_pop": b"-0",
         "merch_lat": b"0.1000000000000000055511151231257827021181583404541015625"},
        {"amt": b"0.10", "lat": b"9007199254740993e-15", "merch_long": b"1E+2", "birth_year": b"1970"},
    ],
    "scores": [
        {"features": b"[1,0,-0,1E2,0.1000000000000000055511151231257827021181583404541015625,9007199254740993,"
                     b"2.4703282292062328e-324,1.00000000000000011102230246251565404236316680908203126,1e-7,1E+2,"
                     b"12345678901234567890,0.5,0.25,7]",
         "iforest_score": b"-1.7976931348623157E308", "threshold": b"1", "score": b"0.5000000000000000000001"},
    ],
}  # fmt: skip


def with_raw(event: dict, raw: dict[str, bytes]) -> bytes:
    """The JSON of ``event`` with the fields of ``raw`` written as those texts."""
    doc = orjson.dumps({**event, **{name: f"@{name}@" for name in raw}})
    for name, text in raw.items():
        doc = doc.replace(f'"@{name}@"'.encode(), text)
    return doc


def as_json(event: dict, i: int, raw_numbers: list[dict[str, bytes]]) -> bytes:
    """The JSON of ``event`` in one of the forms a producer may send."""
    if i % 4 == 1:  # pretty-printed, every non-ASCII character escaped (surrogate pairs for emoji)
        return json.dumps(event, indent=2, ensure_ascii=True).encode()
    if i % 4 == 2:  # fields in another order
        return json.dumps(dict(reversed(event.items())), ensure_ascii=False).encode()
    if i % 4 == 3:
        return with_raw(event, raw_numbers[i // 4 % len(raw_numbers)])
    return orjson.dumps(event)


def events(model: type[_Event], make, trans_nums: list[str], seed: int) -> list[bytes]:  # noqa: ANN001
    rng = random.Random(seed)
    raw_numbers = RAW_NUMBERS["scores" if model is ScoreEvent else "transactions"]
    docs = [as_json(make(t, rng, i), i, raw_numbers) for i, t in enumerate(trans_nums)]
    for doc in docs:
        model.model_validate_json(doc)  # persist's decode would let every one through
    return docs


def new_trans_nums(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


def rows(model: type[_Event], docs: list[bytes], with_position: bool, first_offset: int = 0) -> JsonRows:
    return JsonRows(tuple(model.model_fields), [(d, i % 3, first_offset + i) for i, d in enumerate(docs)],
                    with_position, model.IDEMPOTENCY_KEY)  # fmt: skip


def columns_of(batch: JsonRows) -> tuple[str, ...]:
    return tuple(batch.columns) + (POSITION if batch.with_position else ())


def stored(conn, table: str, batch: JsonRows) -> list[str]:  # noqa: ANN001
    """The stored rows of ``batch``'s keys, as PostgreSQL's text of each row."""
    cols = ", ".join(f"t.{c}" for c in columns_of(batch))
    keys = [orjson.loads(d)[batch.key] for d, _, _ in batch.docs]
    with conn.cursor() as cur:
        cur.execute(f"SELECT ROW({cols})::text FROM {table} t WHERE t.{batch.key} = ANY(%s) ORDER BY t.{batch.key}",  # noqa: S608
                    (keys,))  # fmt: skip
        return [r[0] for r in cur.fetchall()]


def reference(conn, table: str, batch: JsonRows) -> list[str]:  # noqa: ANN001
    """What the JSON path stores for ``batch``: json_populate_record, computed by PostgreSQL."""
    cols = ", ".join(f"s.{c}" if c in POSITION else f"j.{c}" for c in columns_of(batch))
    docs, partitions, offsets = zip(*batch.docs, strict=True)
    with conn.cursor() as cur:
        cur.execute(f"SELECT ROW({cols})::text FROM unnest(%s::text[], %s::int[], %s::bigint[])"  # noqa: S608
                    f" AS s(doc, kafka_partition, kafka_offset)"
                    f" CROSS JOIN LATERAL json_populate_record(NULL::{table}, s.doc::json) j ORDER BY j.{batch.key}",
                    ([d.decode() for d in docs], list(partitions), list(offsets)))  # fmt: skip
        result = [r[0] for r in cur.fetchall()]
    conn.rollback()
    return result


@pytest.fixture
def no_json_path(monkeypatch):  # noqa: ANN001, ANN201
    """The typed path must do it all: the JSON path would make the comparison trivial."""

    def refuse(*args):  # noqa: ANN002, ANN202
        raise AssertionError("the batch took the JSON path")

    monkeypatch.setattr(postgres, "_insert_json", refuse)


def test_typed_copy_stores_every_column_exactly_as_the_json_path_did_and_skips_what_is_stored(clients, no_json_path):
    n = 1500  # over a megabyte of scores: Arrow reads it in more than one block
    trans_nums = new_trans_nums(n)
    transactions = rows(TransactionEvent, events(TransactionEvent, transaction, trans_nums, 1), True)
    scores = rows(ScoreEvent, events(ScoreEvent, score, trans_nums, 2), False)
    sink = PostgresSink(clients.pg)
    first_half = {"transactions": JsonRows(transactions.columns, transactions.docs[: n // 2], True),
                  "scores": JsonRows(scores.columns, scores.docs[: n // 2])}  # fmt: skip
    assert sink.write(first_half) == {"transactions": n // 2, "scores": n // 2}  # the direct COPY
    # The whole batch again, as after a crash before the commit of its offsets: the COPY
    # hits the stored half, and the staging table inserts the other half.
    assert sink.write({"transactions": transactions, "scores": scores}) == {"transactions": n - n // 2,
                                                                            "scores": n - n // 2}  # fmt: skip
    assert sink.write({"transactions": transactions, "scores": scores}) == {"transactions": 0, "scores": 0}
    sink.close()
    conn = clients.pg()
    try:
        for table, batch in (("transactions", transactions), ("scores", scores)):
            want = reference(conn, table, batch)
            got = stored(conn, table, batch)
            assert len(want) == n and want == got
    finally:
        conn.close()


def test_an_event_twice_in_a_batch_is_stored_once_as_it_first_came(clients, no_json_path):
    trans_nums = new_trans_nums(3)
    docs = events(TransactionEvent, transaction, trans_nums, 3)
    again = orjson.dumps({**orjson.loads(docs[1]), "merchant": "the second copy"})
    batch = rows(TransactionEvent, [docs[0], docs[1], again, docs[2]], True)
    sink = PostgresSink(clients.pg)
    assert sink.write({"transactions": batch}) == {"transactions": 3}
    sink.close()
    conn = clients.pg()
    try:
        first_copy = JsonRows(batch.columns, [batch.docs[0], batch.docs[1], batch.docs[3]], True)
        assert stored(conn, "transactions", batch) == reference(conn, "transactions", first_copy)
    finally:
        conn.close()


def test_json_arrow_refuses_takes_the_json_path_and_is_stored_as_before(clients, monkeypatch):
    trans_nums = new_trans_nums(4)
    docs = events(TransactionEvent, transaction, trans_nums, 4)
    finer = docs[0].replace(b'"amt":0.1', b'"amt":12.345')  # rounded by PostgreSQL to 12.35
    assert finer != docs[0]
    twice = docs[3][:-1] + b',"merchant":"the last one wins"}'  # a duplicate key
    batch = rows(TransactionEvent, [finer, docs[1], docs[2], twice], True)
    json_path = []
    insert_json = postgres._insert_json

    def counted(*args):  # noqa: ANN002, ANN202
        json_path.append(args[1])
        return insert_json(*args)

    monkeypatch.setattr(postgres, "_insert_json", counted)
    sink = PostgresSink(clients.pg)
    assert sink.write({"transactions": batch}) == {"transactions": 4}
    sink.close()
    conn = clients.pg()
    try:
        got = stored(conn, "transactions", batch)
        assert json_path == ["transactions"] and got == reference(conn, "transactions", batch)
        assert any(",12.35," in row for row in got) and any("the last one wins" in row for row in got)
    finally:
        conn.close()


def test_a_column_type_without_an_exact_arrow_type_keeps_the_json_path():
    assert [postgres._arrow_type(t) for t in ("jsonb", "numeric", "text[]", "real")] == [None] * 4
    assert str(postgres._arrow_type("numeric(12,2)")) == "decimal128(12, 2)"


def test_a_value_postgres_refuses_dead_letters_its_message_alone(clients):
    conn = clients.pg()
    try:
        with conn.cursor() as cur:  # a rule the events' schema does not know
            cur.execute("ALTER TABLE transactions ADD CONSTRAINT not_this_merchant CHECK (merchant <> 'refused')")
        conn.commit()
        topic = "ns.transactions"
        persist = PersistService({"transactions": topic}, PostgresSink(clients.pg))
        trans_nums = new_trans_nums(5)
        docs = events(TransactionEvent, transaction, trans_nums, 5)
        docs[2] = orjson.dumps({**orjson.loads(docs[2]), "merchant": "refused"})
        messages = [FakeMessage(topic, 0, 100 + i, d) for i, d in enumerate(docs)]
        stats = LoopStats()
        processor = BatchProcessor(persist, FakeProducer(), "txguard.dlq", Retry(persist, threading.Event(), stats),
                                   stats)  # fmt: skip
        batch, _ = processor.decode(messages)
        assert len(batch) == 5 and processor.process(batch)
        (dead,) = processor.producer.produced
        assert dead["value"] == docs[2] and stats.dead_lettered == 1
        with conn.cursor() as cur:
            cur.execute("SELECT trans_num FROM transactions WHERE trans_num = ANY(%s) ORDER BY kafka_offset",
                        (trans_nums,))  # fmt: skip
            assert [r[0] for r in cur.fetchall()] == trans_nums[:2] + trans_nums[3:]
    finally:
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE transactions DROP CONSTRAINT IF EXISTS not_this_merchant")
        conn.commit()
        conn.close()


def test_a_number_below_the_smallest_double_is_stored_as_the_schema_reads_it(clients, no_json_path):
    """0.0, as validation and the scorer read it, so the event is stored like the score made from it;
    the JSON path stored nothing (PostgreSQL refuses such a text: "out of range") and dead-lettered it."""
    (doc,) = events(TransactionEvent, transaction, new_trans_nums(1), 7)
    tiny = doc.replace(b'"lat":0.1', b'"lat":1e-400')
    assert tiny != doc and TransactionEvent.model_validate_json(tiny).lat == 0.0
    batch = rows(TransactionEvent, [tiny], True)
    sink = PostgresSink(clients.pg)
    assert sink.write({"transactions": batch}) == {"transactions": 1}
    sink.close()
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT lat FROM transactions WHERE trans_num = %s", (orjson.loads(doc)["trans_num"],))
            assert cur.fetchall() == [(0.0,)]
        with pytest.raises(psycopg2.errors.NumericValueOutOfRange):
            reference(conn, "transactions", batch)
    finally:
        conn.close()
