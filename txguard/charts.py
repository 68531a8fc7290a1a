"""The analyst's charts: each one's rows from a PostgreSQL view, drawn with matplotlib into a PNG.

:func:`chart_data` reads the rows a chart is drawn from (the dashboard also serves them
as JSON), :func:`render_png` draws them, :func:`render` does both. Every figure is a
bare :class:`~matplotlib.figure.Figure` on the Agg canvas: no pyplot state, so the
dashboard may draw from several threads. A chart without rows says "no data yet".

The US map is drawn from vendored state shapes (``static/us_states_albers.json``, from
us-atlas, already projected to Albers USA with Alaska and Hawaii as insets): no network.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from psycopg2 import sql

from model.evaluation import curves, draw_curves
from txguard.evaluate import curve_inputs, scored_events

CHARTS: dict[str, str] = {
    "daily_trend": "Daily trend of anomalous transactions",
    "score_by_category": "Average anomaly score by category",
    "anomalies_by_state": "Anomalies by state",
    "amount_vs_score": "Transaction amount against anomaly score",
    "roc_pr": "ROC and precision-recall curves against the labels",
    "alerts_vs_budget": "Alerts per day against the budget",
    "funnel": "Funnel: events, scored, alerted, confirmed fraud",
}
ANALYST_CHARTS = (  # the four the original project's analysts knew
    "daily_trend",
    "score_by_category",
    "anomalies_by_state",
    "amount_vs_score",
)
AMOUNT_SAMPLE = 20_000  # points on the scatter: more only blur it (and weigh on the dashboard's JSON)
CURVE_POINTS = 400  # per ROC or PR curve: enough to draw it, small enough to serve as JSON

ALERT, FRAUD, MISSED, QUIET, BUDGET = "#e8590c", "#c92a2a", "#5f3dc4", "#adb5bd", "#1971c2"
DPI = 100


class UnknownChart(ValueError):
    """A chart name not in :data:`CHARTS` (a web front end answers it with 404)."""


# Reading


def chart_data(conn, name: str, **filters: Any) -> pd.DataFrame:
    """The rows chart ``name`` is drawn from.

    Parameters
    ----------
    conn : psycopg2 connection
        ``search_path`` set to the namespace's schema (``Clients.pg()``). Only read.
    name : str
        One of :data:`CHARTS`.
    **filters
        ``since`` and ``until`` (event times or days, ``[since, until)``; dates, datetimes or
        ISO strings) for ``daily_trend``, ``alerts_vs_budget``, ``amount_vs_score`` and
        ``roc_pr``; ``limit`` for ``amount_vs_score`` (default :data:`AMOUNT_SAMPLE`).

    Returns
    -------
    pandas.DataFrame
        Zero rows when there is nothing to draw yet.
    """
    try:
        reader, allowed = _READERS[name]
    except KeyError:
        raise UnknownChart(f"no chart {name!r}: one of {', '.join(CHARTS)}") from None
    unknown = set(filters) - allowed
    if unknown:
        raise ValueError(f"chart {name!r} takes no filter {', '.join(sorted(unknown))}")
    for bound in ("since", "until"):
        if filters.get(bound) is not None:  # a date, datetime or ISO string (a query parameter): one type for SQL
            filters[bound] = pd.Timestamp(filters[bound]).to_pydatetime()
    try:
        return reader(conn, **filters)
    finally:
        if not conn.autocommit:
            conn.rollback()  # end the read's transaction: a dashboard keeps its connection


def _query(conn, query: sql.Composable, params: dict | None = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params or {})
        columns = [c.name for c in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _day_window(column: str, since: date | datetime | None, until: date | datetime | None) -> sql.Composable:
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if since is not None:
        conditions.append(sql.SQL("{} >= %(since)s").format(sql.Identifier(column)))
    if until is not None:
        conditions.append(sql.SQL("{} < %(until)s").format(sql.Identifier(column)))
    return sql.SQL(" AND ").join(conditions)


def _numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """psycopg2 returns numeric as Decimal and NULL as None: floats for pandas and JSON alike."""
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _daily_trend(conn, since=None, until=None) -> pd.DataFrame:
    query = sql.SQL(
        "SELECT day, transactions, anomalies, avg_score, frauds, frauds_alerted, confirmed_frauds, false_positives"
        " FROM daily_anomaly_trend WHERE {} ORDER BY day"
    ).format(_day_window("day", since, until))
    frame = _numbers(_query(conn, query, {"since": since, "until": until}), ["avg_score"])
    frame["anomaly_rate"] = frame["anomalies"] / frame["transactions"].where(frame["transactions"] > 0)
    return frame


def _alerts_per_day(conn, since=None, until=None) -> pd.DataFrame:
    query = sql.SQL(
        "SELECT day, anomalies AS alerts, transactions FROM daily_anomaly_trend WHERE {} ORDER BY day"
    ).format(_day_window("day", since, until))
    return _query(conn, query, {"since": since, "until": until})


def _score_by_category(conn) -> pd.DataFrame:
    query = sql.SQL(
        "SELECT category, transactions, avg_score, anomalies, frauds FROM score_by_category"
        " WHERE avg_score IS NOT NULL ORDER BY avg_score DESC, category"
    )
    return _numbers(_query(conn, query), ["avg_score"])


def _anomalies_by_state(conn) -> pd.DataFrame:
    query = sql.SQL(
        "SELECT state, transactions, anomalies, avg_score, frauds FROM anomalies_by_state"
        " WHERE state IS NOT NULL ORDER BY state"
    )
    frame = _numbers(_query(conn, query), ["avg_score"])
    frame["anomaly_rate"] = frame["anomalies"] / frame["transactions"].where(frame["transactions"] > 0)
    return frame


def _amount_vs_score(conn, since=None, until=None, limit: int = AMOUNT_SAMPLE) -> pd.DataFrame:
    # trans_num is a hash: its order is a fair sample when the view holds more than ``limit`` rows.
    query = sql.SQL(
        "SELECT trans_num, event_time, category, state, amt, score, flagged, is_fraud, verdict"
        " FROM amount_vs_score WHERE {} ORDER BY trans_num LIMIT %(limit)s"
    ).format(_day_window("event_time", since, until))
    frame = _query(conn, query, {"since": since, "until": until, "limit": int(limit)})
    return _numbers(frame, ["amt", "score"])


def _funnel(conn) -> pd.DataFrame:
    row = _query(conn, sql.SQL("SELECT events, scored, alerted, confirmed_fraud FROM alert_funnel"))
    counts = row.iloc[0] if len(row) else pd.Series(0, index=row.columns)
    if not counts["events"]:
        return pd.DataFrame({"stage": pd.Series(dtype=str), "count": pd.Series(dtype="int64")})
    stages = {"events": "events", "scored": "scored", "alerted": "alerted", "confirmed_fraud": "confirmed fraud"}
    return pd.DataFrame({"stage": list(stages.values()), "count": [int(counts[c]) for c in stages]})


def _roc_pr(conn, since=None, until=None) -> pd.DataFrame:
    frame, detectors = scored_events(conn, since, until)
    return curve_frame(frame, detectors)


def curve_frame(frame: pd.DataFrame, detectors: list[str]) -> pd.DataFrame:
    """The ROC and PR curves of each detector on the labelled events of ``frame`` (as :func:`scored_events`
    returns it), thinned to :data:`CURVE_POINTS` points each: one row per (detector, curve, point)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = []
    for detector, (y, score) in curve_inputs(frame, detectors).items():
        points = curves(y, score)
        aucs = {"roc": roc_auc_score(y, score), "pr": average_precision_score(y, score)}
        for curve in ("roc", "pr"):
            x, v = _thin(*points[curve])
            rows.append(pd.DataFrame({"detector": detector, "curve": curve, "x": x, "y": v, "auc": aucs[curve],
                                      "events": len(y), "frauds": int(y.sum())}))  # fmt: skip
    columns = ["detector", "curve", "x", "y", "auc", "events", "frauds"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def _thin(x: np.ndarray, y: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` of a curve, evenly spaced along its length (not its thresholds): the steep
    start of a ROC curve, where the alerts are, keeps its detail."""
    if len(x) <= points:
        return x, y
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    keep = np.unique(np.searchsorted(length, np.linspace(0, length[-1], points)).clip(0, len(x) - 1))
    return x[keep], y[keep]


_READERS: dict[str, tuple[Callable[..., pd.DataFrame], set[str]]] = {
    "daily_trend": (_daily_trend, {"since", "until"}),
    "score_by_category": (_score_by_category, set()),
    "anomalies_by_state": (_anomalies_by_state, set()),
    "amount_vs_score": (_amount_vs_score, {"since", "until", "limit"}),
    "roc_pr": (_roc_pr, {"since", "until"}),
    "alerts_vs_budget": (_alerts_per_day, {"since", "until"}),
    "funnel": (_funnel, set()),
}


# Drawing


def render(conn, name: str, **opts: Any) -> bytes:
    """Chart ``name`` from PostgreSQL as PNG bytes (``opts``: as :func:`render_png`)."""
    return render_png(name, chart_data(conn, name), **opts)


def render_png(name: str, data: pd.DataFrame, **opts: Any) -> bytes:
    """Draw chart ``name`` from ``data`` (as :func:`chart_data` returns it) into PNG bytes.

    ``opts``: ``budget`` (alerts per day) for ``alerts_vs_budget``; ``metric``
    (``"anomalies"`` or ``"anomaly_rate"``) for ``anomalies_by_state``; ``title`` for any.
    """
    if name not in _DRAWERS:
        raise UnknownChart(f"no chart {name!r}: one of {', '.join(CHARTS)}")
    title = opts.pop("title", CHARTS[name])
    size = (10, 2.4) if data.empty else _SIZES.get(name, (10, 5.2))  # an empty chart: a short card
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if data.empty:
        _no_data(figure, title)
    else:
        _DRAWERS[name](figure, data, **opts)
        figure.suptitle(title, fontsize=14, fontweight="bold")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _no_data(figure: Figure, title: str) -> None:
    ax = figure.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=14, fontweight="bold", transform=ax.transAxes)
    ax.text(0.5, 0.32, "no data yet", ha="center", va="center", fontsize=13, color="grey", transform=ax.transAxes)


def _days(data: pd.DataFrame) -> pd.Series:
    """Noon of each day: a day's bar (one day wide, centred) then covers that day, not half of the one before."""
    return pd.to_datetime(data["day"]) + pd.Timedelta(hours=12)


def _headroom(highest: float) -> float:
    """The top of a y axis: room above the highest value for the legend (two rows at the top)."""
    return float(highest) * 1.3 if highest and not pd.isna(highest) else 1.0


def _date_axis(ax: Axes, days: pd.Series) -> None:
    import matplotlib.dates as mdates

    # Bars are days: a few days' span gets a tick per day, not hours.
    short = days.max() - days.min() < pd.Timedelta(days=10)
    locator = mdates.DayLocator() if short else mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _draw_daily_trend(figure: Figure, data: pd.DataFrame) -> None:
    ax = figure.subplots()
    days = _days(data)
    ax.bar(days, data["anomalies"], width=1.0, color=ALERT, alpha=0.55, label="anomalous (alerted) transactions")
    ax.plot(days, data["frauds"], color=FRAUD, lw=1.2, label="frauds (labels)")
    ax.plot(days, data["frauds_alerted"], color=MISSED, lw=1.2, ls="--", label="frauds caught by an alert")
    for column, marker, colour, label in (
        ("confirmed_frauds", "^", FRAUD, "analyst: confirmed fraud"),
        ("false_positives", "o", "#2b8a3e", "analyst: false positive"),
    ):
        given = data[column] > 0
        if given.any():  # verdicts from the dashboard, where analysts gave any
            # Hollow markers: a day with both kinds of verdict shows both.
            ax.scatter(days[given], data.loc[given, column], marker=marker, s=36, facecolors="none",
                       edgecolors=colour, linewidths=1.4, zorder=3, label=label)  # fmt: skip
    ax.set_ylabel("transactions per day")
    ax.set_ylim(0, _headroom(data[["anomalies", "frauds"]].to_numpy().max()))
    ax.grid(axis="y", alpha=0.3)
    rate = ax.twinx()
    weekly = (data["anomaly_rate"] * 100).rolling(7, min_periods=1, center=True).mean()  # daily rates only jitter
    rate.plot(days, weekly, color="#495057", lw=1.2, alpha=0.8, label="anomaly rate, 7-day mean (right)")
    rate.set_ylabel("anomalous share of the day's transactions (%)")
    rate.set_ylim(0, _headroom(weekly.max()))
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = rate.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize=9, framealpha=0.9, ncols=2)
    _date_axis(ax, days)
    total, frauds = int(data["anomalies"].sum()), int(data["frauds"].sum())
    caught = int(data["frauds_alerted"].sum())
    ax.set_title(f"{total:,} anomalies over {len(data):,} days; {caught:,} of {frauds:,} labelled frauds alerted",
                 fontsize=10, color="#495057")  # fmt: skip


def _draw_score_by_category(figure: Figure, data: pd.DataFrame) -> None:
    ax = figure.subplots()
    data = data.sort_values("avg_score")  # barh draws bottom-up: the highest on top
    names = data["category"].astype(str).str.replace("_", " ")
    bars = ax.barh(names, data["avg_score"], color=BUDGET, alpha=0.8)
    overall = float((data["avg_score"] * data["transactions"]).sum() / max(data["transactions"].sum(), 1))
    ax.axvline(overall, color="#495057", ls="--", lw=1, label=f"all categories {overall:.3f}")
    for bar, score, anomalies in zip(bars, data["avg_score"], data["anomalies"], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {score:.3f}  ({int(anomalies):,} alerts)",
                va="center", fontsize=8.5)  # fmt: skip
    ax.set_xlim(0, float(data["avg_score"].max()) * 1.3)
    ax.set_xlabel("average ensemble anomaly score")
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(axis="x", alpha=0.3)


@cache
def us_states() -> dict[str, Any]:
    """The vendored state shapes: ``states`` keyed by USPS code, each with ``name`` and ``polygons``
    (lists of flat ``[x0, y0, x1, y1, ...]`` rings, the first the outline), in Albers USA screen units."""
    text = resources.files("txguard").joinpath("static/us_states_albers.json").read_text()
    return json.loads(text)


def _outline(ring: list[float]) -> np.ndarray:
    return np.asarray(ring, dtype=float).reshape(-1, 2)


NO_DATA_GREY = "#dee2e6"


def _draw_anomalies_by_state(figure: Figure, data: pd.DataFrame, metric: str = "anomalies") -> None:
    if metric not in ("anomalies", "anomaly_rate"):
        raise ValueError(f"metric is 'anomalies' or 'anomaly_rate', not {metric!r}")
    shapes = us_states()
    values = data.assign(state=data["state"].str.strip().str.upper()).set_index("state")[metric].dropna()
    values = values * (100 if metric == "anomaly_rate" else 1)
    label = "anomalous (alerted) transactions" if metric == "anomalies" else "anomalous share of transactions (%)"
    ax = figure.subplots()
    norm = Normalize(vmin=0, vmax=float(values.max()) or 1.0)
    cmap = colormaps["YlOrRd"]
    colour = {code: cmap(norm(values[code])) if code in values.index else NO_DATA_GREY for code in shapes["states"]}
    outlines, faces = [], []
    for code, state in shapes["states"].items():
        for polygon in state["polygons"]:
            outlines.append(_outline(polygon[0]))  # holes are lakes inside a state: left filled
            faces.append(colour[code])
    ax.add_collection(PolyCollection(outlines, facecolors=faces, edgecolors="white", linewidths=0.6))
    for code, state in shapes["states"].items():
        x, y = _label_point(state)
        if code == "DC":  # a few pixels on the map: a marker of its own colour, beside it
            ax.scatter([x + 28], [y + 18], s=60, color=colour[code], edgecolors="#495057", linewidths=0.6, zorder=3)
            ax.annotate("DC", (x + 28, y + 18), xytext=(6, -3), textcoords="offset points", fontsize=7)
        elif _area(state["polygons"]) > 1500:  # the small north-eastern states would only be covered by their codes
            red, green, blue, _ = to_rgba(colour[code])
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(x, y, code, ha="center", va="center", fontsize=7, color="white" if dark else "#343a40")
    x0, y0, x1, y1 = shapes["bbox"]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # screen units: y grows downwards
    ax.set_aspect("equal")
    ax.set_axis_off()
    figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, label=label, pad=0.01)
    notes = []
    if set(shapes["states"]) - set(values.index):
        notes.append("grey: no transactions")
    off_map = sorted(set(values.index) - set(shapes["states"]))
    if off_map:
        fmt = "{:,.0f}" if metric == "anomalies" else "{:.2f}%"
        notes.append("not on the map: " + ", ".join(f"{s} {fmt.format(values[s])}" for s in off_map))
    if notes:
        ax.text(1.0, 0.0, "; ".join(notes), transform=ax.transAxes, ha="right", fontsize=8, color="#495057")
    top = values.sort_values(ascending=False).head(5)
    fmt = "{:,.0f}" if metric == "anomalies" else "{:.2f}%"
    ax.set_title("most: " + ", ".join(f"{s} {fmt.format(v)}" for s, v in top.items()), fontsize=10,
                 color="#495057")  # fmt: skip


def _area(polygons: list) -> float:
    """Shoelace area of the outlines, in square screen units."""
    return sum(abs(_signed_area(_outline(polygon[0]))) for polygon in polygons)


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring.T
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _label_point(state: dict[str, Any]) -> tuple[float, float]:
    """The centroid of the state's largest polygon: Michigan's lower peninsula, Florida's peninsula."""
    ring = max((_outline(p[0]) for p in state["polygons"]), key=lambda r: abs(_signed_area(r)))
    x, y = ring.T
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    if abs(area) < 1e-9:
        return float(x.mean()), float(y.mean())
    return float(((x + np.roll(x, -1)) * cross).sum() / (6 * area)), float(
        ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    )


def _draw_amount_vs_score(figure: Figure, data: pd.DataFrame) -> None:
    ax = figure.subplots()
    data = data[data["amt"] > 0]
    flagged = data["flagged"].fillna(False).astype(bool)
    fraud = data["is_fraud"].fillna(False).astype(bool)
    groups = [
        (~flagged & ~fraud, QUIET, "o", 6, 0.35, "not alerted"),
        (flagged & ~fraud, ALERT, "o", 10, 0.55, "alerted, not fraud (or label pending)"),
        (~flagged & fraud, MISSED, "v", 18, 0.8, "fraud, missed"),
        (flagged & fraud, FRAUD, "X", 22, 0.85, "fraud, alerted"),
    ]
    for mask, colour, marker, size, alpha, label in groups:
        part = data[mask]
        ax.scatter(part["amt"], part["score"], s=size, c=colour, marker=marker, alpha=alpha, linewidths=0,
                   label=f"{label} ({len(part):,})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("transaction amount (USD, log scale)")
    ax.set_ylabel("ensemble anomaly score")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9, markerscale=1.5)
    ax.set_title(f"{len(data):,} transactions: every alert and labelled fraud, a fixed sample of the rest",
                 fontsize=10, color="#495057")  # fmt: skip


def _draw_roc_pr(figure: Figure, data: pd.DataFrame) -> None:
    drawn = {}
    for detector, rows in data.groupby("detector", sort=False):
        roc, pr = rows[rows["curve"] == "roc"], rows[rows["curve"] == "pr"]
        drawn[str(detector)] = {
            "roc": (roc["x"].to_numpy(), roc["y"].to_numpy()),
            "pr": (pr["x"].to_numpy(), pr["y"].to_numpy()),
            "roc_auc": roc["auc"].iloc[0],
            "pr_auc": pr["auc"].iloc[0],
        }
    roc_axes, pr_axes = figure.subplots(1, 2)
    draw_curves(roc_axes, pr_axes, drawn)
    for ax in (roc_axes, pr_axes):
        ax.grid(alpha=0.3)
        for text in ax.get_legend().get_texts():
            text.set_fontsize(8)
    first = data.iloc[0]
    roc_axes.set_title(f"ROC: {int(first['events']):,} labelled events, {int(first['frauds']):,} frauds")


def _draw_alerts_vs_budget(figure: Figure, data: pd.DataFrame, budget: float | None = None) -> None:
    ax = figure.subplots()
    days = _days(data)
    alerts = data["alerts"].astype(float)
    over = alerts > budget if budget else pd.Series(False, index=data.index)
    ax.bar(days[~over], alerts[~over], width=1.0, color=ALERT, alpha=0.6, label="alerts per day")
    if over.any():
        ax.bar(days[over], alerts[over], width=1.0, color=FRAUD, alpha=0.8, label="alerts per day, over budget")
    mean = float(alerts.mean())
    ax.axhline(mean, color="#495057", ls="--", lw=1, label=f"mean {mean:,.1f}")
    if budget:
        ax.axhline(budget, color=BUDGET, lw=2, label=f"budget {budget:,.1f} per day")
        summary = f"mean {mean:,.1f} alerts/day = {mean / budget:.2f}x the budget; {int(over.sum()):,} of " \
                  f"{len(data):,} days over it"  # fmt: skip
    else:
        summary = f"mean {mean:,.1f} alerts/day over {len(data):,} days (no budget known: no model metadata)"
    ax.set_title(summary, fontsize=10, color="#495057")
    ax.set_ylabel("alerts per day")
    ax.set_ylim(0, _headroom(max(float(alerts.max()), budget or 0.0)))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9, framealpha=0.9, ncols=2)
    _date_axis(ax, days)


def _draw_funnel(figure: Figure, data: pd.DataFrame) -> None:
    ax = figure.subplots()
    counts = data["count"].astype(int).tolist()
    stages = data["stage"].astype(str).tolist()
    y = np.arange(len(stages))[::-1]  # the first stage on top
    colours = ["#868e96", BUDGET, ALERT, FRAUD][: len(stages)]
    ax.barh(y, [max(c, 0.8) for c in counts], color=colours, alpha=0.85, height=0.6)
    ax.set_yticks(y, stages, fontsize=11)
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(counts) * 12)
    for i, (yi, count) in enumerate(zip(y, counts, strict=True)):
        share = f"  ({count / counts[i - 1]:.2%} of {stages[i - 1]})" if i and counts[i - 1] else ""
        ax.text(max(count, 0.8) * 1.15, yi, f"{count:,}{share}", va="center", fontsize=10)
    ax.set_xlabel("events (log scale)")
    ax.grid(axis="x", alpha=0.3)


_DRAWERS: dict[str, Callable[..., None]] = {
    "daily_trend": _draw_daily_trend,
    "score_by_category": _draw_score_by_category,
    "anomalies_by_state": _draw_anomalies_by_state,
    "amount_vs_score": _draw_amount_vs_score,
    "roc_pr": _draw_roc_pr,
    "alerts_vs_budget": _draw_alerts_vs_budget,
    "funnel": _draw_funnel,
}
_SIZES = {"anomalies_by_state": (10, 6.4), "roc_pr": (11, 5.2), "funnel": (10, 3.6), "score_by_category": (10, 5.6)}
