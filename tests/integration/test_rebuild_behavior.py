"""``txguard rebuild-behavior``: the DynamoDB items recomputed from PostgreSQL equal what streaming wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import ServiceThreads
from tests.integration.scored_data import ROWS, replay_scored
from txguard.app import App
from txguard.clients import Clients

pytestmark = pytest.mark.integration


def scan_items(clients: Clients) -> dict[str, dict]:
    ddb = clients.dynamodb()
    pages = ddb.get_paginator("scan").paginate(TableName=clients.settings.behavior_table, ConsistentRead=True)
    return {item["card_token"]["S"]: item for page in pages for item in page["Items"]}


def without_version(item: dict) -> dict:
    """The item less its write counter: streaming bumps it per checkpoint, a rebuild writes 1."""
    state = json.loads(item["state"]["S"])
    del state["version"]
    return {**{k: v for k, v in item.items() if k not in ("version", "state")}, "state": state}


def test_rebuild_equals_streaming_field_for_field(clients: Clients, tmp_path: Path) -> None:
    services = ServiceThreads()
    try:
        replay_scored(clients, services, tmp_path / "quarantine", verdict=False)
    finally:
        services.stop()  # the scorer's last checkpoint writes its card states
    streamed = scan_items(clients)
    assert len(streamed) > 10

    ddb = clients.dynamodb()
    ddb.delete_table(TableName=clients.settings.behavior_table)  # the table is lost
    ddb.get_waiter("table_not_exists").wait(TableName=clients.settings.behavior_table)
    progress = []
    stats = App(clients.settings).rebuild_behavior(on_progress=progress.append)
    rebuilt = scan_items(clients)

    assert (stats.rows, stats.cards, stats.deleted) == (ROWS, len(streamed), 0)
    assert progress and progress[-1].rows == ROWS
    assert rebuilt.keys() == streamed.keys()
    for token, item in streamed.items():
        assert without_version(rebuilt[token]) == without_version(item), token
        assert rebuilt[token]["version"] == {"N": "1"}

    table = clients.settings.behavior_table  # then damaged: an item lost, and one of a card PostgreSQL does not have
    ddb.delete_item(TableName=table, Key={"card_token": {"S": next(iter(streamed))}})
    ddb.put_item(TableName=table, Item={**next(iter(streamed.values())), "card_token": {"S": "no-such-card"}})
    stats = App(clients.settings).rebuild_behavior()
    assert (stats.cards, stats.deleted) == (len(streamed), 1)
    assert scan_items(clients) == rebuilt
