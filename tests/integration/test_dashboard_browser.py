"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the
embedded stack with a replayed slice of real transactions scored by the real services.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (Debian's chromium package): `make browser` installs it as root",
                allow_module_level=True)  # fmt: skip
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

from schemas.events import AlertEvent  # noqa: E402
from schemas.topics import ALERTS, LABELS, TRANSACTIONS  # noqa: E402
from streaming.producer import produce  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402
from tests.integration.conftest import pg_count, pg_query, read_topic, wait_for  # noqa: E402
from tests.integration.scored_data import replay_scored  # noqa: E402
from txguard import stack  # noqa: E402
from txguard.app import App  # noqa: E402
from txguard.dashboard.server import create_app  # noqa: E402

pytestmark = pytest.mark.integration
KAGGLE = FIXTURES / "kaggle_rows2301_2900.csv"
MAIN_CHARTS = ("daily_trend", "score_by_category", "anomalies_by_state", "amount_vs_score")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]  # fmt: skip
ANALYST = "playwright analyst"


@pytest.fixture(scope="module")
def replayed(clients, services, tmp_path_factory):
    """The 600-row real slice replayed through persist and scorer: scored rows and alerts in PostgreSQL."""
    replay_scored(clients, services, tmp_path_factory.mktemp("q") / "q.jsonl", verdict=False)
    assert pg_count(clients, "alerts") > 0, "the model flagged nothing"


@contextmanager
def served(api) -> Iterator[str]:  # noqa: ANN001 - FastAPI
    """``api`` served by uvicorn in a thread on a free loopback port, until the block ends: its URL."""
    import uvicorn

    port = stack.free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started and api.state.feed_ready(), 30, "the dashboard and its alert feed")
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def dashboard(clients, replayed) -> Iterator[tuple[str, object]]:
    """The dashboard on loopback without a token: (url, FastAPI app)."""
    api = create_app(clients.settings, app=App(clients.settings))
    with served(api) as url:
        yield url, api


@pytest.fixture(scope="module")
def browser(dashboard):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, dashboard) -> Iterator[Page]:
    url, _ = dashboard
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    offsite: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url) else offsite.append(r.url))
    page.goto(url)
    expect(page.locator("#feed")).to_have_text("live")
    expect(page.locator("#alerts tbody tr").first).to_be_visible()
    page.fill("#analyst", ANALYST)
    page.dispatch_event("#analyst", "change")
    try:
        yield page
    finally:
        context.close()
    assert offsite == [], "the page fetched from elsewhere"


def stored_alerts(clients) -> list[tuple]:
    return pg_query(clients, "SELECT trans_num, card_token, reason FROM alerts ORDER BY event_time DESC")


def test_the_page_shows_the_stored_alerts_and_no_card_number(clients, page):
    alerts = stored_alerts(clients)
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(min(len(alerts), clients.settings.dashboard_alerts))
    assert rows.first.get_attribute("data-trans-num") == alerts[0][0]
    text = page.content()
    card_numbers = {row["cc_num"] for row in csv.DictReader(KAGGLE.open())}
    assert not card_numbers & set(re.findall(r"\d{11,19}", text))
    assert not any(token in text for _, token, _ in alerts), "a whole card token is on the page"
    expect(page.locator("#namespace")).to_contain_text(clients.settings.namespace)


def test_an_alert_published_now_appears_without_a_reload(clients, page, dashboard):
    # A scored transaction the model did not flag, published as an alert now, as a scorer would.
    trans_num, card_token, card_masked, event_time, amt, category, merchant, score, version = pg_query(
        clients, "SELECT trans_num, card_token, card_masked, event_time, amt, category, merchant, score,"
        " model_version FROM scored_transactions WHERE NOT flagged ORDER BY trans_num LIMIT 1")[0]  # fmt: skip
    alert = AlertEvent(trans_num=trans_num, card_token=card_token, card_masked=card_masked, event_time=event_time,
                       amt=float(amt), category=category, merchant=merchant, score=score,
                       reason="published during the browser test", model_version=version)  # fmt: skip
    page.evaluate("window.notReloaded = true")
    producer = clients.producer()
    produce(producer, clients.settings.topic(ALERTS), alert.to_json(), card_token.encode())
    assert producer.flush(10) == 0
    row = page.locator(f'#alerts tbody tr[data-trans-num="{trans_num}"]')
    expect(row).to_be_visible(timeout=20_000)
    expect(row).to_contain_text(merchant)
    assert page.locator("#alerts tbody tr").first.get_attribute("data-trans-num") == trans_num  # on top
    assert page.evaluate("window.notReloaded") is True


def test_the_drill_down_shows_the_explanation_and_the_card_history(clients, page):
    trans_num, card_token, reason = stored_alerts(clients)[0]
    (card_rows,) = pg_query(clients, f"SELECT count(*) FROM transactions WHERE card_token = '{card_token}'")[0]  # noqa: S608 - hex from PostgreSQL
    page.click(f'#alerts tbody tr[data-trans-num="{trans_num}"]')
    expect(page.locator("#d-reason")).to_have_text(reason)
    scores = page.locator("#d-scores")
    for label in ("ensemble score", "Isolation Forest", "online detector", "model version", "threshold"):
        expect(scores).to_contain_text(label)
    expect(page.locator("#history tbody tr")).to_have_count(min(20, card_rows))
    expect(page.locator("#d-token")).to_have_text(card_token[:8] + "…")


