"""Who may reach the embedded servers: moto answers no foreign web page, and no server
inherits our environment."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import ENV_CANARY
from txguard import stack
from txguard.settings import Settings

pytestmark = pytest.mark.integration


def _embedded(stack_home: Path, name: str) -> dict:
    entry = stack._read_state(Settings(home=stack_home)).get(name)
    if not entry:
        pytest.skip(f"{name} is external in this run")
    return entry


def _moto_request(endpoint: str, method: str, headers: dict[str, str], body: bytes | None = None):
    request = urllib.request.Request(endpoint, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def test_moto_answers_no_foreign_web_page(stack_home):
    endpoint = _embedded(stack_home, "moto")["endpoint"]
    origin = {"Origin": "https://attacker.example"}
    # The browser's preflight for a DynamoDB call from that page, then the call itself.
    preflight = {**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-amz-target,authorization"}  # fmt: skip
    call = {**origin, "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=0"}  # fmt: skip
    answers = [_moto_request(endpoint + "/", "OPTIONS", preflight),
               _moto_request(endpoint + "/", "POST", call, b"{}"),
               _moto_request(endpoint + "/moto-api/", "GET", origin)]  # fmt: skip
    assert [status for status, _ in answers][1:] == [200, 200]  # it works, only a browser would not show it
    for _, headers in answers:
        assert not [name for name in headers if name.lower().startswith("access-control-allow")]


def test_servers_do_not_inherit_our_environment(stack_home):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    # pg_ctl starts postgres through sh, which adds these.
    added_by_pg_ctl = {"PGDATA", "PGSYSCONFDIR", "PG_GRANDPARENT_PID", "PWD"}
    for name, explicit in (("kafka", set()), ("postgres", added_by_pg_ctl), ("moto", {"MOTO_DISABLE_GLOBAL_CORS"})):
        entry = _embedded(stack_home, name)
        environ = Path(f"/proc/{entry['pid']}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
        assert ENV_CANARY not in names, name
        inherited = {n for n in names if n not in {"PATH", "HOME", "LANG", "TZ"} and not n.startswith("LC_")}
        assert inherited <= explicit, (name, inherited - explicit)
