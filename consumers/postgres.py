"""The PostgreSQL sink: COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)


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
    key: str = "trans_num"  # the unique column a redelivered event conflicts on


class PostgresConnection:
    """One connection, opened on first use and again after it was lost."""

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connect = connect
        self._conn: psycopg2.extensions.connection | None = None

    def get(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class PostgresSink:
    """Writes batches of JSON events to tables idempotently, one transaction per batch.

    The raw JSON is COPYed into a temporary staging table and PostgreSQL maps it
    onto the table's columns (``json_populate_record``), then ``INSERT ... ON
    CONFLICT (key) DO NOTHING`` (``trans_num``, or the table's own id such as
    ``drift_id``): a redelivered event is a no-op, and the whole
    batch commits or none of it does. Parsing in the server keeps the Python loop
    to validation and byte copies.
    """

    TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connection = PostgresConnection(connect)

    def write(self, tables: dict[str, JsonRows]) -> dict[str, int]:
        """Insert every table's rows in one transaction; returns rows inserted per table."""
        conn = self._connection.get()
        inserted = {}
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_json"
                    " (doc text, kafka_partition integer, kafka_offset bigint) ON COMMIT DELETE ROWS"
                )
                for table, rows in tables.items():
                    if rows.docs:
                        inserted[table] = self._insert(cur, table, rows)
            conn.commit()
        except self.TRANSIENT:
            self.close()
            raise
        except Exception:
            conn.rollback()
            raise
        return inserted

    @staticmethod
    def _insert(cur: psycopg2.extensions.cursor, table: str, rows: JsonRows) -> int:
        """Stage ``rows`` and insert the new ones into ``table``; returns how many were new."""
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
                " ON CONFLICT ({key}) DO NOTHING"
            ).format(
                table=sql.Identifier(table),
                key=sql.Identifier(rows.key),
                target=sql.SQL(", ").join(target),
                source=sql.SQL(", ").join(source),
            )
        )
        return cur.rowcount

    def close(self) -> None:
        self._connection.close()


class ScoredFeatures:
    """The feature rows events were scored with (``scores.features``), looked up by trans_num."""

    TRANSIENT = PostgresSink.TRANSIENT

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connection = PostgresConnection(connect)

    def __call__(self, trans_nums: Sequence[str]) -> dict[str, list[float]]:
        """``{trans_num: features}`` for the events among ``trans_nums`` whose score is stored."""
        conn = self._connection.get()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT trans_num, features FROM scores WHERE trans_num = ANY(%s) AND features IS NOT NULL",
                    (list(trans_nums),),
                )
                found = dict(cur.fetchall())
            conn.rollback()  # read only: end the transaction so the next look sees new rows
        except self.TRANSIENT:
            self._connection.close()
            raise
        return found

    def close(self) -> None:
        self._connection.close()
