"""``txguard evaluate``: the scores in PostgreSQL judged against the fraud labels received so far.

:func:`evaluate` reads ``scores`` joined with ``labels`` (and ``transactions`` for
the funnel, ``shadow_scores`` and ``drift_events`` when they exist) and returns a
JSON-serialisable dict; :func:`format_report` turns that dict into the plain-text
report the CLI prints. The metrics themselves are the pure functions of ``model.evaluation``.

Detectors are not listed here: every numeric column of ``scores`` named
``*_score`` is one, and ``score`` is the ensemble, so a detector added by a
migration is evaluated without a change to this module. A detector that has not
scored an event (NULL, e.g. a supervised model before it has seen enough labels)
is evaluated on the events it did score, and the report says how many it missed.

Only the ensemble raises alerts. A detector's precision and recall are those it
would have had with the same alert budget: on each event-day it flags its own
highest-scoring events, as many as the ensemble flagged that day (its raw scores
have no threshold of their own).
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from psycopg2 import extensions, sql

from model.evaluation import alerts_per_day, card_precision_at_k, plot_curves, summarise

ENSEMBLE = "score"
_NUMERIC_TYPES = ("double precision", "real", "numeric", "integer", "smallint", "bigint")


def evaluate(
    conn,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    curves_png: Path | None = None,
    k: int = 5,
    alerts_budget: float | None = None,
    labels: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Quality of every detector, the alerts, each model version and each shadow version.

    Parameters
    ----------
    conn : psycopg2 connection
        With ``search_path`` set to the txguard schema (``Clients.pg()``). Only read;
        an idle, non-autocommit connection is read in one read-only snapshot that
        is rolled back at the end, so concurrent scoring cannot skew the counts.
    since, until : datetime, optional
        Event-time window ``[since, until)``. Timezone-aware values are converted
        to UTC and compared with the naive ``event_time`` columns.
    curves_png : pathlib.Path, optional
        Write the ROC and precision-recall curves of every detector there.
    k : int
        Cards checked per event-day for card precision@k.
    alerts_budget : float, optional
        Intended alerts per event-day; when given, the report compares the mean with it.
    labels : pandas.DataFrame, optional
        ``trans_num`` and ``is_fraud`` to judge against instead of the ``labels``
        table (e.g. the source file's, after a run with labels off). Loaded into a
        temporary table that hides ``labels`` for this connection, then dropped.

    Returns
    -------
    dict
        Plain Python types only (see :func:`format_report` for the keys). Metrics
        that need labels, or both classes, are None when they are undefined.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    since, until = _naive_utc(since), _naive_utc(until)
    if since is not None and until is not None and since >= until:
        raise ValueError(f"empty window: since {since} is not before until {until}")

    if labels is not None:
        _hide_labels(conn, labels)
    snapshot = not conn.autocommit and conn.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE
    try:
        if snapshot:
            with conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        window = {"since": since, "until": until}
        detectors = detector_columns(conn)
        scores_columns = _columns(conn, "scores")
        frame = _scored_frame(conn, detectors, "threshold" in scores_columns, window)
        transactions = _count(conn, "transactions", window)
        shadow_columns = _columns(conn, "shadow_scores")
        shadow_frame = (
            _shadow_frame(conn, window) if {"trans_num", "model_version", ENSEMBLE} <= shadow_columns else None
        )
        drift = _drift_counts(conn, window) if "quantity" in _columns(conn, "drift_events") else None
    finally:
        if snapshot:
            conn.rollback()
        if labels is not None:
            with conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS pg_temp.labels")
            conn.commit()
    result = _assemble(frame, detectors, transactions, shadow_frame, window, curves_png, k, alerts_budget)
    result["drift"] = drift
    return result


def _hide_labels(conn, labels: pd.DataFrame) -> None:
    """``labels`` as a temporary table named ``labels``: the session's temporary tables come first."""
    rows = io.StringIO()
    labels[["trans_num", "is_fraud"]].astype({"is_fraud": bool}).to_csv(rows, index=False, header=False)
    rows.seek(0)
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE labels (trans_num text PRIMARY KEY, is_fraud boolean NOT NULL)")
        cur.copy_expert("COPY pg_temp.labels (trans_num, is_fraud) FROM STDIN WITH (FORMAT csv)", rows)
    conn.commit()


