"""The PostgreSQL sink: each batch's JSON events parsed column-wise by Arrow and COPYed as typed CSV,
one transaction per batch, idempotent on each table's key."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from psycopg2 import sql

log = logging.getLogger(__name__)

# The Arrow type each column is read from the JSON as, chosen so that the CSV Arrow writes makes
# PostgreSQL store what json_populate_record stored from the same JSON: strings reach the column's
# input function as they were (timestamps included), doubles as the shortest text that reads back
# to the same double, numeric(p,s) at the column's own scale (Arrow refuses a finer value, which
# then takes the JSON path and is rounded by PostgreSQL as before). Arrow refuses a JSON value of
# another kind than the column's (a number for text, a string for a number), so that too takes the
# JSON path. A column of any other type (json, arrays of other types, ...) keeps its table on it.
# One difference, on purpose: a number below the smallest double (1e-400) is stored as 0, as the
# event schema and the scorer read it, where PostgreSQL refused the text and the event was dead-lettered.
_ARROW_TYPES = {
    "text": pa.string(),
    "timestamp without time zone": pa.string(),
    "boolean": pa.bool_(),
    "smallint": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "double precision": pa.float64(),
    "double precision[]": pa.list_(pa.float64()),
}
_CHAR = re.compile(r"character\(\d+\)")
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_POSITION = ("kafka_partition", "kafka_offset")
_ONE_THREAD = pa_json.ReadOptions(use_threads=False)


def _arrow_type(pg_type: str) -> pa.DataType | None:
    """The Arrow type that carries a column of ``pg_type`` exactly (``format_type`` spelling), if any."""
    if _CHAR.fullmatch(pg_type):
        return pa.string()
    if (numeric := _NUMERIC.fullmatch(pg_type)) and int(numeric[1]) <= 38:
        return pa.decimal128(int(numeric[1]), int(numeric[2]))
    return _ARROW_TYPES.get(pg_type)


def _pg_array_text(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    """``list<double>`` as PostgreSQL array text: ``{0.1,-0,1e-300}``, ``{}``, null for null."""
    items = pc.binary_join(pc.cast(lists, pa.list_(pa.string())), ",")
    return pc.binary_join_element_wise("{", items, "}", "")


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


def _typed_csv(rows: JsonRows, schema: pa.Schema) -> bytes | None:
    """``rows`` as CSV for ``COPY (FORMAT csv)`` of ``schema``'s columns (then the Kafka position
    when ``rows.with_position``); None when Arrow refuses the JSON."""
    docs, partitions, offsets = zip(*rows.docs, strict=True)
    # newlines_in_values: a document may be pretty-printed (and costs no more to read so)
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=True)
    try:
        # One thread: Arrow's pool parses a batch sooner but with ~15% more CPU, which the other
        # services of a busy machine need more.
        parsed = pa_json.read_json(io.BytesIO(b"\n".join(docs)), _ONE_THREAD, parse)
    except pa.ArrowInvalid:
        return None  # a duplicate key, a value of another kind or scale: the JSON path decides as before
    table = pa.table([_pg_array_text(c) if pa.types.is_list(c.type) else c for c in parsed.columns], schema.names)
    if rows.with_position:
        table = table.append_column(_POSITION[0], pa.array(partitions, pa.int32()))
        table = table.append_column(_POSITION[1], pa.array(offsets, pa.int64()))
    out = io.BytesIO()
    # Arrow quotes every string and writes null as an empty unquoted field: PostgreSQL's CSV reads
    # "" as the empty string and the unquoted empty field as NULL.
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()


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

    Arrow parses a table's JSON events column-wise (a schema from the table's column
    types, read once per connection) and writes them as CSV, which is COPYed straight
    into the table under a savepoint. If an event is already there (a redelivered
    batch) or comes twice, the COPY fails on the key: it is rolled back to the
    savepoint and the CSV goes through a temporary staging table and ``INSERT ... ON
    CONFLICT (key) DO NOTHING`` (``trans_num``, or the table's own id such as
    ``drift_id``). A table with a column Arrow cannot carry exactly, and JSON that
    Arrow refuses, take the JSON path: the raw documents are staged and PostgreSQL
    maps them onto the columns (``json_populate_record``). Either way a redelivered
    event is a no-op, and the whole batch commits or none of it does.
    """

    TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection]):
        self._connection = PostgresConnection(connect)
        self._schemas: dict[tuple[str, tuple[str, ...]], pa.Schema | None] = {}
        self._schemas_of: psycopg2.extensions.connection | None = None  # the connection they were read on

    def write(self, tables: dict[str, JsonRows]) -> dict[str, int]:
        """Insert every table's rows in one transaction; returns rows inserted per table."""
        conn = self._connection.get()
        if conn is not self._schemas_of:
            self._schemas, self._schemas_of = {}, conn
        inserted = {}
        try:
            with conn.cursor() as cur:
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

    def _insert(self, cur: psycopg2.extensions.cursor, table: str, rows: JsonRows) -> int:
        """Insert the new ones of ``rows`` into ``table``; returns how many were new."""
        columns = tuple(rows.columns)
        if (table, columns) not in self._schemas:
            self._schemas[table, columns] = _arrow_schema(cur, table, columns)
        schema = self._schemas[table, columns]
        csv = _typed_csv(rows, schema) if schema is not None else None
        if csv is None:
            return _insert_json(cur, table, rows)
        return _copy_csv(cur, table, columns + _POSITION if rows.with_position else columns, rows.key, csv)

    def close(self) -> None:
        self._connection.close()


