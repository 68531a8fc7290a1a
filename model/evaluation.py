"""Quality of scores and alerts against fraud labels: numbers and curves for ``txguard evaluate``.

Pure functions of arrays and frames; only :func:`plot_curves` writes a file.
Undefined metrics are None rather than 0, so a report never shows a precision of
0 for a run that raised no alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve


def summarise(y_true: np.ndarray, score: np.ndarray, flagged: np.ndarray) -> dict[str, int | float | None]:
    """Counts, precision and recall of the alerts, and the ranking quality of the score.

    Parameters
    ----------
    y_true : numpy.ndarray
        Fraud labels, truthy for fraud, shape (n,).
    score : numpy.ndarray
        Scores, higher = more suspicious, shape (n,).
    flagged : numpy.ndarray
        Whether each event raised an alert, shape (n,).

    Returns
    -------
    dict
        ``rows``, ``frauds``, ``alerts``, ``true_positives``; ``precision`` (None
        without alerts) and ``recall`` (None without fraud) of the alerts;
        ``roc_auc`` and ``pr_auc`` (average precision) of the score, None unless
        both classes are present.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    alerts = np.asarray(flagged).astype(bool).ravel()
    if not len(y) == len(score) == len(alerts):
        raise ValueError(f"lengths differ: y_true {len(y)}, score {len(score)}, flagged {len(alerts)}")
    frauds, n_alerts = int(y.sum()), int(alerts.sum())
    true_positives = int((y & alerts).sum())
    both_classes = 0 < frauds < len(y)
    return {
        "rows": len(y),
        "frauds": frauds,
        "alerts": n_alerts,
        "true_positives": true_positives,
        "precision": true_positives / n_alerts if n_alerts else None,
        "recall": true_positives / frauds if frauds else None,
        "roc_auc": float(roc_auc_score(y, score)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, score)) if both_classes else None,
    }


def card_precision_at_k(frame: pd.DataFrame, k: int) -> float:
    """Daily card precision at k (Fraud Detection Handbook), averaged over days.

    Investigators check cards, not transactions: each day, the ``k`` cards with
    the highest maximum score that day are checked, and the day's card precision
    is the number of them with at least one fraud that day, divided by ``k`` (so a
    day with fewer than ``k`` cards cannot reach 1). Ties are broken by card token
    so the result is deterministic.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``day``, ``card_token``, ``score``, ``is_fraud``.
    k : int
        Cards checked per day.

    Returns
    -------
    float
        Mean over the days present in ``frame``; NaN for an empty frame.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if frame.empty:
        return float("nan")
    cards = (
        frame.assign(is_fraud=frame["is_fraud"].astype(bool))
        .groupby(["day", "card_token"], sort=False)
        .agg(max_score=("score", "max"), compromised=("is_fraud", "any"))
        .reset_index()
        .sort_values(["day", "max_score", "card_token"], ascending=[True, False, True], kind="stable")
    )
    checked = cards.groupby("day", sort=True).head(k)
    per_day = checked.groupby("day", sort=True)["compromised"].sum() / k
    return float(per_day.mean())


def alerts_per_day(frame: pd.DataFrame) -> pd.Series:
    """Number of alerts on each day of ``frame``, days without alerts included.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``day`` and ``flagged``.

    Returns
    -------
    pandas.Series
        Integer counts named ``alerts``, indexed by ``day`` in order.
    """
    counts = frame.assign(flagged=frame["flagged"].astype(bool)).groupby("day", sort=True)["flagged"].sum()
    return counts.astype(np.int64).rename("alerts")


def curves(y_true: np.ndarray, score: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ROC and precision-recall curves of a score.

    Parameters
    ----------
    y_true : numpy.ndarray
        Fraud labels; both classes must be present.
    score : numpy.ndarray
        Scores, higher = more suspicious.

    Returns
    -------
    dict
        ``roc``: (false positive rate, true positive rate); ``pr``: (recall, precision).
    """
    y = np.asarray(y_true).astype(bool).ravel()
    if not 0 < y.sum() < len(y):
        raise ValueError("curves need both fraud and legitimate events")
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    return {"roc": (fpr, tpr), "pr": (recall, precision)}


def curves_figure(results: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC (left) and precision-recall (right) curves of several detectors or versions.

    Parameters
    ----------
    results : mapping of str to (y_true, score)
        One entry per detector or model version, drawn in this order.

    Returns
    -------
    matplotlib.figure.Figure
        With the ROC-AUC or PR-AUC of each entry in the legends.
    """
    drawn = {}
    for name, (y_true, score) in results.items():
        y = np.asarray(y_true).astype(bool)
        if not 0 < y.sum() < len(y):
            raise ValueError(f"{name}: curves need both fraud and legitimate events")
        drawn[name] = {
            **curves(y, score),
            "roc_auc": roc_auc_score(y, score),
            "pr_auc": average_precision_score(y, score),
        }
    # A bare Figure with the Agg canvas: no pyplot global state, safe off the main thread.
    figure = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(figure)
    roc_axes, pr_axes = figure.subplots(1, 2)
    draw_curves(roc_axes, pr_axes, drawn)
    return figure


def draw_curves(roc_axes, pr_axes, drawn: Mapping[str, Mapping]) -> None:
    """Draw curves already computed: per name, ``roc`` and ``pr`` point pairs (as :func:`curves` returns
    them) and the ``roc_auc`` and ``pr_auc`` for the legends. Shared by :func:`curves_figure` and the report."""
    for name, points in drawn.items():
        roc_axes.plot(*points["roc"], label=f"{name} (ROC-AUC {points['roc_auc']:.3f})")
        pr_axes.step(*points["pr"], where="post", label=f"{name} (PR-AUC {points['pr_auc']:.3f})")
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC")
    pr_axes.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    roc_axes.legend(loc="lower right")
    pr_axes.legend(loc="upper right")


def plot_curves(results: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path | str) -> Path:
    """Draw :func:`curves_figure` of ``results`` into a PNG at ``path``.

    Parameters
    ----------
    results : mapping of str to (y_true, score)
        One entry per detector or model version.
    path : pathlib.Path or str
        Where to write the PNG; missing parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(results).savefig(path, dpi=110, format="png")
    return path
