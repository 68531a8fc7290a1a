"""deploy/postgres-roles.sql on the embedded PostgreSQL, as a DBA would run it on RDS: `txguard
setup` as txguard_owner, the services as txguard_writer persist a replay, and the writer can do
what the services do and nothing more."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn
from pydantic import SecretStr

from consumers.postgres import PostgresSink, ScoredFeatures
from producer.cards import CardProtector
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.analyst import ANALYST_ROLE, ANALYST_VIEWS
from schemas.events import TransactionEvent
from schemas.topics import DLQ, LABELS, TRANSACTIONS
from tests.conftest import FIXTURES
from tests.integration.conftest import wait_for
from tests.integration.test_persist_sink import events, new_trans_nums, rows, transaction
from txguard import stack
from txguard.app import App
from txguard.clients import Clients, refresh_analyst_views, setup
from txguard.history import latest_event_time

pytestmark = pytest.mark.integration
ROLES_SQL = Path(__file__).parents[2] / "deploy" / "postgres-roles.sql"


def run_roles_sql(settings, schema: str) -> str:
    entry = stack._read_state(settings)["postgres"]
    env = {**os.environ, "PGPASSWORD": stack.superuser_password(settings)}
    result = subprocess.run([stack._pg_bin("psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(entry["port"]),
                             "-U", stack.SUPERUSER, "-d", stack.DATABASE, "-v", f"schema={schema}",
                             "-v", f"database={stack.DATABASE}", "-f", str(ROLES_SQL)],
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def roles(settings):
    """The schema, owner and writer DSNs, set up as the file says: roles, setup, roles again."""
    if not stack._read_state(settings).get("postgres"):
        pytest.skip("PostgreSQL is external in this run")
    schema = f"r{uuid.uuid4().hex[:10]}"
    assert "run `txguard setup` as txguard_owner, then this file again" in run_roles_sql(settings, schema)
    passwords = {role: secrets.token_urlsafe(16) for role in ("txguard_owner", "txguard_writer")}
    dsn = parse_dsn(Clients(settings).endpoints.postgres_dsn)
    su = psycopg2.connect(host="127.0.0.1", port=dsn["port"], user=stack.SUPERUSER, dbname=stack.DATABASE,
                          password=stack.superuser_password(settings))  # fmt: skip
    su.autocommit = True
    with su.cursor() as cur:
        for role, password in passwords.items():
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (password,))
    su.close()
    login = {role: make_dsn(host="127.0.0.1", port=dsn["port"], dbname=stack.DATABASE, user=role, password=password)
             for role, password in passwords.items()}  # fmt: skip

    def logged_in_as(role: str) -> Clients:
        return Clients(settings.model_copy(update={"namespace": schema, "postgres_dsn": SecretStr(login[role])}))

    owner = logged_in_as("txguard_owner")
    setup(owner)
    run_roles_sql(settings, schema)
    return owner, logged_in_as("txguard_writer")


def test_the_services_persist_as_the_writer(roles, services):
    _, writer = roles
    app = App(writer.settings)
    service, _producer = app.service("persist")
    services.start(service, writer)
    s = writer.settings
    stats = replay(CsvSource(str(FIXTURES / "kaggle_rows2301_2900.csv")), writer.producer(),
                   Topics(s.topic(TRANSACTIONS), s.topic(LABELS), s.topic(DLQ)),
                   CardProtector(b"integration-test-key-0123456789"), ReplayOptions(labels=False))  # fmt: skip
    assert stats.accepted == 600

    def stored() -> int:
        conn = writer.pg()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM transactions")
                return cur.fetchone()[0]
        finally:
            conn.close()

    wait_for(lambda: stored() == 600, what="600 transactions stored by txguard_writer")
    conn = writer.pg()
    try:
        assert latest_event_time(conn) is not None  # the retrainer's read
    finally:
        conn.close()
    assert ScoredFeatures(writer.pg)(["no-such-event"]) == {}  # the learner's read
    refresh_analyst_views(writer.pg)  # the dashboard's and refresh-views' rollup


def test_the_writer_stores_a_redelivered_batch_once(roles):
    """The typed COPY's fallback (a temporary staging table LIKE the table) works with the writer's rights."""
    _, writer = roles
    docs = events(TransactionEvent, transaction, new_trans_nums(3), 8)
    sink = PostgresSink(writer.pg)
    try:
        assert sink.write({"transactions": rows(TransactionEvent, docs[:1], True)}) == {"transactions": 1}
        assert sink.write({"transactions": rows(TransactionEvent, docs, True)}) == {"transactions": 2}
    finally:
        sink.close()


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM transactions",
        "TRUNCATE scores",
        "UPDATE scores SET flagged = true",
        "DROP TABLE labels",
        "CREATE TABLE extra (x int)",
        "ALTER TABLE transactions ADD COLUMN extra int",
        "DELETE FROM verdicts",
        "INSERT INTO schema_migrations (version, name) VALUES (999, 'x')",
    ],
)
def test_the_writer_may_do_nothing_else(roles, statement):
    _, writer = roles
    conn = writer.pg()
    try:
        with conn.cursor() as cur, pytest.raises((psycopg2.errors.InsufficientPrivilege,
                                                 psycopg2.errors.ObjectNotInPrerequisiteState)):  # fmt: skip
            cur.execute(statement)
    finally:
        conn.close()


def test_the_analyst_grants_come_from_setup(roles):
    owner, _ = roles
    conn = owner.pg()
    try:
        with conn.cursor() as cur:
            schema = owner.settings.pg_schema
            for view in ANALYST_VIEWS:
                cur.execute("SELECT has_table_privilege(%s, format('%%I.%%I', %s::text, %s::text), 'SELECT')",
                            (ANALYST_ROLE, schema, view))  # fmt: skip
                assert cur.fetchone()[0], view
            cur.execute("SELECT has_table_privilege(%s, format('%%I.transactions', %s::text), 'SELECT')",
                        (ANALYST_ROLE, schema))  # fmt: skip
            assert cur.fetchone()[0] is False
    finally:
        conn.close()
