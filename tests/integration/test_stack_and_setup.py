"""The embedded stack's errors and the idempotent setup, on real servers."""

import socket
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS
from txguard import stack
from txguard.clients import setup
from txguard.settings import Settings

pytestmark = pytest.mark.integration


def test_setup_twice_changes_nothing(clients):
    again = setup(clients)  # the fixture already ran it once
    assert again == {"topics": [], "migrations": [], "analyst_grants": [], "tables": []}
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        applied = cur.fetchall()
    files = sorted((Path(__file__).resolve().parents[2] / "schemas" / "sql").glob("[0-9][0-9][0-9]_*.sql"))
    assert applied == [(int(f.name[:3]), f.name) for f in files]  # each once, in order
    assert applied[:2] == [(1, "001_tables.sql"), (2, "002_views.sql")]
    conn.close()
    topics = clients.admin().list_topics(timeout=10).topics
    for spec in ALL_TOPICS:
        assert len(topics[clients.settings.topic(spec)].partitions) == clients.settings.partitions


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(home=tmp_path, postgres_dsn="postgresql://x@127.0.0.1:1/x", dynamodb_endpoint="http://x")
        with pytest.raises(stack.StackError, match=f"port {port} for Kafka is already in use"):
            stack.up(settings, {"kafka": port})


def test_status_lists_every_endpoint(stack_home):
    status = stack.status(Settings(home=stack_home))
    # dynalite only where Node.js and `npm ci` gave it; moto serves DynamoDB otherwise
    assert all(status[name]["running"] for name in ("kafka", "postgres", "moto"))
    assert status["dynalite"]["running"] == bool(status["dynalite"].get("pid"))
    assert status["kafka"]["bootstrap"].startswith("127.0.0.1:")
    assert status["postgres"]["dsn"].startswith("postgresql://")
    assert status["moto"]["endpoint"].startswith("http://127.0.0.1:")


def test_external_endpoints_start_nothing(tmp_path, stack_home):
    running = stack.endpoints(Settings(home=stack_home))
    external = Settings(home=tmp_path, kafka_bootstrap=running.kafka_bootstrap,
                        postgres_dsn=running.postgres_dsn, dynamodb_endpoint=running.dynamodb_endpoint)  # fmt: skip
    assert stack.up(external).kafka_bootstrap == running.kafka_bootstrap
    assert not (tmp_path / "stack.json").exists()