def detector_columns(conn) -> list[str]:
    """The ensemble ``score`` first, then every numeric ``*_score`` column of ``scores`` in table order.

    ``shadow_score`` is not a detector of the current ensemble: the ``shadow`` section judges it.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'scores'"
            " AND (column_name = %s OR right(column_name, 6) = '_score') AND column_name <> 'shadow_score'"
            " AND data_type = ANY(%s)"
            " ORDER BY column_name <> %s, ordinal_position",
            (ENSEMBLE, list(_NUMERIC_TYPES), ENSEMBLE),
        )
        return [name for (name,) in cur.fetchall()]


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate` as a plain-text report.

    Parameters
    ----------
    result : dict
        Keys ``window``, ``k``, ``counts``, ``funnel``, ``detectors``, ``alerts``,
        ``model_versions``, ``shadow``, ``drift`` and ``curves_png``, as :func:`evaluate` returns them.

    Returns
    -------
    str
        Lines without a trailing newline; undefined metrics show as ``-``.
    """
    counts, window, k = result["counts"], result["window"], result["k"]
    lines = [f"txguard evaluate: event time {window['since'] or 'start'} .. {window['until'] or 'end'}"]
    stages = result["funnel"]
    funnel = [f"{stages[0]['stage']} {stages[0]['events']:,}"]
    funnel += [f"{s['stage']} {s['events']:,} ({_share(s['events'], p['events'])})" for p, s in pairwise(stages)]
    lines += ["funnel: " + " -> ".join(funnel), ""]

    if counts["labelled"] == 0:
        lines.append(
            f"No labels yet for the {counts['scored']:,} scored events in this window: "
            "ROC-AUC, PR-AUC, precision, recall and card precision need fraud labels."
        )
    else:
        lines.append(
            f"labelled {counts['labelled']:,} of {counts['scored']:,} scored events; "
            f"{counts['frauds']:,} fraud ({_share(counts['frauds'], counts['labelled'])})"
        )
        if counts["frauds"] in (0, counts["labelled"]):
            only = "legitimate" if counts["frauds"] == 0 else "fraud"
            lines.append(f"Every labelled event is {only}: ROC-AUC and PR-AUC need both classes.")
        lines += ["", *_detector_table(result["detectors"], k)]
        lines += [
            f"  {name}: no score for {d['unscored']:,} of {counts['labelled']:,} labelled events;"
            f" evaluated on the {d['events']:,} it scored"
            for name, d in result["detectors"].items()
            if d["unscored"]
        ]

    lines += ["", *_alert_lines(result["alerts"], counts, k)]
    if result["model_versions"]:
        lines += ["", "per model version (ensemble score):"]
        lines += _table(
            ["version", "events", "frauds", "alerts", "precision", "recall", "ROC-AUC", "PR-AUC"],
            [
                [v, m["rows"], m["frauds"], m["alerts"], m["precision"], m["recall"], m["roc_auc"], m["pr_auc"]]
                for v, m in result["model_versions"].items()
            ],
        )
    if result["shadow"]:
        lines += ["", "shadow versions against the current ensemble, on the same labelled events:"]
        lines += _table(
            ["shadow", "events", "frauds", "ROC-AUC", "current", "PR-AUC", "current"],
            [
                [v, s["events"], s["frauds"], s["roc_auc"], s["current_roc_auc"], s["pr_auc"], s["current_pr_auc"]]
                for v, s in result["shadow"].items()
            ],
        )
    drift = result.get("drift")  # absent from results saved before drift events were stored
    if drift is not None:
        by_quantity = ", ".join(f"{q} {n:,}" for q, n in drift["by_quantity"].items())
        lines += ["", f"drift events stored: {drift['events']:,}" + (f" ({by_quantity})" if by_quantity else "")]
    if result["curves_png"]:
        lines += ["", f"ROC and precision-recall curves: {result['curves_png']}"]
    return "\n".join(lines)


# Reading


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _columns(conn, table: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {name for (name,) in cur.fetchall()}


def _window(column: sql.Composable, window: dict[str, datetime | None]) -> sql.Composable:
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if window["since"] is not None:
        conditions.append(sql.SQL("{} >= %(since)s").format(column))
    if window["until"] is not None:
        conditions.append(sql.SQL("{} < %(until)s").format(column))
    return sql.SQL(" AND ").join(conditions)


def _count(conn, table: str, window: dict[str, datetime | None]) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(table), _window(sql.Identifier("event_time"), window)
    )
    with conn.cursor() as cur:
        cur.execute(query, window)
        return int(cur.fetchone()[0])


