"""A demo reset deletes only the demo's own namespace, and never on external servers unasked."""

from __future__ import annotations

import pytest

from txguard.cli import main
from txguard.clients import Clients, TeardownRefused, teardown
from txguard.settings import Settings
from txguard.stack import Endpoints

ENDPOINTS = Endpoints("127.0.0.1:9", "postgresql://postgres@127.0.0.1:9/txguard", "http://127.0.0.1:9", "")


@pytest.mark.parametrize("namespace", ["public", "pg_catalog", "information_schema", "Prod", "a-b", "x" * 64])
def test_the_demo_refuses_a_namespace_that_is_not_a_safe_name(capsys, tmp_path, namespace):
    assert main(["--home", str(tmp_path), "--namespace", namespace, "demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"txguard: error: namespace {namespace!r}") and "\n" not in err
    assert not (tmp_path / "stack.json").exists()  # refused before anything started


def test_a_bad_namespace_in_the_environment_is_one_line_too(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TXGUARD_NAMESPACE", "public")
    assert main(["--home", str(tmp_path), "stack", "status"]) == 2
    assert "reserved by PostgreSQL" in capsys.readouterr().err


def test_the_default_namespace_is_never_torn_down():
    with pytest.raises(TeardownRefused, match="default namespace"):
        teardown(Clients(Settings(namespace=""), ENDPOINTS), confirm_external=True)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"kafka_bootstrap": "b-1.msk:9092"}, "Kafka"),
        ({"postgres_dsn": "postgresql://u:p@rds:5432/db"}, "PostgreSQL"),
        ({"dynamodb_endpoint": "https://dynamodb.eu-west-1.amazonaws.com"}, "DynamoDB"),
    ],
)
def test_external_servers_are_not_reset_without_the_confirmation(setting, named):
    clients = Clients(Settings(namespace="demo", **setting), ENDPOINTS)
    # Refused before any connection: the endpoints here lead nowhere.
    with pytest.raises(TeardownRefused, match=f"on the external {named} .* --reset-external"):
        teardown(clients)


def test_the_demo_takes_the_confirmation_flag():
    from txguard.cli import parser

    assert parser().parse_args(["demo", "--reset-external"]).reset_external is True
    assert parser().parse_args(["demo"]).reset_external is False
