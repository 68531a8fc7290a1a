"""Card data on real servers: a hostile file replayed through the broker and the services
leaves no card number in the quarantine file, the dead-letter topic, the logs, Kafka,
PostgreSQL (tables and views) or DynamoDB; stored masks are re-masked by 012_remask.sql."""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import stat
import threading
import unicodedata
from importlib import resources

import orjson
import pytest

from consumers.card_state import BehaviorStore
from consumers.persist import PersistService
from consumers.postgres import PostgresSink
from consumers.scorer import ScorerService
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.events import DeadLetter
from schemas.fields import CARD_MASKED_PATTERN
from schemas.topics import ALERTS, ALL_TOPICS, DLQ, LABELS, SCORES, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import pg_count, pg_query, read_topic, wait_for
from tests.unit.producer.test_rejects import digit_strings

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"
PROTECTOR = CardProtector(b"integration-test-key-0123456789")
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def luhn_valid(rng: random.Random, length: int) -> str:
    body = str(rng.randint(2, 6)) + "".join(str(rng.randint(0, 9)) for _ in range(length - 2))
    total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d for i, d in enumerate(map(int, body[::-1])))
    return body + str(-total % 10)


def grouped(pan: str, separator: str) -> str:
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def hostile_rows(rows: list[list[str]], col: dict[str, int]) -> tuple[list[str], int]:
    """Card numbers planted in every way the review found; (the numbers, how many rows are rejected).

    Two rows hold one in their merchant or city: they are published with it masked.
    """
    rng = random.Random(9)
    pans = [luhn_valid(rng, n) for n in (11, 12, 13, 14, 15, 16, 16, 16, 17, 18, 19, 16, 16, 16, 16, 16)]
    p = iter(pans)
    rejected = [  # (row, column, value): each row fails validation
        (10, "cc_num", grouped(next(p), ".")),
        (11, "cc_num", grouped(next(p), "_")),
        (12, "cc_num", grouped(next(p), "\t")),
        (15, "merchant", "fraud_X " + grouped(next(p), " ").replace(" ", "\n", 2)),  # a quoted line break
        (16, "amt", "99" + next(p) + "123"),  # a run of 21 digits
        (17, "dob", "1978-10-05 " + next(p)),
        (18, "zip", grouped(next(p), "-")),
        (19, "merch_zipcode", grouped(next(p), " ")),
        (20, "trans_date_trans_time", "2/1/2019 1:06"),  # the row's own card number is then in a rejected row
        (21, "cc_num", "2.29E+15"),
    ]
    masked = [  # published free text: the row is sent with the number masked
        (13, "merchant", "fraud_Shop " + grouped(next(p), "  ")),  # a double space
        (14, "city", "City " + grouped(next(p), "-").translate(FULLWIDTH)),
    ]
    for row, column, value in rejected + masked:
        rows[row][col[column]] = value
    kept = next(p)  # in columns that are dropped or not published: the rows stay valid
    for column in ("first", "last", "street", "job"):
        rows[30][col[column]] = f"{column} {grouped(kept, '.')}"
    rows[31][col["unix_time"]] = next(p)
    ragged = next(p)
    rows[40].insert(col["merchant"], grouped(ragged, " ").replace(" ", "\n"))  # an extra field: a ragged line
    return pans, len(rejected) + 1  # and the ragged line


def as_json(value: bytes | None) -> object:
    try:
        return orjson.loads(value) if value else value
    except orjson.JSONDecodeError:
        return value


