"""The demo's reset on real servers: it drops its own namespace, and nothing else."""

from __future__ import annotations

import uuid

import pytest

from schemas.topics import ALL_TOPICS
from tests.integration.conftest import pg_query
from txguard.clients import Clients, TeardownRefused, external_endpoints, reset, setup, teardown
from txguard.settings import Settings

pytestmark = pytest.mark.integration


def namespace_of(settings: Settings) -> Clients:
    return Clients(settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}"}))


def schema_exists(clients: Clients) -> bool:
    rows = pg_query(clients, f"SELECT 1 FROM pg_namespace WHERE nspname = '{clients.settings.pg_schema}'")  # noqa: S608
    return bool(rows)


def test_a_reset_drops_the_namespace_it_made(settings):
    clients = namespace_of(settings)
    confirm = bool(external_endpoints(settings))  # the servers may be external ones: then it must be confirmed
    reset(clients, confirm_external=confirm)
    conn = clients.pg()
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE leftover (x int)")
    conn.close()
    reset(clients, confirm_external=confirm)  # marked by the first reset: dropped and made again
    assert pg_query(clients, "SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'") == [(0,)]
    teardown(clients, confirm_external=confirm)
    assert not schema_exists(clients)


def test_a_namespace_the_demo_did_not_make_is_not_torn_down(settings):
    clients = namespace_of(settings)
    setup(clients)  # as `txguard setup` makes one for real work
    with pytest.raises(TeardownRefused, match="did not create it"):
        teardown(clients, confirm_external=True)
    assert schema_exists(clients)
    topics = clients.admin().list_topics(timeout=10).topics
    assert all(clients.settings.topic(spec) in topics for spec in ALL_TOPICS)


def test_servers_given_in_settings_are_reset_only_when_confirmed(settings):
    clients = namespace_of(settings)
    running = clients.endpoints
    external = Clients(clients.settings.model_copy(update={
        "kafka_bootstrap": running.kafka_bootstrap, "dynamodb_endpoint": running.dynamodb_endpoint}))  # fmt: skip
    reset(external, confirm_external=True)
    with pytest.raises(TeardownRefused, match="external Kafka, DynamoDB"):
        reset(external)
    assert schema_exists(clients)
    teardown(external, confirm_external=True)
    assert not schema_exists(clients)
