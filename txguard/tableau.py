"""Tableau: data sources for Desktop / Server over PostgreSQL, and a ``.hyper`` extract for Public.

* ``txguard.<view>.tds``, one per analyst view (:data:`schemas.analyst.ANALYST_VIEWS`;
  ``txguard.tds`` is the row-level ``scored_transactions``): Tableau's PostgreSQL connector
  (``class='postgres'``) with the server, port, database and sslmode of the PostgreSQL
  the settings name, logging in as the read-only ``txguard_analyst``. A data source is one
  data model, and most views share no key to relate them by, so each gets its own. No
  password is written: Tableau asks for it.
* ``txguard.hyper``: every view as a table of the schema ``Extract``, written with
  Tableau's ``tableauhyperapi``. Tableau Public reads files only (Connect > To a File).
  Rows are streamed from a server-side cursor in chunks, never held whole.
"""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from schemas.analyst import ANALYST_ROLE, ANALYST_VIEWS

CHUNK_ROWS = 10_000
# The views with an event time: ``since`` limits these (the others are aggregates, small).
TIMED_VIEWS = ("scored_transactions", "alerts", "amount_vs_score")
MAIN_VIEW = "scored_transactions"


@dataclass(frozen=True)
class PostgresTarget:
    """Where Tableau connects: from the DSN the services use, with the analyst's role instead."""

    server: str
    port: int
    dbname: str
    schema: str
    sslmode: str | None = None

    @classmethod
    def from_dsn(cls, dsn: str, schema: str) -> PostgresTarget:
        params = parse_dsn(dsn)
        host = params.get("host") or params.get("hostaddr") or "127.0.0.1"
        if host.startswith("/"):
            raise ValueError(f"PostgreSQL is reached through a Unix socket ({host}): Tableau needs a TCP host")
        return cls(server=host, port=int(params.get("port") or 5432), dbname=params.get("dbname") or "postgres",
                   schema=schema, sslmode=params.get("sslmode"))  # fmt: skip


def tds_path(out: Path, view: str) -> Path:
    return out / ("txguard.tds" if view == MAIN_VIEW else f"txguard.{view}.tds")


def tds_document(target: PostgresTarget, view: str) -> bytes:
    """A Tableau data source (.tds) reading ``view`` live through the PostgreSQL connector."""
    connection_name = "postgres.txguard"
    root = ET.Element("datasource", {"formatted-name": f"txguard {view} ({target.schema})", "inline": "true",
                                     "version": "18.1"})  # fmt: skip
    federated = ET.SubElement(root, "connection", {"class": "federated"})
    named = ET.SubElement(ET.SubElement(federated, "named-connections"), "named-connection",
                          {"caption": target.server, "name": connection_name})  # fmt: skip
    attributes = {"authentication": "username-password", "class": "postgres", "dbname": target.dbname,
                  "one-time-sql": "", "port": str(target.port), "server": target.server,
                  "username": ANALYST_ROLE}  # fmt: skip
    if target.sslmode:
        attributes["sslmode"] = target.sslmode
    ET.SubElement(named, "connection", attributes)
    ET.SubElement(federated, "relation", {"connection": connection_name, "name": view, "type": "table",
                                          "table": f"[{target.schema}].[{view}]"})  # fmt: skip
    ET.indent(root)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b"<?xml version='1.0' encoding='utf-8' ?>\n" + body + b"\n"


