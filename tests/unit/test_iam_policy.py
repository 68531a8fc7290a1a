"""deploy/iam-policy.json allows what the code calls, on the resources it uses, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from botocore import xform_name

from schemas.topics import ALL_TOPICS
from txguard.settings import SERVICE_NAMES, Settings

ROOT = Path(__file__).parents[2]
POLICY = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
# The modules that hold a DynamoDB client.
DYNAMODB_CODE = ("consumers/card_state.py", "consumers/rebuild.py", "txguard/clients.py", "txguard/app.py")
# Called by `txguard demo`'s reset of its scratch namespace only: not for production.
DEMO_ONLY = {"dynamodb:DeleteTable"}
WAITER_CALLS = {"table_exists": "DescribeTable", "table_not_exists": "DescribeTable"}


def statements(action_prefix: str) -> list[dict]:
    return [s for s in POLICY["Statement"] if any(a.startswith(action_prefix) for a in _list(s["Action"]))]


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allowed(action_prefix: str) -> set[str]:
    return {a for s in statements(action_prefix) for a in _list(s["Action"])}


def resources(action_prefix: str) -> set[str]:
    return {r for s in statements(action_prefix) for r in _list(s["Resource"])}


def test_the_policy_is_a_valid_allow_only_document():
    assert POLICY["Version"] == "2012-10-17"
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow" and re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"])
        for action in _list(statement["Action"]):
            assert re.fullmatch(r"(dynamodb|s3|kafka-cluster):[A-Za-z]+", action), action  # no wildcard action
        for resource in _list(statement["Resource"]):
            assert resource.startswith("arn:aws:") and resource != "*", resource


def test_dynamodb_actions_are_exactly_those_the_code_calls():
    operations = {xform_name(o): o for o in boto3.client("dynamodb", region_name="us-east-1").meta.service_model
                  .operation_names}  # fmt: skip
    called = set()
    for path in DYNAMODB_CODE:
        text = (ROOT / path).read_text()
        called |= {operations[m] for m in re.findall(r"\.(\w+)\(", text) if m in operations}
        called |= {operations[name] for name in re.findall(r'get_paginator\("(\w+)"\)', text)}
        called |= {WAITER_CALLS[name] for name in re.findall(r'get_waiter\("(\w+)"\)', text)}
    assert allowed("dynamodb:") == {f"dynamodb:{op}" for op in called} - DEMO_ONLY
    assert resources("dynamodb:") == {f"arn:aws:dynamodb:REGION:ACCOUNT_ID:table/{Settings().behavior_table}"}


def test_s3_reads_only_under_the_input_and_model_prefixes():
    for statement in statements("s3:"):
        actions, where = set(_list(statement["Action"])), _list(statement["Resource"])
        if actions == {"s3:ListBucket"}:
            assert statement["Condition"]["StringLike"]["s3:prefix"] in (["INPUT_PREFIX/*"], ["MODEL_PREFIX/*"])
        elif "INPUT_PREFIX" in where[0]:
            assert actions == {"s3:GetObject"}  # the replay only reads its input
        else:
            assert where == ["arn:aws:s3:::MODEL_BUCKET/MODEL_PREFIX/*"]


def _kafka_names(kind: str) -> set[str]:
    prefix = f"arn:aws:kafka:REGION:ACCOUNT_ID:{kind}/CLUSTER_NAME/CLUSTER_UUID/"
    return {r.removeprefix(prefix) for r in resources("kafka-cluster:") if r.startswith(prefix)}


def test_msk_covers_every_topic_group_and_the_scorers_transactions():
    assert _kafka_names("topic") == {spec.name for spec in ALL_TOPICS}
    groups = _kafka_names("group")
    assert set(SERVICE_NAMES) <= groups
    # The readers txguard starts with groups of their own: alerts, dead letters, the dashboard.
    code = "\n".join(p.read_text() for p in (ROOT / "txguard").rglob("*.py"))
    prefixes = set(re.findall(r'f"([a-z]+(?:-[a-z]+)*)-\{(?:os\.getpid|uuid)', code)) - {"txguard-count"}
    assert prefixes and {f"{p}-*" for p in prefixes} <= groups, prefixes
    assert _kafka_names("transactional-id") == {"scorer.*"}  # App._transactional_id: "<group>.<host>.<slot>"


@pytest.mark.parametrize("action", ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"])
def test_the_cluster_actions_the_clients_need(action):
    # Every client connects; the producers are idempotent (enable.idempotence).
    assert action in allowed("kafka-cluster:")