def _drift_counts(conn, window: dict[str, datetime | None]) -> dict[str, Any]:
    """Drift events stored, detected in the window: in all and per monitored quantity."""
    query = sql.SQL("SELECT quantity, count(*) FROM drift_events WHERE {} GROUP BY 1 ORDER BY 1").format(
        _window(sql.Identifier("detected_at"), window)
    )
    with conn.cursor() as cur:
        cur.execute(query, window)
        by_quantity = {str(q): int(n) for q, n in cur.fetchall()}
    return {"events": sum(by_quantity.values()), "by_quantity": by_quantity}


def _read_frame(conn, query: sql.Composable, params: dict, numeric: list[str], text: list[str]) -> pd.DataFrame:
    """Rows of ``query`` through COPY and the CSV reader: much faster than tuples for a year of events.

    COPY takes no bind parameters, so psycopg2 quotes them into the statement
    (``mogrify``), exactly as ``execute`` would. In CSV, NULL is an empty unquoted
    field; only ``numeric`` columns may be NULL, so only they read "" as missing.
    """
    buffer = io.StringIO()
    with conn.cursor() as cur:
        statement = cur.mogrify(query, params).decode(extensions.encodings[conn.encoding])
        cur.copy_expert(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)", buffer)
    buffer.seek(0)
    return pd.read_csv(
        buffer,
        dtype={**{name: "float64" for name in numeric}, **{name: str for name in text}},
        keep_default_na=False,
        na_values={name: [""] for name in numeric},
    )


def _scored_frame(conn, detectors: list[str], has_threshold: bool, window: dict) -> pd.DataFrame:
    """Every scored event of the window, with its label where one has arrived (``is_fraud`` NaN otherwise)."""
    s = sql.Identifier("s")
    extra = [sql.SQL("{}.{}").format(s, sql.Identifier(name)) for name in detectors]
    if has_threshold:
        extra.append(sql.SQL("s.threshold"))
    query = sql.SQL(
        "SELECT s.card_token, s.event_time::date::text AS day, s.flagged::int AS flagged, s.model_version,"
        " l.is_fraud::int AS is_fraud, {extra}"
        " FROM scores s LEFT JOIN labels l USING (trans_num) WHERE {window} ORDER BY s.event_time, s.trans_num"
    ).format(extra=sql.SQL(", ").join(extra), window=_window(sql.SQL("s.event_time"), window))
    numeric = ["flagged", "is_fraud", *detectors, *(["threshold"] if has_threshold else [])]
    return _read_frame(conn, query, window, numeric, ["card_token", "day", "model_version"])


def _shadow_frame(conn, window: dict) -> pd.DataFrame:
    """Labelled events scored by a shadow version and by the current ensemble."""
    query = sql.SQL(
        "SELECT sh.model_version AS shadow_version, sh.score AS shadow_score, s.score AS current_score,"
        " l.is_fraud::int AS is_fraud"
        " FROM shadow_scores sh JOIN scores s USING (trans_num) JOIN labels l USING (trans_num)"
        " WHERE {window} ORDER BY sh.model_version, s.trans_num"
    ).format(window=_window(sql.SQL("s.event_time"), window))
    return _read_frame(conn, query, window, ["shadow_score", "current_score", "is_fraud"], ["shadow_version"])


# Assembly (pure)


