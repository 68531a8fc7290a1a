"""``txguard report``: one self-contained HTML file of the analyst's charts, with the PNGs beside it.

Every chart of :mod:`txguard.charts` is drawn from the PostgreSQL views, written as
``<out>/<name>.png`` and embedded in ``<out>/report.html`` as a ``data:`` URI, with
the headline numbers and the top alerts (masked card only). The page references
nothing outside itself: no script, stylesheet, font or image from anywhere else, and a
Content-Security-Policy that forbids fetching any; it opens offline, alone.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from psycopg2 import sql

from txguard.charts import CHARTS, chart_data, render_png

REPORT_FILE = "report.html"
TOP_ALERTS = 20

CAPTIONS = {
    "daily_trend": "Alerted (anomalous) transactions per day, the labelled frauds and those an alert caught; "
    "the line is the share of the day's transactions alerted.",
    "score_by_category": "Mean ensemble score of each merchant category's transactions, highest first.",
    "anomalies_by_state": "Alerted transactions by the cardholder's state (Alaska and Hawaii inset, DC marked).",
    "amount_vs_score": "Each point a transaction: every alert and labelled fraud, and a fixed 1/256 sample of the "
    "rest (the amount_vs_score view).",
    "roc_pr": "Every detector's scores ranked against the fraud labels received so far.",
    "alerts_vs_budget": "Alerts raised per event-day against the alert budget of the current model.",
    "funnel": "Events stored, scored, alerted, and alerts confirmed as fraud (label or analyst's verdict).",
}
SHORT = {
    "daily_trend": "daily trend",
    "score_by_category": "by category",
    "anomalies_by_state": "US map",
    "amount_vs_score": "amount vs score",
    "roc_pr": "ROC / PR",
    "alerts_vs_budget": "alerts vs budget",
    "funnel": "funnel",
}


@dataclass(frozen=True)
class ReportContext:
    """What the report says about where it comes from: not read from PostgreSQL."""

    title: str = "txguard report"
    schema: str = "public"
    budget: float | None = None  # the current model's alerts per day
    model_version: str | None = None


def write_report(conn, out: Path, context: ReportContext | None = None, top_alerts: int = TOP_ALERTS) -> Path:
    """Draw every chart into ``out``, then the HTML page that embeds them; return the page's path.

    ``conn``: a psycopg2 connection whose ``search_path`` is the namespace's schema. Only read.
    """
    context = context or ReportContext()
    out.mkdir(parents=True, exist_ok=True)
    data = {name: chart_data(conn, name) for name in CHARTS}
    pngs = {}
    for name in CHARTS:
        pngs[name] = render_png(name, data[name], **({"budget": context.budget} if name == "alerts_vs_budget" else {}))
        (out / f"{name}.png").write_bytes(pngs[name])
    quality = _one_row(conn, "SELECT true_positives, false_positives, missed_frauds, labelled, precision, recall"
                             " FROM alert_quality")  # fmt: skip
    page = render_html(
        context,
        pngs,
        window=_window(data["daily_trend"]),
        numbers=headline_numbers(data["funnel"], quality, data["alerts_vs_budget"], context.budget),
        detectors=_detectors(data["roc_pr"]),
        alerts=top_alert_rows(conn, top_alerts),
    )
    path = out / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def render_html(context: ReportContext, pngs: dict[str, bytes], *, window: str, numbers: list[dict[str, str]],
                detectors: list[dict[str, str]], alerts: list[dict[str, str]],
                generated: datetime | None = None) -> str:  # fmt: skip
    """The page: every value escaped, every chart embedded as a ``data:`` URI, in the order of ``CHARTS``."""
    charts = []
    for name, png in pngs.items():
        width, height = png_size(png)
        charts.append({"name": name, "title": CHARTS[name], "short": SHORT[name], "caption": CAPTIONS[name],
                       "png": base64.b64encode(png).decode("ascii"), "width": width, "height": height})  # fmt: skip
    return _template().render(
        title=context.title,
        schema=context.schema,
        model_version=context.model_version,
        generated=f"{generated or datetime.now(UTC):%Y-%m-%d %H:%M %Z}",
        window=window,
        numbers=numbers,
        charts=charts,
        detectors=detectors,
        alerts=alerts,
    )


def _template():
    environment = Environment(loader=PackageLoader("txguard", "templates"), autoescape=select_autoescape(["j2"]))
    return environment.get_template("report.html.j2")


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's header (IHDR is always the first chunk)."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _one_row(conn, query: str) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
        names = [c.name for c in cur.description]
    if not conn.autocommit:
        conn.rollback()
    return dict(zip(names, row, strict=True)) if row else dict.fromkeys(names)


def top_alert_rows(conn, limit: int = TOP_ALERTS) -> list[dict[str, str]]:
    """The highest-scoring alerts, formatted: the masked card only (never the token, never a number)."""
    query = sql.SQL(
        "SELECT event_time, card_masked, merchant, category, amt, city, state, score, reason, is_fraud, verdict"
        " FROM alerts ORDER BY score DESC, event_time DESC LIMIT %s"
    )
    with conn.cursor() as cur:
        cur.execute(query, (limit,))
        rows = cur.fetchall()
    if not conn.autocommit:
        conn.rollback()
    return [
        {
            "event_time": f"{event_time:%Y-%m-%d %H:%M}",
            "card_masked": card_masked,
            "merchant": (merchant or "").removeprefix("fraud_"),  # the Kaggle file's merchants all carry it
            "category": (category or "").replace("_", " "),
            "amt": f"{float(amt):,.2f}",
            "place": ", ".join(p for p in (city, state) if p),
            "score": f"{score:.3f}",
            "reason": reason or "",
            "label": {True: "fraud", False: "legitimate"}.get(is_fraud, "pending"),
            "verdict": (verdict or "").replace("_", " "),
        }
        for event_time, card_masked, merchant, category, amt, city, state, score, reason, is_fraud, verdict in rows
    ]


def headline_numbers(funnel: pd.DataFrame, quality: dict[str, Any], per_day: pd.DataFrame,
                     budget: float | None) -> list[dict[str, str]]:  # fmt: skip
    """The few numbers an analyst reads first: volume, alerts, their precision and recall, alerts/day."""
    counts = dict(zip(funnel["stage"], funnel["count"], strict=True)) if len(funnel) else {}
    events, alerted = counts.get("events", 0), counts.get("alerted", 0)
    mean = float(per_day["alerts"].mean()) if len(per_day) else None
    labelled_alerts = (quality.get("true_positives") or 0) + (quality.get("false_positives") or 0)
    frauds = (quality.get("true_positives") or 0) + (quality.get("missed_frauds") or 0)
    return [
        {"label": "events", "value": f"{events:,}", "detail": f"{counts.get('scored', 0):,} scored"},
        {"label": "alerts", "value": f"{alerted:,}", "detail": _share(alerted, events) + " of events"},
        {"label": "precision of the alerts", "value": _ratio(quality.get("precision")),
         "detail": f"{quality.get('true_positives') or 0:,} fraud of {labelled_alerts:,} labelled alerts"},
        {"label": "recall of the frauds", "value": _ratio(quality.get("recall")),
         "detail": f"{quality.get('true_positives') or 0:,} of {frauds:,} labelled frauds alerted"},
        {"label": "alerts per day", "value": "-" if mean is None else f"{mean:,.1f}",
         "detail": f"budget {budget:,.1f}: {mean / budget:.2f}x" if budget and mean is not None
         else "no budget known" if not budget else f"budget {budget:,.1f}"},
        {"label": "confirmed fraud", "value": f"{counts.get('confirmed fraud', 0):,}",
         "detail": "alerts with a fraud label or verdict"},
    ]  # fmt: skip


def _ratio(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.1%}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2%}" if whole else "-"


def _window(daily: pd.DataFrame) -> str:
    if daily.empty:
        return "none yet"
    return f"{daily['day'].min()} .. {daily['day'].max()} ({len(daily):,} days)"


def _detectors(curves: pd.DataFrame) -> list[dict[str, str]]:
    if curves.empty:
        return []
    rows = []
    for detector, group in curves.groupby("detector", sort=False):
        auc = group.groupby("curve")["auc"].first()
        rows.append({"detector": str(detector), "events": f"{int(group['events'].iloc[0]):,}",
                     "frauds": f"{int(group['frauds'].iloc[0]):,}", "roc_auc": f"{auc['roc']:.3f}",
                     "pr_auc": f"{auc['pr']:.3f}"})  # fmt: skip
    return rows
