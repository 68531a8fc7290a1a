"""``txguard report`` on real servers: a small replay through Kafka into PostgreSQL, then the HTML report.

The page is checked as text (every chart embedded, nothing external referenced, no card
number) and, where Debian's Chromium is installed, opened in it: no request leaves the
file, and every image decodes.
"""

from __future__ import annotations

import base64
import csv
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.integration.conftest import pg_query
from tests.integration.scored_data import replay_scored
from txguard import charts
from txguard.app import App

pytestmark = pytest.mark.integration
KAGGLE_CSV = FIXTURES / "kaggle_rows2301_2900.csv"
CHROMIUM = Path("/usr/bin/chromium")
PAN_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


@pytest.fixture(scope="module")
def replayed(clients, services, tmp_path_factory):
    """The 600-row real slice (5 frauds, 49 states, two days) replayed through persist and the scorer."""
    replay_scored(clients, services, tmp_path_factory.mktemp("q") / "q.jsonl", verdict=False)
    # An analyst's verdicts (the dashboard's table): one alert confirmed, one a false positive.
    conn = clients.pg()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO verdicts (trans_num, verdict, analyst)"
                " (SELECT trans_num, 'confirmed_fraud', 'ana' FROM alerts WHERE is_fraud ORDER BY score DESC LIMIT 1)"
                " UNION ALL (SELECT trans_num, 'false_positive', 'ana' FROM alerts WHERE NOT is_fraud"
                "            ORDER BY score DESC LIMIT 1)"
            )
            assert cur.rowcount == 2
    finally:
        conn.close()


@pytest.fixture(scope="module")
def report(clients, replayed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    path = App(clients.settings).report(out, budget=2.0)
    assert path == out / "report.html"
    return path


@pytest.mark.parametrize("name", charts.ANALYST_CHARTS)
def test_the_four_analyst_charts_have_rows(clients, replayed, name):
    conn = clients.pg()
    try:
        data = charts.chart_data(conn, name)
    finally:
        conn.close()
    assert len(data) > 0
    if name == "anomalies_by_state":
        assert data["transactions"].sum() == 600 and set(data["state"]) <= set(charts.us_states()["states"])
    if name == "daily_trend":
        assert data["transactions"].sum() == 600 and data["frauds"].sum() == 5
        assert (data["confirmed_frauds"].sum(), data["false_positives"].sum()) == (1, 1)


def test_the_other_charts_have_rows_too(clients, replayed):
    conn = clients.pg()
    try:
        funnel = charts.chart_data(conn, "funnel")
        curves = charts.chart_data(conn, "roc_pr", since="2019-01-01")
        per_day = charts.chart_data(conn, "alerts_vs_budget", since="2019-01-02")
    finally:
        conn.close()
    alerts = pg_query(clients, "SELECT count(*) FROM scores WHERE flagged")[0][0]
    assert funnel["count"].tolist()[:3] == [600, 600, alerts]
    assert set(curves["curve"]) == {"roc", "pr"} and "score (ensemble)" in set(curves["detector"])
    assert [str(d) for d in per_day["day"]] == ["2019-01-02"]


def test_every_chart_is_a_png_beside_the_page(report):
    for name in charts.CHARTS:
        png = (report.parent / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 15_000, name


class References(HTMLParser):
    """Every attribute that can make a browser fetch something, and the images."""

    def __init__(self):
        super().__init__()
        self.references: list[tuple[str, str, str]] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action", "background") and value is not None:
                self.references.append((tag, name, value))
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.references.append((tag, "tag", ""))


def test_the_page_embeds_every_chart_and_references_nothing_outside(report, clients):
    html = report.read_text()
    assert "http://" not in html and "https://" not in html
    parser = References()
    parser.feed(html)
    for tag, attribute, value in parser.references:
        assert (attribute == "src" and value.startswith("data:image/png;base64,")) or (
            attribute == "href" and value.startswith("#")
        ), (tag, attribute, value[:80])
    assert not re.search(r"url\(|@import|@font-face", html)  # nothing fetched from the style sheet either
    embedded = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in parser.images]
    assert embedded == [(report.parent / f"{name}.png").read_bytes() for name in charts.CHARTS]
    for name, title in charts.CHARTS.items():
        assert f'id="{name}"' in html and title in html


def test_the_page_shows_masked_cards_only_and_the_headline_numbers(report, clients):
    html = report.read_text()
    numbers = {r["cc_num"] for r in csv.DictReader(KAGGLE_CSV.open())}
    assert not any(number in html for number in numbers)
    assert not PAN_RUN.search(re.sub(r"data:image/png;base64,[^\"]+", "", html))
    tokens = {token for (token,) in pg_query(clients, "SELECT DISTINCT card_token FROM transactions")}
    assert not any(token.strip() in html for token in tokens)
    alerts = pg_query(clients, "SELECT card_masked FROM alerts ORDER BY score DESC LIMIT 20")
    assert alerts, "the replay raised no alert: the table would be empty"
    assert all(masked in html for (masked,) in alerts)
    assert "budget 2.0" in html and "600" in html
    assert "<td>false positive</td>" in html and "<td>confirmed fraud</td>" in html  # the verdicts, in the table


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_the_page_in_chromium_fetches_nothing_and_shows_every_image(report):
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])  # fmt: skip
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
            violations = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
        finally:
            browser.close()
    assert [url for url in requests if url != report.as_uri() and not url.startswith("data:")] == []
    assert [url for url in violations if not url.startswith("data:")] == []
    assert len(widths) == len(charts.CHARTS) and all(w >= 900 for w in widths), widths