def _assemble(
    frame: pd.DataFrame,
    detectors: list[str],
    transactions: int,
    shadow_frame: pd.DataFrame | None,
    window: dict[str, datetime | None],
    curves_png: Path | None,
    k: int,
    alerts_budget: float | None,
) -> dict[str, Any]:
    labelled = frame[frame["is_fraud"].notna()]
    y = labelled["is_fraud"].to_numpy(dtype=bool)
    flagged = labelled["flagged"].to_numpy(dtype=bool)
    alerts = int(frame["flagged"].sum())
    confirmed = int((y & flagged).sum())
    counts = {
        "transactions": transactions,
        "scored": len(frame),
        "alerts": alerts,
        "labelled": len(labelled),
        "frauds": int(y.sum()),
        "labelled_alerts": int(flagged.sum()),
        "confirmed_frauds": confirmed,
    }
    funnel = [
        {"stage": "transactions", "events": transactions},
        {"stage": "scored", "events": len(frame)},
        {"stage": "alerted", "events": alerts},
        {"stage": "confirmed fraud", "events": confirmed},
    ]

    detector_results: dict[str, dict[str, Any]] = {}
    for name in detectors:
        flags = frame["flagged"].astype(bool) if name == ENSEMBLE else _at_alert_volume(frame, name)
        scored = labelled[labelled[name].notna()]
        score = scored[name].to_numpy(dtype=np.float64)
        truth = scored["is_fraud"].to_numpy(dtype=bool)
        summary = summarise(truth, score, flags[scored.index].to_numpy(dtype=bool))
        detector_results[name] = {
            "ensemble": name == ENSEMBLE,
            "events": summary["rows"],
            "unscored": len(labelled) - len(scored),
            "frauds": summary["frauds"],
            "roc_auc": summary["roc_auc"],
            "pr_auc": summary["pr_auc"],
            "precision": summary["precision"],
            "recall": summary["recall"],
            "alerts_per_day": float(flags.groupby(frame["day"]).sum().mean()) if len(frame) else None,
            "card_precision_at_k": _card_precision(scored, name, k),
        }

    ensemble = summarise(y, labelled[ENSEMBLE].to_numpy(dtype=np.float64), flagged) if len(labelled) else None
    daily = alerts_per_day(frame) if len(frame) else pd.Series(dtype=np.int64)
    alert_results = {
        "precision": ensemble["precision"] if ensemble else None,
        "recall": ensemble["recall"] if ensemble else None,
        "threshold": _threshold(frame),
        "per_day": {
            "days": len(daily),
            "mean": float(daily.mean()) if len(daily) else None,
            "min": int(daily.min()) if len(daily) else None,
            "max": int(daily.max()) if len(daily) else None,
            "budget": alerts_budget,
        },
        "card_precision_at_k": {
            "k": k,
            "days": int(labelled["day"].nunique()),
            "value": _card_precision(labelled, ENSEMBLE, k),
            # With a perfect ranker: the ceiling set by the number of compromised cards per day.
            "best": _card_precision(labelled.assign(perfect=labelled["is_fraud"]), "perfect", k),
        },
    }
    versions = {
        str(version): summarise(
            group["is_fraud"].to_numpy(dtype=bool),
            group[ENSEMBLE].to_numpy(dtype=np.float64),
            group["flagged"].to_numpy(dtype=bool),
        )
        for version, group in labelled.groupby("model_version", sort=True)
    }
    drawable = curve_inputs(labelled, detectors) if curves_png is not None else {}
    png = str(plot_curves(drawable, curves_png)) if drawable and curves_png is not None else None
    return {
        "window": {key: (value.isoformat() if value else None) for key, value in window.items()},
        "k": k,
        "counts": counts,
        "funnel": funnel,
        "detectors": detector_results,
        "alerts": alert_results,
        "model_versions": versions,
        "shadow": _shadow(shadow_frame) if shadow_frame is not None else None,
        "curves_png": png,
    }


