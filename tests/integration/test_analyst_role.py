"""The read-only role txguard_analyst, logged in over TCP with its own password: the analyst
views and nothing else."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors, sql
from psycopg2.extensions import parse_dsn

from schemas.analyst import ANALYST_ROLE, ANALYST_VIEWS
from tests.integration.scored_data import replay_scored
from txguard import stack
from txguard.clients import grant_analyst
from txguard.settings import Settings

pytestmark = pytest.mark.integration

RAW_TABLES = ("transactions", "scores", "labels", "verdicts", "schema_migrations", "drift_events")


@pytest.fixture(scope="module")
def scored(clients, services, tmp_path_factory):
    replay_scored(clients, services, tmp_path_factory.mktemp("q") / "q.jsonl")
    return clients


@pytest.fixture
def analyst(scored):
    """A connection as txguard_analyst, in autocommit so that one refused statement spoils no other."""
    dsn = parse_dsn(scored.endpoints.postgres_dsn)
    conn = psycopg2.connect(host=dsn["host"], port=dsn["port"], dbname=dsn["dbname"], user=ANALYST_ROLE,
                            password=stack.analyst_password(scored.settings), connect_timeout=5)  # fmt: skip
    conn.autocommit = True
    yield conn
    conn.close()


def _name(clients, relation: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(clients.settings.pg_schema), sql.Identifier(relation))


def test_the_password_file_is_private(scored):
    path = scored.settings.home / stack.ANALYST_PASSWORD_FILE
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_analyst_reads_every_view(scored, analyst):
    with analyst.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == ANALYST_ROLE
        for view in ANALYST_VIEWS:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_name(scored, view)))
            assert cur.fetchone()[0] > 0, view
        cur.execute(sql.SQL("SELECT count(*), count(verdict) FROM {}").format(_name(scored, "scored_transactions")))
        assert cur.fetchone() == (600, 1)


@pytest.mark.parametrize("relation", [*ANALYST_VIEWS[:2], *RAW_TABLES])
def test_the_analyst_writes_nothing(scored, analyst, relation):
    name = _name(scored, relation)
    statements = [
        sql.SQL("INSERT INTO {} (trans_num) VALUES ('0123456789abcdef0123456789abcdef')").format(name),
        sql.SQL("UPDATE {} SET trans_num = trans_num").format(name),
        sql.SQL("DELETE FROM {}").format(name),
        sql.SQL("TRUNCATE {}").format(name),
    ]
    if relation == "schema_migrations":
        statements[:2] = [sql.SQL("INSERT INTO {} (version, name) VALUES (999, 'x')").format(name),
                          sql.SQL("UPDATE {} SET name = name").format(name)]  # fmt: skip
    if relation == "drift_events":
        statements[:2] = [sql.SQL("INSERT INTO {} (drift_id) VALUES ('x')").format(name),
                          sql.SQL("UPDATE {} SET drift_id = drift_id").format(name)]  # fmt: skip
    with analyst.cursor() as cur:
        for statement in statements:
            # Views that join cannot be written by anyone; the privilege check refuses first where it can.
            with pytest.raises((errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState,
                                errors.FeatureNotSupported, errors.WrongObjectType)):  # fmt: skip
                cur.execute(statement)
    with scored.pg() as conn, conn.cursor() as cur:  # and nothing changed
        cur.execute("SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM scores)")
        assert cur.fetchone() == (600, 600)
    conn.close()


@pytest.mark.parametrize("table", RAW_TABLES)
def test_the_analyst_reads_no_raw_table(scored, analyst, table):
    with analyst.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(_name(scored, table)))


def test_the_analyst_reads_no_other_view(scored, analyst):
    with analyst.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(_name(scored, "shadow_scores")))


@pytest.mark.parametrize("statement", [
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT pg_read_binary_file('PG_VERSION')",
    "SELECT * FROM pg_ls_dir('.')",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "CREATE TEMP TABLE scratch (x int)",
    "CREATE TABLE public.scratch (x int)",
    "CREATE SCHEMA scratch",
])  # fmt: skip
def test_the_analyst_reads_no_server_file_and_creates_nothing(analyst, statement):
    with analyst.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(statement)


def test_the_analyst_creates_nothing_in_the_namespace(scored, analyst):
    with analyst.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(sql.SQL("CREATE TABLE {} (x int)").format(_name(scored, "scratch")))


def test_grants_are_idempotent_and_cover_a_view_added_later(scored, analyst):
    assert grant_analyst(scored) == []  # setup granted every view already
    conn = scored.pg()
    with conn, conn.cursor() as cur:  # as a later migration would: replace a view, losing nothing
        cur.execute("REVOKE SELECT ON alert_funnel FROM txguard_analyst")
    conn.close()
    with analyst.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(sql.SQL("SELECT * FROM {}").format(_name(scored, "alert_funnel")))
    assert grant_analyst(scored) == ["alert_funnel"]
    with analyst.cursor() as cur:
        cur.execute(sql.SQL("SELECT events FROM {}").format(_name(scored, "alert_funnel")))
        assert cur.fetchone()[0] == 600


def test_a_stack_started_before_the_role_existed_gets_it_at_the_next_stack_up(scored, stack_home):
    (stack_home / stack.ANALYST_PASSWORD_FILE).unlink()  # as on a stack an older txguard started
    stack.up(Settings(home=stack_home))  # finds it running: creates the password and the role's verifier
    dsn = parse_dsn(scored.endpoints.postgres_dsn)
    conn = psycopg2.connect(host=dsn["host"], port=dsn["port"], dbname=dsn["dbname"], user=ANALYST_ROLE,
                            password=stack.analyst_password(scored.settings), connect_timeout=5)  # fmt: skip
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_name(scored, "alerts")))
        assert cur.fetchone()[0] > 0
    conn.close()
