"""Batch training on a historical window, and evaluation (saving and loading: ``model.registry``)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import river
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score

from model.behavior import CardBehavior
from model.detectors import ONLINE_DETECTORS, RISK_FEATURES, Detector, IsolationForestDetector
from model.ensemble import EmpiricalCDF, Ensemble
from model.features import FEATURE_NAMES, Txn, featurize, txns_from_columns

TRAINING_COLUMNS = ("card_token", "event_time", "amt", "category", "birth_year")
_ONLINE_WARMUP_CHUNK = 5000


def txns_from_frame(df: pd.DataFrame) -> list[Txn]:
    """Rows of a time-ordered frame (``TRAINING_COLUMNS``) as model transactions."""
    seconds = df["event_time"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    return txns_from_columns(
        df["card_token"].tolist(),
        seconds.tolist(),
        df["amt"].astype(float).tolist(),
        df["category"].tolist(),
        df["birth_year"].astype(int).tolist(),
    )


def feature_matrix(df: pd.DataFrame, category_medians: dict[str, float]) -> np.ndarray:
    """Features of every row, replaying the frame in time order from empty card states."""
    states: dict[str, CardBehavior] = {}
    return featurize(txns_from_frame(df), states, category_medians)


def evaluate(y_true: np.ndarray, score: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    y = np.asarray(y_true, dtype=bool)
    tp = int(np.sum(flagged & y))
    out = {
        "rows": int(len(y)),
        "frauds": int(y.sum()),
        "alerts": int(flagged.sum()),
        "true_positives": tp,
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(int(y.sum()), 1),
    }
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(roc_auc_score(y, score))
        out["pr_auc"] = float(average_precision_score(y, score))
    return out


def train(
    df: pd.DataFrame,
    *,
    alert_rate: float = 0.006,
    online_detector: str = "zscore",
    iforest_weight: float = 0.6,
    max_iforest_rows: int = 200_000,
    random_state: int = 0,
    source: str = "",
) -> tuple[Ensemble, dict]:
    """Fit the ensemble on a time-ordered historical window.

    ``alert_rate`` sets the threshold: the share of training events that would be
    flagged. ``is_fraud`` is used only to report quality, never to fit.
    Returns the model and its training report.
    """
    df = df.sort_values("event_time", kind="stable").reset_index(drop=True)
    category_medians = {k: float(v) for k, v in df.groupby("category")["amt"].median().items()}
    X = feature_matrix(df, category_medians)

    rng = np.random.default_rng(random_state)
    fit_rows = X if len(X) <= max_iforest_rows else X[rng.choice(len(X), max_iforest_rows, replace=False)]
    iforest = IsolationForestDetector(random_state=random_state).fit(fit_rows)
    iforest_raw = iforest.score_many(X)

    online, online_raw = _warm_up_online(ONLINE_DETECTORS[online_detector](), X)
    model = Ensemble(
        iforest=iforest,
        online=online,
        iforest_cdf=EmpiricalCDF(iforest_raw),
        online_cdf=EmpiricalCDF(online_raw),
        threshold=1.0,
        category_medians=category_medians,
        feature_cdfs={f: EmpiricalCDF(X[:, FEATURE_NAMES.index(f)]) for f in RISK_FEATURES},
        iforest_weight=iforest_weight,
    )
    score = model.combine(iforest_raw, online_raw)
    model.threshold = float(np.quantile(score, 1.0 - alert_rate))

    report = _report(df, model, source=source, online_detector=online_detector, alert_rate=alert_rate)
    if "is_fraud" in df:
        report["training_quality"] = evaluate(df["is_fraud"].to_numpy(), score, score >= model.threshold)
    model.metadata = report
    return model, report


def _warm_up_online(online: Detector, X: np.ndarray) -> tuple[Detector, np.ndarray]:
    """The online detector sees the window as a stream: score each chunk, then learn it.

    Returns the detector and its scores, each computed before the chunk was learned.
    """
    online_raw = np.empty(len(X))
    for start in range(0, len(X), _ONLINE_WARMUP_CHUNK):
        chunk = X[start : start + _ONLINE_WARMUP_CHUNK]
        online_raw[start : start + len(chunk)] = online.score_many(chunk)
        online.learn_many(chunk)
    return online, online_raw


def _report(df: pd.DataFrame, model: Ensemble, *, source: str, online_detector: str, alert_rate: float) -> dict:
    """The model's metadata: its version, what it was trained on, how, and with which libraries."""
    return {
        "version": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "trained_at": datetime.now(UTC).isoformat(),
        "training_data": {
            "source": source,
            "rows": int(len(df)),
            "start": str(df["event_time"].min()),
            "end": str(df["event_time"].max()),
        },
        "features": list(FEATURE_NAMES),
        "online_detector": online_detector,
        "iforest_weight": model.iforest_weight,
        "alert_rate": alert_rate,
        "threshold": model.threshold,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "river": river.__version__,
            "numpy": np.__version__,
        },
    }