def _arrow_schema(cur: psycopg2.extensions.cursor, table: str, columns: tuple[str, ...]) -> pa.Schema | None:
    """The Arrow schema ``columns`` of ``table`` are read from the JSON as; None if one has no exact type."""
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (sql.Identifier(table).as_string(cur),),
    )
    pg_types = dict(cur.fetchall())
    types = [_arrow_type(pg_types.get(c, "")) for c in columns]
    if any(t is None for t in types):
        log.info("%s: a column has no exact Arrow type, its events take the JSON path", table)
        return None
    return pa.schema(list(zip(columns, types, strict=True)))


def _copy_csv(cur: psycopg2.extensions.cursor, table: str, columns: tuple[str, ...], key: str, csv: bytes) -> int:
    """COPY ``csv`` into ``table``, skipping rows whose ``key`` is there already; returns rows inserted."""
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER false)")
    cur.execute("SAVEPOINT typed_copy")
    try:
        cur.copy_expert(copy.format(sql.Identifier(table), names).as_string(cur), io.BytesIO(csv))
        copied = cur.rowcount
        cur.execute("RELEASE SAVEPOINT typed_copy")
        return copied
    except psycopg2.errors.UniqueViolation:
        # A redelivered event is stored already, or one comes twice in the batch: stage them all, keep the new.
        cur.execute("ROLLBACK TO SAVEPOINT typed_copy")
    stage = sql.Identifier(f"stage_{table}")
    cur.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
            stage, sql.Identifier(table)
        )
    )
    cur.copy_expert(copy.format(stage, names).as_string(cur), io.BytesIO(csv))
    cur.execute(
        sql.SQL("INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ON CONFLICT ({key}) DO NOTHING").format(
            table=sql.Identifier(table), names=names, stage=stage, key=sql.Identifier(key)
        )
    )
    return cur.rowcount


def _insert_json(cur: psycopg2.extensions.cursor, table: str, rows: JsonRows) -> int:
    """Stage the raw JSON of ``rows`` and insert the new ones into ``table``; returns how many were new."""
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_json"
        " (doc text, kafka_partition integer, kafka_offset bigint) ON COMMIT DELETE ROWS"
    )
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
