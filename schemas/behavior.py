"""DynamoDB table ``customer_behavior``: one item per card, keyed by the card token.

The item codec lives here so every reader and writer shares one shape: readable
top-level aggregates for analysts and other services, plus ``state``, the card's
exact serialised state (``CardBehavior.to_dict()``) the scorer restores from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

PARTITION_KEY = "card_token"
# What the scorer reads back: the key and the exact state.
STATE_PROJECTION = {"ProjectionExpression": "card_token, #s", "ExpressionAttributeNames": {"#s": "state"}}


def table_definition(table_name: str) -> dict:
    """Arguments for ``create_table``; on-demand billing so throughput follows load."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def key(card_token: str) -> dict:
    return {PARTITION_KEY: {"S": card_token}}


def _n(value: float | int) -> dict:
    return {"N": str(value)}


def _dollars(amount: float) -> dict:
    """An amount as DynamoDB stores it exactly: whole cents (it refuses numbers below 1e-130)."""
    return {"N": str(Decimal(round(amount * 100)) / 100)}


def encode_item(card_token: str, state: Mapping[str, Any], std: float, version: int) -> dict:
    """The item of one card from its plain-data state (``CardBehavior.to_dict()``)."""
    stored = {**state, "version": version}
    count = int(state["count"])
    item = {
        PARTITION_KEY: {"S": card_token},
        "txn_count": _n(count),
        "amount_sum": {"N": str(Decimal(int(state["sum_cents"])) / 100)},
        "amount_mean": _n(round(float(state["mean"]), 6)),
        "amount_std": _n(round(std, 6)),
        "amount_min": _dollars(float(state["min_amt"]) if count else 0.0),
        "amount_max": _dollars(float(state["max_amt"])),
        "category_counts": {"M": {k: _n(v) for k, v in state["category_counts"].items()}},
        "state": {"S": json.dumps(stored, separators=(",", ":"))},
        "version": _n(version),
    }
    if state.get("last_seen") is not None:
        item["last_txn_time"] = _n(state["last_seen"])
        item["first_txn_time"] = _n(state["first_seen"])
        item["last_category"] = {"S": state["last_category"]}
    if state.get("watermark") is not None:
        item["watermark_partition"] = _n(state["watermark"][0])
        item["watermark_offset"] = _n(state["watermark"][1])
    return item


def decode_state(item: Mapping[str, Any]) -> tuple[str, dict]:
    """(card token, plain-data state) of a stored item."""
    return item[PARTITION_KEY]["S"], json.loads(item["state"]["S"])