def test_a_hostile_file_leaves_no_card_number_anywhere(clients, services, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = clients.settings
    rows = list(csv.reader(KAGGLE.open(newline="")))
    col = {name: i for i, name in enumerate(rows[0])}
    real = {r[col["cc_num"]] for r in rows[1:]}
    planted, n_rejected = hostile_rows(rows, col)
    hostile = tmp_path / "hostile.csv"
    with hostile.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)

    model, _ = train(load_history(CsvSource(str(KAGGLE)), PROTECTOR))
    services.start(PersistService({spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)},
                                  PostgresSink(clients.pg)), clients)  # fmt: skip
    services.start(ScorerService(settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
                                 BehaviorStore(clients.dynamodb(), settings.behavior_table), model,
                                 clients.producer()), clients)  # fmt: skip
    quarantine = tmp_path / "quarantine.jsonl"
    stats = replay(CsvSource(str(hostile)), clients.producer(),
                   Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ)),
                   PROTECTOR, ReplayOptions(quarantine=quarantine), stop=threading.Event())  # fmt: skip
    assert (stats.accepted, stats.rejected_rows, stats.masked_text) == (600 - n_rejected, n_rejected, 2)
    for table in ("transactions", "scores", "labels"):
        wait_for(lambda t=table: pg_count(clients, t) >= stats.accepted, what=f"{stats.accepted} rows in {table}")

    numbers = planted + sorted(real)

    def leaks(docs: list[object]) -> list[tuple[str, str]]:
        digits = [d for doc in docs for d in digit_strings(doc)]
        return [(pan, d) for pan in numbers for d in digits if pan in d]

    # The quarantine file: owner-only, one record per rejected row, no number.
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600
    text = quarantine.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == n_rejected and not [pan for pan in numbers if pan in unicodedata.normalize("NFKC", text)]
    assert not leaks(records)
    assert sum("unparsed" in r for r in records) == 1

    # Every topic: values, keys and headers (the dead letters included).
    docs: list[object] = []
    dead = read_topic(clients, settings.topic(DLQ))
    assert {DeadLetter.from_headers(m.headers).service for m in dead} == {"replay"}
    assert sorted(DeadLetter.from_headers(m.headers).line for m in dead) == sorted(r["line"] for r in records)
    for spec in ALL_TOPICS:
        for m in read_topic(clients, settings.topic(spec)):
            docs += [as_json(m.value), m.key, *(v for _, v in m.headers or [])]
    assert not leaks(docs)

    # PostgreSQL: every table and view of the namespace.
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    relations = [r[0] for r in pg_query(clients, sql)]
    assert {"transactions", "scores", "labels", "scored_transactions", "alerts", "daily_activity"} <= set(relations)
    for relation in relations:
        dump = [r[0] for r in pg_query(clients, f'SELECT row_to_json(t) FROM "{relation}" t')]  # noqa: S608
        assert not leaks(dump), relation
    masks = [r[0] for r in pg_query(clients, "SELECT DISTINCT card_masked FROM transactions")]
    assert masks and all(re.fullmatch(CARD_MASKED_PATTERN, m) for m in masks)

    # DynamoDB and the logs.
    items = clients.dynamodb().scan(TableName=settings.behavior_table)["Items"]
    assert not leaks([json.loads(json.dumps(items))])
    assert not leaks([r.getMessage() for r in caplog.records])
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)


def test_stored_masks_are_remasked_so_that_at_least_6_digits_are_hidden(fresh_clients):
    old = {  # masks stored before: first 6 and last 4 whatever the length
        "a" * 32: ("302635*0242", "*******0242"),  # 11 digits
        "b" * 32: ("630423**7322", "********7322"),
        "c" * 32: ("180036*****9917", "***********9917"),  # 15 digits
        "d" * 32: ("270318******2095", "270318******2095"),  # 16 digits: already complies
        "e" * 32: ("444444*********4444", "444444*********4444"),
        "f" * 32: ("*******0242", "*******0242"),  # already re-masked
    }
    conn = fresh_clients.pg()
    try:
        with conn, conn.cursor() as cur:
            for trans_num, (masked, _) in old.items():
                cur.execute(
                    "INSERT INTO transactions (trans_num, event_time, card_token, card_masked, merchant, category,"
                    " amt, gender, city, state, zip, lat, long, city_pop, birth_year, merch_lat, merch_long,"
                    " kafka_partition, kafka_offset) VALUES (%s, '2019-01-01', %s, %s, 'm', 'travel', 1, 'F', 'c',"
                    " 'NY', '10001', 40, -73, 1, 1970, 40, -73, 0, 0)",
                    (trans_num, "0" * 32, masked),
                )
            cur.execute(resources.files("schemas").joinpath("sql/012_remask.sql").read_text())
            cur.execute("SELECT trans_num, card_masked FROM transactions")
            remasked = dict(cur.fetchall())
    finally:
        conn.close()
    assert remasked == {trans_num: new for trans_num, (_, new) in old.items()}
    assert all(re.fullmatch(CARD_MASKED_PATTERN, m) for m in remasked.values())
