"""The report page alone: every value escaped, every chart embedded, nothing referenced outside the file."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pandas as pd

from tests.unit.txguard.test_charts import frames
from txguard import charts
from txguard.report import ReportContext, headline_numbers, png_size, render_html

HOSTILE = '<script src="https://evil.example/x.js"></script><img src=//evil.example/p.png>'


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def page(hostile: str = HOSTILE, **overrides) -> tuple[str, dict[str, bytes]]:
    pngs = {name: charts.render_png(name, data.iloc[:0]) for name, data in frames().items()}
    alerts = [{"event_time": "2020-01-01 10:00", "card_masked": "****1234", "merchant": hostile, "category": "travel",
               "amt": "1,234.50", "place": "Austin, TX", "score": "0.991", "reason": "amount 40x the card's mean",
               "label": "fraud", "verdict": ""}]  # fmt: skip
    options = {
        "window": "2020-01-01 .. 2020-01-30 (30 days)",
        "numbers": [{"label": "events", "value": "1,000", "detail": hostile}],
        "detectors": [
            {"detector": "score (ensemble)", "events": "400", "frauds": "80", "roc_auc": "0.9", "pr_auc": "0.8"}
        ],  # fmt: skip
        "alerts": alerts,
        "generated": datetime(2020, 2, 1, tzinfo=UTC),
        **overrides,
    }
    return render_html(ReportContext(title=f"report {hostile}", schema="demo", budget=5.0), pngs, **options), pngs


def test_values_are_escaped_and_nothing_outside_is_referenced():
    html, pngs = page()
    assert "<script" not in html and "&lt;script" in html
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "base"), tag
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            if name in attrs:
                value = attrs[name] or ""
                assert value.startswith("data:image/png;base64,") or value.startswith("#"), (tag, name, value[:60])
    assert 'http-equiv="Content-Security-Policy"' in html and "default-src 'none'" in html
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert [base64.b64decode(src.split(",", 1)[1]) for src in images] == list(pngs.values())
    anchors = {attrs["href"][1:] for tag, attrs in parser.tags if tag == "a"}
    assert anchors == set(charts.CHARTS) | {"top-alerts"}
    ids = {attrs["id"] for _, attrs in parser.tags if "id" in attrs}
    assert anchors <= ids


def test_a_page_of_ordinary_values_holds_no_url_at_all():
    html, _ = page(hostile="Kihn-Schuster")
    assert "http://" not in html and "https://" not in html and "url(" not in html


def test_images_carry_their_size_and_the_alert_table_its_rows():
    html, pngs = page()
    for name, png in pngs.items():
        width, height = png_size(png)
        assert f'width="{width}" height="{height}"' in html, name
    assert "****1234" in html and "Austin, TX" in html and 'class="fraud"' in html
    assert "amount 40x the card&#39;s mean" in html
    empty, _ = page(alerts=[])
    assert "No alerts yet." in empty


def test_headline_numbers_against_the_budget_and_without_labels():
    funnel = pd.DataFrame({"stage": ["events", "scored", "alerted", "confirmed fraud"], "count": [1000, 990, 20, 4]})
    per_day = pd.DataFrame({"day": ["2020-01-01", "2020-01-02"], "alerts": [8, 12]})
    quality = {"true_positives": 4, "false_positives": 12, "missed_frauds": 1, "labelled": 900, "precision": 0.25,
               "recall": 0.8}  # fmt: skip
    numbers = {n["label"]: n for n in headline_numbers(funnel, quality, per_day, budget=5.0)}
    assert numbers["events"]["value"] == "1,000" and numbers["alerts"]["detail"] == "2.00% of events"
    assert numbers["precision of the alerts"]["value"] == "25.0%"
    assert numbers["precision of the alerts"]["detail"] == "4 fraud of 16 labelled alerts"
    assert numbers["recall of the frauds"]["detail"] == "4 of 5 labelled frauds alerted"
    assert numbers["alerts per day"]["value"] == "10.0" and numbers["alerts per day"]["detail"] == "budget 5.0: 2.00x"
    nothing = {n["label"]: n for n in headline_numbers(funnel.iloc[:0], dict.fromkeys(quality), per_day.iloc[:0], None)}
    assert nothing["events"]["value"] == "0" and nothing["precision of the alerts"]["value"] == "-"
    assert nothing["alerts per day"] == {"label": "alerts per day", "value": "-", "detail": "no budget known"}


def test_the_page_is_stable_for_the_same_input():
    first, _ = page()
    again, _ = page()
    assert first == again and re.search(r"generated 2020-02-01 00:00 UTC", first)