def write_tds(out: Path, target: PostgresTarget, views: tuple[str, ...] = ANALYST_VIEWS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for view in views:
        path = tds_path(out, view)
        path.write_bytes(tds_document(target, view))
        paths.append(path)
    return paths


# --- the extract -----------------------------------------------------------------------

# PostgreSQL type OIDs (pg_type) -> Hyper types; anything else goes as text.
_BOOL, _INT8, _INT2, _INT4, _TEXT, _FLOAT4, _FLOAT8 = 16, 20, 21, 23, 25, 700, 701
_BPCHAR, _VARCHAR, _DATE, _TIMESTAMP, _TIMESTAMPTZ, _NUMERIC = 1042, 1043, 1082, 1114, 1184, 1700


def hyper_type(type_code: int, precision: int | None, scale: int | None) -> Any:
    from tableauhyperapi import SqlType

    simple = {_BOOL: SqlType.bool, _INT8: SqlType.big_int, _INT2: SqlType.small_int, _INT4: SqlType.int,
              _FLOAT4: SqlType.double, _FLOAT8: SqlType.double, _DATE: SqlType.date,
              _TIMESTAMP: SqlType.timestamp, _TIMESTAMPTZ: SqlType.timestamp_tz}  # fmt: skip
    if type_code in simple:
        return simple[type_code]()
    if type_code == _NUMERIC:
        # A declared numeric(p, s) (amounts) stays exact; a computed one (avg) has no declared
        # precision and goes as a double.
        if precision and 0 < precision <= 18 and scale is not None and scale >= 0:
            return SqlType.numeric(precision, scale)
        return SqlType.double()
    return SqlType.text()


def _converter(type_code: int, exact: bool) -> Callable[[Any], Any] | None:
    """What a PostgreSQL value needs to become a Hyper one (None: nothing)."""
    if type_code == _NUMERIC and not exact:
        return lambda v: None if v is None else float(v)
    if type_code in (_BOOL, _INT8, _INT2, _INT4, _FLOAT4, _FLOAT8, _DATE, _TIMESTAMP, _TIMESTAMPTZ, _NUMERIC):
        return None
    if type_code in (_TEXT, _BPCHAR, _VARCHAR):
        return None
    return lambda v: None if v is None else str(v)


@dataclass
class ExportProgress:
    view: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _chunks(conn, view: str, schema: str, since: date | None) -> Generator[tuple[list, list[tuple]], None, None]:
    """(description, rows) per chunk of ``view``, read through a server-side cursor."""
    query = sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(view))
    params: tuple = ()
    if since is not None and view in TIMED_VIEWS:
        query = query + sql.SQL(" WHERE event_time >= %s")
        params = (since,)
    with conn.cursor(name=f"tableau_{view}") as cur:
        cur.itersize = CHUNK_ROWS
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(CHUNK_ROWS)
            yield cur.description, rows
            if len(rows) < CHUNK_ROWS:
                return


def write_hyper(conn, schema: str, path: Path, views: tuple[str, ...] = ANALYST_VIEWS, since: date | None = None,
                on_progress: Callable[[ExportProgress], None] | None = None,
                log_dir: Path | None = None) -> dict[str, int]:  # fmt: skip
    """Write every view as the table ``"Extract".<view>`` of a new ``path``; returns rows per view.

    The Hyper process is stopped, and the file closed, even when a view fails. It logs to
    ``log_dir`` (default: beside ``path``).
    """
    from tableauhyperapi import Connection, CreateMode, HyperProcess, SchemaName, Telemetry

    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {}
    # Hyper writes its log where it runs unless told.
    (log_dir or path.parent).mkdir(parents=True, exist_ok=True)
    parameters = {"log_dir": str(log_dir or path.parent)}
    with HyperProcess(telemetry=Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=parameters) as hyper:
        with Connection(endpoint=hyper.endpoint, database=path, create_mode=CreateMode.CREATE_AND_REPLACE) as hconn:
            hconn.catalog.create_schema(SchemaName("Extract"))
            for view in views:
                counts[view] = _export_view(conn, schema, view, since, hconn, on_progress)
    return counts


def _export_view(conn, schema: str, view: str, since: date | None, hconn: Any,
                 on_progress: Callable[[ExportProgress], None] | None) -> int:  # fmt: skip
    """Stream one view into its Hyper table, created from the columns of the first chunk."""
    from tableauhyperapi import Inserter, Nullability, TableDefinition, TableName

    t0, rows = time.perf_counter(), 0
    chunks = _chunks(conn, view, schema, since)
    try:
        description, first = next(chunks)
        columns, converters = [], []
        for col in description:
            kind = hyper_type(col.type_code, col.precision, col.scale)
            columns.append(TableDefinition.Column(col.name, kind, Nullability.NULLABLE))
            converters.append(_converter(col.type_code, exact=str(kind).startswith("NUMERIC(")))
        table = TableDefinition(TableName("Extract", view), columns)
        hconn.catalog.create_table(table)
        convert = any(c is not None for c in converters)
        with Inserter(hconn, table) as inserter:  # rows stream to Hyper as they are added
            for chunk in itertools.chain([first], (rows_ for _, rows_ in chunks)):
                if convert:
                    chunk = [tuple(v if c is None else c(v) for c, v in zip(converters, row, strict=True))
                             for row in chunk]  # fmt: skip
                inserter.add_rows(chunk)
                rows += len(chunk)
                if on_progress:
                    on_progress(ExportProgress(view, rows, time.perf_counter() - t0))
            inserter.execute()
    finally:
        chunks.close()
        conn.rollback()  # ends the read transaction of the server-side cursor
    return rows
