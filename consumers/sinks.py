"""Sinks: PostgreSQL (COPY + ON CONFLICT DO NOTHING) and DynamoDB (per-card behaviour)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

import psycopg2
from botocore.exceptions import BotoCoreError, ClientError
from psycopg2 import sql

from model.behavior import CardBehavior

log = logging.getLogger(__name__)

# --- PostgreSQL --------------------------------------------------------------------------


def _copy_text(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    s = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if any(c in s for c in "\\\t\n\r"):
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


class PostgresSink:
    """Writes batches of rows to tables idempotently, one transaction per batch.

    Rows are COPYed into a temporary staging table, then inserted with
    ``ON CONFLICT (trans_num) DO NOTHING``: a redelivered row is a no-op, and the
    whole batch commits or none of it does.
    """

    TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connect = connect
        self._conn: psycopg2.extensions.connection | None = None

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def write(self, tables: dict[str, tuple[Sequence[str], Iterable[Sequence[object]]]]) -> dict[str, int]:
        """``{table: (columns, rows)}`` in one transaction; returns rows inserted per table."""
        conn = self._connection()
        inserted = {}
        try:
            with conn.cursor() as cur:
                for table, (columns, rows) in tables.items():
                    buf = io.StringIO()
                    for row in rows:
                        buf.write("\t".join(_copy_text(v) for v in row))
                        buf.write("\n")
                    if not buf.tell():
                        continue
                    buf.seek(0)
                    stage = sql.Identifier(f"stage_{table}")
                    cur.execute(
                        sql.SQL(
                            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                        ).format(stage, sql.Identifier(table))
                    )
                    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
                    cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols).as_string(cur), buf)
                    cur.execute(
                        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (trans_num) DO NOTHING").format(
                            sql.Identifier(table), cols, cols, stage
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


def behavior_item(card_token: str, state: CardBehavior) -> dict:
    """The DynamoDB item of one card: readable aggregates plus the exact state.

    Top-level attributes are what an analyst or another service reads; ``state`` is
    the full serialised state the scorer restores from (windows, Welford sums).
    """
    item = {
        "card_token": {"S": card_token},
        "txn_count": _n(state.count),
        "amount_sum": {"N": str(Decimal(state.sum_cents) / 100)},
        "amount_mean": _n(round(state.mean, 6)),
        "amount_std": _n(round(state.std, 6)),
        "amount_min": _n(state.min_amt if state.count else 0),
        "amount_max": _n(state.max_amt),
        "category_counts": {"M": {k: _n(v) for k, v in state.category_counts.items()}},
        "state": {"S": json.dumps(state.to_dict(), separators=(",", ":"))},
        "version": _n(state.version),
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

    def __init__(self, client, table: str):
        self.client = client
        self.table = table

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
        requests = [{"PutRequest": {"Item": behavior_item(t, s)}} for t, s in states.items()]
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start : start + 25]}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
