"""DynamoDB table ``customer_behavior``: one item per card, keyed by the card token."""

from __future__ import annotations

PARTITION_KEY = "card_token"


def table_definition(table_name: str) -> dict:
    """Arguments for ``create_table``; on-demand billing so throughput follows load."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