def test_a_verdict_click_lands_in_postgresql_and_on_labels(clients, page):
    trans_num, card_token, _ = stored_alerts(clients)[-1]
    page.click(f'#alerts tbody tr[data-trans-num="{trans_num}"]')
    expect(page.locator("#detail")).to_have_attribute("data-trans-num", trans_num)
    page.click("#confirm")
    expect(page.locator("#verdict-msg")).to_contain_text("stored")
    expect(page.locator("#d-verdict")).to_contain_text(f"confirmed fraud by {ANALYST}")
    expect(page.locator(f'#alerts tbody tr[data-trans-num="{trans_num}"] .badge')).to_have_text("confirmed fraud")

    assert pg_query(clients, f"SELECT verdict, analyst FROM verdicts WHERE trans_num = '{trans_num}'") == [  # noqa: S608
        ("confirmed_fraud", ANALYST)]  # fmt: skip
    (event_time,) = pg_query(clients, f"SELECT event_time FROM transactions WHERE trans_num = '{trans_num}'")[0]  # noqa: S608
    labels = [m for m in read_topic(clients, clients.settings.topic(LABELS)) if json.loads(m.value)["trans_num"]
              == trans_num and json.loads(m.value)["is_fraud"]]  # fmt: skip
    assert len(labels) == 1, "the verdict's label is not on the labels topic"
    assert labels[0].key == card_token.encode()
    assert json.loads(labels[0].value) == {"trans_num": trans_num, "card_token": card_token,
                                           "event_time": event_time.isoformat(), "is_fraud": True}  # fmt: skip

    page.click("#false-positive")  # changing one's mind: the row follows, a second label is published
    expect(page.locator("#d-verdict")).to_contain_text("false positive")
    assert pg_query(clients, f"SELECT verdict FROM verdicts WHERE trans_num = '{trans_num}'") == [  # noqa: S608
        ("false_positive",)]  # fmt: skip


def test_a_verdict_on_an_unknown_transaction_is_404_and_changes_nothing(clients, page):
    labels_topic = clients.settings.topic(LABELS)
    verdicts, labels = pg_count(clients, "verdicts"), len(read_topic(clients, labels_topic))
    post = """async (body) => {
        const r = await fetch("/api/verdicts", {method: "POST", headers: {"Content-Type": "application/json"},
                                                body: JSON.stringify(body)});
        return r.status;
    }"""
    assert page.evaluate(post, {"trans_num": "f" * 32, "verdict": "confirmed_fraud"}) == 404
    assert page.evaluate(post, {"trans_num": "'; DROP TABLE verdicts; --", "verdict": "confirmed_fraud"}) == 422
    # (A label would have been flushed before the answer: nothing to wait for.)
    assert (pg_count(clients, "verdicts"), len(read_topic(clients, labels_topic))) == (verdicts, labels)


def test_each_chart_renders_with_data(page, dashboard):
    charts = page.locator("#charts figure")
    expect(charts).to_have_count(len(MAIN_CHARTS))
    for name in MAIN_CHARTS:
        image = page.locator(f'#charts figure[data-chart="{name}"] img')
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                               timeout=60_000)  # fmt: skip
        rows = page.evaluate("async (name) => (await (await fetch('/api/charts/' + name)).json())", name)
        assert rows, f"chart {name} has no data"
        expect(page.locator(f'#charts figure[data-chart="{name}"] .rows')).to_contain_text("rows")


def test_throughput_and_lag_per_service(clients, page, dashboard):
    services = page.locator("#services tbody tr")
    expect(services).to_have_count(3)
    for name in ("persist", "scorer", "learner"):
        expect(page.locator("#services")).to_contain_text(name)
    expect(page.locator("#topics")).to_contain_text(clients.settings.topic(TRANSACTIONS))

    def sample() -> dict:
        with urllib.request.urlopen(dashboard[0] + "api/throughput", timeout=10) as response:
            return {row["service"]: row for row in json.load(response)["services"]}

    # The scorer has consumed and committed all 600 events; no learner runs in this module.
    wait_for(lambda: sample()["scorer"]["committed"] == 600, 30, "the scorer's 600 committed offsets")
    scorer, learner = sample()["scorer"], sample()["learner"]
    assert scorer["lag"] == 0 and scorer["events_per_s"] is not None
    assert learner["committed"] == 0 and learner["lag"] > 0


def test_a_screenshot_of_the_dashboard(page, tmp_path):
    """Kept for people to look at (the basetemp's test directory): the page with alerts and charts."""
    page.click("#alerts tbody tr >> nth=0")
    expect(page.locator("#history tbody tr").first).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#charts img')].every(i => i.naturalWidth > 0)",
                           timeout=60_000)  # fmt: skip
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_with_a_token_the_browser_authenticates_and_the_user_name_is_who(clients, browser, replayed):
    token = "a token for the browser test"
    settings = clients.settings.model_copy(update={"dashboard_token": SecretStr(token)})
    api = create_app(settings, app=App(settings))
    with served(api) as url:
        anonymous = browser.new_context()
        try:
            assert anonymous.request.get(url).status == 401
            assert anonymous.request.get(url + "events").status == 401
        finally:
            anonymous.close()
        context = browser.new_context(http_credentials={"username": "ana", "password": token})
        try:
            page = context.new_page()
            page.goto(url)
            expect(page.locator("#feed")).to_have_text("live")  # the event stream is authenticated too
            expect(page.locator("#analyst")).to_have_value("ana")
            assert page.locator("#analyst").get_attribute("readonly") is not None
            trans_num = stored_alerts(clients)[1][0]
            page.click(f'#alerts tbody tr[data-trans-num="{trans_num}"]')
            expect(page.locator("#detail")).to_have_attribute("data-trans-num", trans_num)
            page.click("#false-positive")
            expect(page.locator("#d-verdict")).to_contain_text("false positive by ana")
        finally:
            context.close()
    assert pg_query(clients, f"SELECT verdict, analyst FROM verdicts WHERE trans_num = '{trans_num}'") == [  # noqa: S608
        ("false_positive", "ana")]  # fmt: skip
