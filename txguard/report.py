"""``txguard report``: the scored history as a chart (PNG), from the PostgreSQL views."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _rows(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def render(conn, path: Path, title: str = "txguard") -> Path:
    """Three panels: daily volume with alerts and frauds, score by label, precision/recall."""
    daily = _rows(conn, "SELECT day, transactions, alerts, frauds, frauds_alerted FROM daily_activity ORDER BY day")
    scored = _rows(
        conn, "SELECT score, is_fraud FROM scored_transactions WHERE score IS NOT NULL AND is_fraud IS NOT NULL"
    )
    threshold = _rows(conn, "SELECT min(score) FROM scores WHERE flagged")[0][0]
    score = np.array([s for s, _ in scored], dtype=float)
    fraud = np.array([f for _, f in scored], dtype=bool)

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    fig.suptitle(title)
    _daily_panel(axes[0], daily)
    _score_panel(axes[1], score, fraud, threshold)
    _precision_recall_panel(axes[2], score, fraud, threshold)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _daily_panel(ax, daily: list[tuple]) -> None:
    if daily:
        days = [d[0] for d in daily]
        ax.plot(days, [d[1] for d in daily], color="#999999", lw=1, label="transactions")
        ax2 = ax.twinx()
        ax2.bar(days, [d[2] for d in daily], color="#d62728", alpha=0.5, label="alerts")
        ax2.plot(days, [d[3] for d in daily], "k.", ms=4, label="frauds (labels)")
        ax2.set_ylabel("alerts / frauds per day")
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_title("Daily volume, alerts and frauds")
    ax.set_ylabel("transactions per day")
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(axis="x", rotation=30)


def _score_panel(ax, score: np.ndarray, fraud: np.ndarray, threshold: float | None) -> None:
    if len(score):
        bins = np.linspace(0, 1, 51)
        ax.hist(score[~fraud], bins=bins, alpha=0.6, label="legitimate", color="#1f77b4")
        ax.hist(score[fraud], bins=bins, alpha=0.8, label="fraud", color="#d62728")
        ax.set_yscale("log")
        if threshold is not None:
            ax.axvline(threshold, color="k", ls="--", lw=1, label=f"alert threshold {threshold:.3f}")
        ax.legend(fontsize=8)
    ax.set_title("Ensemble score by label")
    ax.set_xlabel("score")


def _precision_recall_panel(ax, score: np.ndarray, fraud: np.ndarray, threshold: float | None) -> None:
    if fraud.any():
        order = np.argsort(-score)
        hits = np.cumsum(fraud[order])
        precision = hits / np.arange(1, len(order) + 1)
        recall = hits / fraud.sum()
        ax.plot(recall, precision, color="#2ca02c")
        if threshold is not None:
            flagged = score >= threshold
            p = (flagged & fraud).sum() / max(flagged.sum(), 1)
            r = (flagged & fraud).sum() / fraud.sum()
            ax.plot([r], [p], "ko", label=f"alerts: precision {p:.2f}, recall {r:.2f}")
            ax.legend(fontsize=8)
    ax.set_title("Precision / recall against the labels")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
