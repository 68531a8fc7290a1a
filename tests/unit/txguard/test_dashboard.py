"""The dashboard's checks that need no server: bind refusal, auth, Host and Origin checks,
request validation, the page's static files, the thread-to-asyncio broadcast.

Requests that reach PostgreSQL or Kafka are tested in tests/integration/test_dashboard_browser.py.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from txguard.app import AppError
from txguard.cli import main
from txguard.dashboard.live import Broadcast
from txguard.dashboard.security import basic_user, host_name, is_loopback
from txguard.dashboard.server import STATIC, create_app
from txguard.settings import Settings

TOKEN = "correct horse battery staple"
GOOD_VERDICT = {"trans_num": "0123456789abcdef0123456789abcdef", "verdict": "confirmed_fraud"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, namespace="dashunit")


def client(settings: Settings, host: str = "127.0.0.1", base_url: str = "http://127.0.0.1:8050") -> TestClient:
    # Not entered as a context manager: the lifespan (Kafka threads) does not start.
    return TestClient(create_app(settings, host=host), base_url=base_url)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "dashboard.example"])
def test_a_non_loopback_interface_needs_a_token(settings, host):
    with pytest.raises(AppError, match="TXGUARD_DASHBOARD_TOKEN is not set"):
        create_app(settings, host=host)
    create_app(settings.model_copy(update={"dashboard_token": SecretStr(TOKEN)}), host=host)  # with one: accepted


def test_the_cli_refuses_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("TXGUARD_DASHBOARD_TOKEN", raising=False)
    assert main(["--home", str(tmp_path), "dashboard", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txguard: error: refusing to serve the dashboard on 0.0.0.0") and "\n" not in err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_names(host):
    assert is_loopback(host)


@pytest.mark.parametrize(("header", "host"), [("127.0.0.1:8050", "127.0.0.1"), ("[::1]:8050", "[::1]"),
                                              ("localhost", "localhost"), ("::1", "::1")])  # fmt: skip
def test_host_name_drops_the_port(header, host):
    assert host_name(header) == host


def test_with_a_token_every_request_needs_it(settings):
    c = client(settings.model_copy(update={"dashboard_token": SecretStr(TOKEN)}))
    for path in ("/", "/api/config", "/events", "/static/dashboard.js", "/api/alerts"):
        response = c.get(path)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic ")
        assert c.get(path, headers=basic("ana", "wrong")).status_code == 401
    response = c.get("/api/config", headers=basic("ana lyst", TOKEN))
    assert response.status_code == 200
    assert response.json()["analyst"] == "ana lyst" and response.json()["analyst_editable"] is False
    assert c.post("/api/verdicts", json=GOOD_VERDICT).status_code == 401


def test_basic_credentials_parsing():
    assert basic_user(basic("ana", TOKEN)["Authorization"], TOKEN) == "ana"
    assert basic_user(basic("", TOKEN)["Authorization"], TOKEN) is None  # a verdict needs a who
    assert basic_user(basic("a\nb", TOKEN)["Authorization"], TOKEN) is None
    assert basic_user("Basic !!!not-base64", TOKEN) is None
    assert basic_user("Bearer " + TOKEN, TOKEN) is None
    assert basic_user(None, TOKEN) is None


def test_loopback_refuses_foreign_host_names(settings):
    """DNS rebinding: a foreign site's name resolved to 127.0.0.1 still says its own name in Host."""
    c = client(settings)
    assert c.get("/", headers={"Host": "attacker.example"}).status_code == 421
    assert c.get("/", headers={"Host": "attacker.example:8050"}).status_code == 421
    for host in ("127.0.0.1:8050", "localhost:8050", "[::1]:8050"):
        assert c.get("/", headers={"Host": host}).status_code == 200


def test_without_a_token_on_loopback_the_page_asks_who(settings):
    config = client(settings).get("/api/config").json()
    assert config["analyst_editable"] is True and config["analyst"] and config["namespace"] == "dashunit"


def test_the_page_is_served_with_a_strict_content_security_policy(settings):
    response = client(settings).get("/")
    assert response.status_code == 200 and "<title>txguard" in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    for name in ("dashboard.js", "dashboard.css"):
        assert client(settings).get(f"/static/{name}").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"trans_num": "not-hex", "verdict": "confirmed_fraud"},
        {"trans_num": "0123456789ABCDEF0123456789ABCDEF", "verdict": "confirmed_fraud"},  # stored lowercase
        {"trans_num": "0123456789abcdef0123456789abcde", "verdict": "confirmed_fraud"},  # 31 digits
        {"trans_num": "0123456789abcdef0123456789abcdef", "verdict": "maybe"},
        {"trans_num": "0123456789abcdef0123456789abcdef"},
        {**GOOD_VERDICT, "analyst": "x" * 65},
        {**GOOD_VERDICT, "analyst": "evil\r\nname"},
        {**GOOD_VERDICT, "extra": 1},
    ],
)
def test_a_malformed_verdict_is_422(settings, body):
    assert client(settings).post("/api/verdicts", json=body).status_code == 422


def test_a_malformed_alert_id_is_422(settings):
    assert client(settings).get("/api/alerts/..%2F..%2Fetc").status_code in (404, 422)
    assert client(settings).get("/api/alerts/xyz").status_code == 422


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another local port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_site_verdict_is_refused(settings, headers):
    response = client(settings).post("/api/verdicts", json=GOOD_VERDICT, headers=headers)
    assert response.status_code == 403


def test_a_verdict_must_be_json(settings):
    c = client(settings)
    as_form = c.post("/api/verdicts", data=GOOD_VERDICT)  # what a cross-site HTML form can send
    as_text = c.post("/api/verdicts", content=b'{"trans_num": "0123456789abcdef0123456789abcdef", '
                     b'"verdict": "confirmed_fraud"}', headers={"Content-Type": "text/plain"})  # fmt: skip
    assert as_form.status_code in (403, 422) and as_text.status_code in (403, 422)


def test_unknown_charts_are_404(settings):
    c = client(settings)
    assert c.get("/api/charts/no_such_chart").status_code == 404
    assert c.get("/charts/no_such_chart.png").status_code == 404


def test_the_page_inserts_no_markup_and_fetches_nothing_from_elsewhere():
    script = (STATIC / "dashboard.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert "textContent" in script
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), f"{path.name} links out"
        assert "@import" not in text and "@font-face" not in text


def test_broadcast_hands_thread_items_to_asyncio_subscribers():
    broadcast = Broadcast(queue_size=3)

    async def receive() -> list[int]:
        first, second = broadcast.subscribe(), broadcast.subscribe()
        publisher = threading.Thread(target=lambda: [broadcast.publish(i) for i in range(5)])
        publisher.start()
        publisher.join()
        got = [await asyncio.wait_for(first.get(), 5) for _ in range(3)]
        broadcast.unsubscribe(second)
        broadcast.publish(99)
        assert [await asyncio.wait_for(first.get(), 5)] == [99] and second.qsize() == 3
        return got

    assert asyncio.run(receive()) == [2, 3, 4]  # a slow subscriber keeps the newest


def test_the_commands_default_to_loopback():
    from txguard.cli import parser

    dashboard = parser().parse_args(["dashboard"])
    assert (dashboard.host, dashboard.port) == ("127.0.0.1", 8050)
    demo = parser().parse_args(["demo", "--serve", "--port", "9000"])
    assert (demo.serve, demo.host, demo.port) == (True, "127.0.0.1", 9000)
    assert parser().parse_args(["demo"]).serve is False
