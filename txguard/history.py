"""The training history as PostgreSQL holds it: stored transactions with the labels that have arrived."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
from psycopg2 import extensions, sql

from model.train import TRAINING_COLUMNS

_NUMERIC = {"amt": "float64", "birth_year": "int64", "city_pop": "int64", "is_fraud": "float64"}


def load_labelled_history(conn, *, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Transactions with event time in ``[since, until)``, in event-time order, with their labels.

    Parameters
    ----------
    conn : psycopg2 connection
        With ``search_path`` set to the txguard schema (``Clients.pg()``).
    since, until : datetime, optional
        Event-time window; None leaves that side open.

    Returns
    -------
    pandas.DataFrame
        ``model.train.TRAINING_COLUMNS`` and ``is_fraud``, a nullable boolean: NA
        for an event whose label has not arrived. Which of the arrived labels
        training may use (those of events before its label cut-off) is
        :func:`model.train.train`'s decision.
    """
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if since is not None:
        conditions.append(sql.SQL("t.event_time >= %(since)s"))
    if until is not None:
        conditions.append(sql.SQL("t.event_time < %(until)s"))
    query = sql.SQL(
        "SELECT t.card_token, t.event_time, t.amt::float8 AS amt, t.category, t.birth_year, t.city_pop,"
        " l.is_fraud::int AS is_fraud"
        " FROM transactions t LEFT JOIN labels l USING (trans_num)"
        " WHERE {window} ORDER BY t.event_time, t.trans_num"
    ).format(window=sql.SQL(" AND ").join(conditions))
    # COPY and the CSV reader: far faster than fetching tuples for a year of events. COPY
    # takes no bind parameters, so psycopg2 quotes them into the statement (``mogrify``).
    buffer = io.StringIO()
    with conn.cursor() as cur:
        statement = cur.mogrify(query, {"since": since, "until": until}).decode(extensions.encodings[conn.encoding])
        cur.copy_expert(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)", buffer)
    conn.rollback()  # only read: end the transaction COPY opened
    buffer.seek(0)
    frame = pd.read_csv(
        buffer,
        dtype={"card_token": str, "category": str, **_NUMERIC},
        parse_dates=["event_time"],
        keep_default_na=False,
        na_values={"is_fraud": [""]},  # NULL is an empty unquoted field; only a label may be missing
    )
    frame["is_fraud"] = frame["is_fraud"].astype("boolean")
    return frame[[*TRAINING_COLUMNS, "is_fraud"]]


def latest_event_time(conn) -> datetime | None:
    """The latest event time among the stored transactions (None: there are none)."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(event_time) FROM transactions")
        row = cur.fetchone()
    conn.rollback()
    return row[0] if row else None
