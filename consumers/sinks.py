"""Sinks: PostgreSQL (COPY + ON CONFLICT DO NOTHING) and DynamoDB (per-card behaviour)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg2
from botocore.exceptions import BotoCoreError, ClientError
from psycopg2 import sql

from model.behavior import CardBehavior

log = logging.getLogger(__name__)

# --- PostgreSQL --------------------------------------------------------------------------


def _copy_field(raw: bytes) -> bytes:
    """A JSON document as one field of COPY's text format."""
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    if b"\t" in raw or b"\n" in raw or b"\r" in raw:
        raw = raw.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return raw


@dataclass
class JsonRows:
    """Validated JSON events for one table, with the Kafka position of each."""

    columns: Sequence[str]  # the table columns filled from the JSON fields
    docs: list[tuple[bytes, int, int]] = field(default_factory=list)  # (json, partition, offset)
    with_position: bool = False  # also store kafka_partition / kafka_offset


class PostgresSink:
    """Writes batches of JSON events to tables idempotently, one transaction per batch.

    The raw JSON is COPYed into a temporary staging table and PostgreSQL maps it
    onto the table's columns (``json_populate_record``), then ``INSERT ... ON
    CONFLICT (trans_num) DO NOTHING``: a redelivered event is a no-op, and the whole
    batch commits or none of it does. Parsing in the server keeps the Python loop
    to validation and byte copies.
    """

    TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connect = connect
        self._conn: psycopg2.extensions.connection | None = None

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def write(self, tables: dict[str, JsonRows]) -> dict[str, int]:
        """Insert every table's rows in one transaction; returns rows inserted per table."""
        conn = self._connection()
        inserted = {}
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_json"
                    " (doc text, kafka_partition integer, kafka_offset bigint) ON COMMIT DELETE ROWS"
                )
                for table, rows in tables.items():
                    if not rows.docs:
                        continue
                    buf = io.BytesIO(b"".join(b"%s\t%d\t%d\n" % (_copy_field(doc), p, o) for doc, p, o in rows.docs))
                    cur.execute("TRUNCATE stage_json")
                    cur.copy_expert("COPY stage_json (doc, kafka_partition, kafka_offset) FROM STDIN", buf)
                    target = list(map(sql.Identifier, rows.columns))
                    source = [sql.SQL("j.{}").format(c) for c in target]
                    if rows.with_position:
                        target += [sql.Identifier("kafka_partition"), sql.Identifier("kafka_offset")]
                        source += [sql.SQL("s.kafka_partition"), sql.SQL("s.kafka_offset")]
                    cur.execute(
                        sql.SQL(
                            "INSERT INTO {table} ({target}) SELECT {source} FROM stage_json s"
                            " CROSS JOIN LATERAL json_populate_record(NULL::{table}, s.doc::json) j"
                            " ON CONFLICT (trans_num) DO NOTHING"
                        ).format(
                            table=sql.Identifier(table),
                            target=sql.SQL(", ").join(target),
                            source=sql.SQL(", ").join(source),
                        )
                    )
                    inserted[table] = cur.rowcount
            conn.commit()
        except self.TRANSIENT:
            self.close()
            raise
        except Exception:
            conn.rollback()
            raise
        return inserted

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


# --- DynamoDB ----------------------------------------------------------------------------


def _n(value: float | int) -> dict:
    return {"N": str(value)}


def _dollars(amount: float) -> dict:
    """An amount as DynamoDB stores it exactly: whole cents (it refuses numbers below 1e-130)."""
    return {"N": str(Decimal(round(amount * 100)) / 100)}


def behavior_item(card_token: str, state: CardBehavior, version: int | None = None) -> dict:
    """The DynamoDB item of one card: readable aggregates plus the exact state.

    Top-level attributes are what an analyst or another service reads; ``state`` is
    the full serialised state the scorer restores from (windows, Welford sums).
    """
    version = state.version if version is None else version
    stored = {**state.to_dict(), "version": version}
    item = {
        "card_token": {"S": card_token},
        "txn_count": _n(state.count),
        "amount_sum": {"N": str(Decimal(state.sum_cents) / 100)},
        "amount_mean": _n(round(state.mean, 6)),
        "amount_std": _n(round(state.std, 6)),
        "amount_min": _dollars(state.min_amt if state.count else 0),
        "amount_max": _dollars(state.max_amt),
        "category_counts": {"M": {k: _n(v) for k, v in state.category_counts.items()}},
        "state": {"S": json.dumps(stored, separators=(",", ":"))},
        "version": _n(version),
    }
    if state.last_seen is not None:
        item["last_txn_time"] = _n(state.last_seen)
        item["first_txn_time"] = _n(state.first_seen)
        item["last_category"] = {"S": state.last_category}
    if state.watermark is not None:
        item["watermark_partition"] = _n(state.watermark[0])
        item["watermark_offset"] = _n(state.watermark[1])
    return item


class BehaviorStore:
    """Per-card behaviour in DynamoDB: batched reads, one write per touched card per batch."""

    def __init__(self, client, table: str, concurrency: int = 8):
        self.client = client
        self.table = table
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ddb-put")

    @staticmethod
    def is_transient(exc: Exception) -> bool:
        if isinstance(exc, BotoCoreError):  # endpoint unreachable, timeouts
            return True
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            return code in {
                "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
            }  # fmt: skip
        return False

    def load_many(self, tokens: Iterable[str]) -> dict[str, CardBehavior]:
        keys = [{"card_token": {"S": t}} for t in tokens]
        found: dict[str, CardBehavior] = {}
        for start in range(0, len(keys), 100):
            request = {self.table: {"Keys": keys[start : start + 100], "ProjectionExpression": "card_token, #s",
                                    "ExpressionAttributeNames": {"#s": "state"}}}  # fmt: skip
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    found[item["card_token"]["S"]] = CardBehavior.from_dict(json.loads(item["state"]["S"]))
                request = response.get("UnprocessedKeys") or {}
        return found

    def save_many(self, states: dict[str, CardBehavior]) -> None:
        """Write every touched card once, fenced by its version.

        Each item is put only if its stored version is the one this process loaded
        (or it does not exist yet), and the version is bumped: a scorer that lost the
        card's partition in a rebalance, and still holds old state, gets
        :class:`StaleStateError` instead of overwriting newer aggregates.
        Conditional PutItem, not BatchWriteItem (which takes no conditions) nor
        TransactWriteItems (twice the write cost); the calls run concurrently.
        """

        def put(token: str, state: CardBehavior) -> None:
            expected = state.version
            if expected == 0:
                condition = {"ConditionExpression": "attribute_not_exists(card_token)"}
            else:
                condition = {"ConditionExpression": "version = :v",
                             "ExpressionAttributeValues": {":v": _n(expected)}}  # fmt: skip
            try:
                self.client.put_item(TableName=self.table, Item=behavior_item(token, state, expected + 1), **condition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    raise StaleStateError(f"card {token[:8]}... changed under this scorer (rebalance?)") from exc
                raise
            state.version = expected + 1

        futures = [self._pool.submit(put, token, state) for token, state in states.items()]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            stale = [e for e in errors if isinstance(e, StaleStateError)]
            raise (stale or errors)[0]


class StaleStateError(Exception):
    """Another writer updated a card since this process loaded it: reload and retry."""
