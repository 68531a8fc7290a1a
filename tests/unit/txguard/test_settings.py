"""Settings that guard the stores: namespaces, and one message size limit for every client."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from txguard import clients as clients_module
from txguard.clients import Clients
from txguard.settings import Settings
from txguard.stack import Endpoints

ENDPOINTS = Endpoints("127.0.0.1:9", "postgresql://postgres@127.0.0.1:9/txguard", "http://127.0.0.1:9", "")


@pytest.mark.parametrize("name", ["", "demo", "t0123456789", "a", "bench_2", "x" * 41])
def test_namespaces_that_are_safe_names(name):
    assert Settings(namespace=name).namespace == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("public", "reserved by PostgreSQL"),
        ("information_schema", "reserved by PostgreSQL"),
        ("pg_catalog", "reserved by PostgreSQL"),
        ("pg_x", "reserved by PostgreSQL"),
        ("Demo", "is not allowed"),
        ("1demo", "is not allowed"),
        ("_demo", "is not allowed"),
        ("de-mo", "is not allowed"),
        ("de.mo", "is not allowed"),
        ("../etc", "is not allowed"),
        ("demo\n", "is not allowed"),
        ("x" * 42, "is not allowed"),
    ],
)
def test_namespaces_that_could_reach_other_data_are_refused(name, why):
    with pytest.raises(ValidationError, match=why):
        Settings(namespace=name)


def test_the_namespace_from_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("TXGUARD_NAMESPACE", "public")
    with pytest.raises(ValidationError, match="reserved by PostgreSQL"):
        Settings()


def test_an_accepted_row_must_fit_in_a_message():
    assert Settings(max_message_bytes=200_000, max_line_bytes=97_952).max_line_bytes == 97_952
    with pytest.raises(ValidationError, match="a row's event can be twice its line"):
        Settings(max_message_bytes=200_000, max_line_bytes=97_953)


def test_producers_and_consumers_share_the_message_limit(monkeypatch):
    built: dict[str, dict] = {}
    monkeypatch.setattr(clients_module, "ReportingProducer", lambda conf: built.setdefault("producer", conf))
    monkeypatch.setattr(clients_module, "Consumer", lambda conf: built.setdefault("consumer", conf))
    monkeypatch.setattr(clients_module, "check_kafka", lambda conf, timeout_s: None)  # no broker at ENDPOINTS
    for limit in (1_000_000, 20_000_000):
        built.clear()
        clients = Clients(Settings(max_message_bytes=limit), ENDPOINTS)
        clients.producer()
        clients.consumer("persist")
        assert built["producer"]["message.max.bytes"] == limit
        consumer = built["consumer"]
        assert consumer["max.partition.fetch.bytes"] >= limit and consumer["fetch.max.bytes"] >= limit
        assert consumer["receive.message.max.bytes"] >= consumer["fetch.max.bytes"] + 512