def scored_events(conn, since: datetime | None = None, until: datetime | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Every scored event of ``[since, until)`` with its label where one has arrived (``is_fraud`` NaN otherwise),
    and the detector columns, the ensemble first: what :func:`evaluate` judges, for other readers (the report)."""
    window = {"since": _naive_utc(since), "until": _naive_utc(until)}
    detectors = detector_columns(conn)
    return _scored_frame(conn, detectors, "threshold" in _columns(conn, "scores"), window), detectors


def curve_inputs(frame: pd.DataFrame, detectors: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(labels, scores) of each detector on the labelled events it scored, by display name; only the
    detectors whose events hold both classes (curves need both)."""
    drawable = {}
    for name in detectors:
        scored = frame[frame["is_fraud"].notna() & frame[name].notna()]
        truth = scored["is_fraud"].to_numpy(dtype=bool)
        if 0 < truth.sum() < len(truth):
            drawable[f"{name} (ensemble)" if name == ENSEMBLE else name] = (truth, scored[name].to_numpy(np.float64))
    return drawable


def _at_alert_volume(frame: pd.DataFrame, column: str) -> pd.Series:
    """Whether each event is among ``column``'s top n of its day, n being the ensemble's alerts that day.

    Ties go to the earlier event (``frame`` is in event-time order); unscored events are never flagged.
    """
    by_day = frame.groupby("day", sort=False)
    rank = by_day[column].rank(method="first", ascending=False)
    return (rank <= by_day["flagged"].transform("sum")).astype(bool)


def _card_precision(frame: pd.DataFrame, column: str, k: int) -> float | None:
    ranked = frame[["day", "card_token", column, "is_fraud"]].rename(columns={column: "score"})
    value = card_precision_at_k(ranked, k)
    return None if math.isnan(value) else value


def _threshold(frame: pd.DataFrame) -> dict[str, float] | None:
    """The alert thresholds recorded with the scores (oldest first in ``frame``), if the table has them."""
    if "threshold" not in frame:
        return None
    recorded = frame["threshold"].dropna()
    if recorded.empty:
        return None
    return {"min": float(recorded.min()), "max": float(recorded.max()), "latest": float(recorded.iloc[-1])}


def _shadow(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    results = {}
    for version, group in frame.groupby("shadow_version", sort=True):
        both = group[group["shadow_score"].notna() & group["current_score"].notna()]
        y = both["is_fraud"].to_numpy(dtype=bool)
        none = np.zeros(len(both), dtype=bool)  # shadows raise no alerts
        shadow = summarise(y, both["shadow_score"].to_numpy(dtype=np.float64), none)
        current = summarise(y, both["current_score"].to_numpy(dtype=np.float64), none)
        results[str(version)] = {
            "events": shadow["rows"],
            "frauds": shadow["frauds"],
            "roc_auc": shadow["roc_auc"],
            "pr_auc": shadow["pr_auc"],
            "current_roc_auc": current["roc_auc"],
            "current_pr_auc": current["pr_auc"],
        }
    return results


# Formatting


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header, *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]


DETECTOR_TABLE_TITLE = "per detector (labelled events it scored; prec and recall with the ensemble's alerts per day):"


def _detector_table(detectors: dict[str, dict[str, Any]], k: int) -> list[str]:
    rows = [
        [f"{name} (ensemble)" if d["ensemble"] else name, d["events"], d["frauds"], d["roc_auc"], d["pr_auc"],
         d.get("precision"), d.get("recall"), d.get("alerts_per_day"), d["card_precision_at_k"]]
        for name, d in detectors.items()
    ]  # fmt: skip
    return [DETECTOR_TABLE_TITLE, *_table(
        ["detector", "events", "frauds", "ROC-AUC", "PR-AUC", "prec", "recall", "alerts/day", f"CP@{k}"], rows
    )]  # fmt: skip


def _alert_lines(alerts: dict[str, Any], counts: dict[str, int], k: int) -> list[str]:
    lines = ["alerts (ensemble, flagged):"]
    if counts["labelled"]:
        lines.append(
            f"  precision {_cell(alerts['precision'])} ({counts['confirmed_frauds']:,} fraud of "
            f"{counts['labelled_alerts']:,} labelled alerts), recall {_cell(alerts['recall'])} "
            f"({counts['confirmed_frauds']:,} of {counts['frauds']:,} frauds)"
        )
    threshold = alerts["threshold"]
    if threshold:
        lines.append(f"  threshold {threshold['min']:.4f} .. {threshold['max']:.4f}, latest {threshold['latest']:.4f}")
    per_day = alerts["per_day"]
    if per_day["days"]:
        line = (
            f"  alerts per event-day: mean {per_day['mean']:.1f}, min {per_day['min']:,}, max {per_day['max']:,}"
            f" over {per_day['days']:,} days"
        )
        if per_day["budget"]:
            line += f" (budget {per_day['budget']:g}: {per_day['mean'] / per_day['budget']:.2f}x)"
        lines.append(line)
    cp = alerts["card_precision_at_k"]
    if cp["value"] is not None:
        lines.append(
            f"  card precision@{k} per day: {cp['value']:.3f} (best achievable {cp['best']:.3f},"
            f" over {cp['days']:,} labelled days)"
        )
    return lines
