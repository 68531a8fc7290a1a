"""Batch training on a historical window, and evaluation (saving and loading: ``model.registry``)."""

from __future__ import annotations

import hashlib
import platform
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import river
import sklearn

from model.behavior import CardBehavior
from model.calibration import fit_calibration
from model.detectors import ONLINE_DETECTORS, Detector, IsolationForestDetector
from model.drift import DriftMonitor
from model.ensemble import DRIFT_FEATURES, Ensemble
from model.evaluation import summarise
from model.features import FEATURE_NAMES, CategoryNorms, Txn, featurize, txns_from_columns
from model.online_classifier import OnlineClassifier
from model.scale import NinesScale, unit_score
from model.supervised import SupervisedDetector
from model.threshold import AlertBudget

TRAINING_COLUMNS = ("card_token", "event_time", "amt", "category", "birth_year", "city_pop")
LABEL_DELAY = timedelta(days=7)  # labels (chargebacks) arrive about a week after the event
MIN_FRAUDS = 50  # fewer labelled frauds than this: no supervised classifier, the unsupervised ensemble alone
DEFAULT_ALERTS_PER_DAY = 10.0  # the budget when the history says nothing about the fraud rate
_MIN_HELDOUT_ROWS = 1000
_ONLINE_WARMUP_CHUNK = 5000


def txns_from_frame(df: pd.DataFrame) -> list[Txn]:
    """Rows of a time-ordered frame (``TRAINING_COLUMNS``) as model transactions.

    A frame without ``city_pop`` (an older export) gets 0 for it.
    """
    seconds = df["event_time"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    city_pop = df["city_pop"].astype(np.int64).tolist() if "city_pop" in df else [0] * len(df)
    return txns_from_columns(
        df["card_token"].tolist(),
        seconds.tolist(),
        df["amt"].astype(float).tolist(),
        df["category"].tolist(),
        df["birth_year"].astype(int).tolist(),
        city_pop,
    )


def feature_matrix(df: pd.DataFrame, norms: CategoryNorms) -> np.ndarray:
    """Features of every row, replaying the frame in time order from empty card states."""
    states: dict[str, CardBehavior] = {}
    return featurize(txns_from_frame(df), states, norms)


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a training frame's rows (order and values): says which data a model was trained on."""
    rows = pd.util.hash_pandas_object(frame[sorted(frame.columns)], index=False)
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()


def train(
    df: pd.DataFrame,
    *,
    alerts_per_day: float | None = None,
    label_cutoff: datetime | None = None,
    label_delay: timedelta = LABEL_DELAY,
    supervised: bool = True,
    min_frauds: int = MIN_FRAUDS,
    online_detector: str = "zscore",
    iforest_weight: float = 0.7,
    max_iforest_rows: int = 200_000,
    random_state: int = 0,
    source: str = "",
) -> tuple[Ensemble, dict]:
    """Fit the ensemble on a time-ordered historical window.

    Parameters
    ----------
    df : pandas.DataFrame
        ``TRAINING_COLUMNS``, and ``is_fraud`` when labels are known; a missing
        ``is_fraud`` (None / NA) is an event whose label has not arrived.
    alerts_per_day : float, optional
        The alert budget. Default: the labelled frauds per event-day of the
        window, or ``DEFAULT_ALERTS_PER_DAY`` without labelled frauds.
    label_cutoff : datetime, optional
        Only labels of events before it are used: the labels that had arrived by
        the training cut-off. Default: the window's last event time minus
        ``label_delay``. Later rows keep their features (the unsupervised
        detectors, the scales and the budget see them) but not their labels.
    supervised : bool, default True
        False trains the unsupervised ensemble only (a "labels off" run).
    min_frauds : int
        Least number of labelled frauds to train the supervised classifier.

    Returns
    -------
    (Ensemble, dict)
        The model and its training report (also its ``metadata``): see
        :func:`_report`, and ``heldout`` (:func:`heldout_evaluation`) and
        ``calibration`` (``model.calibration.fit_calibration``) when there are
        labelled events after the label cut-off.
    """
    data_hash = frame_hash(df)
    df = df.sort_values("event_time", kind="stable").reset_index(drop=True)
    norms = CategoryNorms.fit(df["category"], df["amt"])
    X = feature_matrix(df, norms)
    seconds = df["event_time"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    days = seconds // 86_400

    rng = np.random.default_rng(random_state)
    fit_rows = X if len(X) <= max_iforest_rows else X[rng.choice(len(X), max_iforest_rows, replace=False)]
    iforest = IsolationForestDetector(random_state=random_state).fit(fit_rows)
    iforest_raw = iforest.score_many(X)
    online, online_raw = _warm_up_online(ONLINE_DETECTORS[online_detector](), X)
    scales = {"iforest": NinesScale(iforest_raw), "online": NinesScale(online_raw)}
    for name in iforest.features:
        scales[f"feature:{name}"] = NinesScale(X[:, FEATURE_NAMES.index(name)])

    cutoff = pd.Timestamp(label_cutoff) if label_cutoff is not None else df["event_time"].max() - label_delay
    has_labels = "is_fraud" in df
    known = df["is_fraud"].notna().to_numpy() if has_labels else np.zeros(len(df), bool)
    labelled = known & (df["event_time"] < cutoff).to_numpy() if has_labels and len(df) else np.zeros(len(df), bool)
    y = df["is_fraud"].astype("boolean").fillna(False).to_numpy(dtype=bool) if has_labels else np.zeros(len(df), bool)
    frauds = int(y[labelled].sum())
    classifier, why = None, "supervised=False"
    if supervised:
        if frauds < min_frauds:
            why = f"{frauds} labelled frauds before {cutoff}, fewer than {min_frauds}"
        elif frauds == int(labelled.sum()):
            why = "every labelled event is a fraud"
        else:
            classifier = SupervisedDetector(random_state=random_state).fit(X[labelled], y[labelled])
            why = "trained"

    supervised_raw = None
    reference = np.ones(len(X), dtype=bool)  # the events the scale and the budget start from
    if classifier is not None:
        supervised_raw = classifier.score_many(X)
        # Its own training events score lower than new ones (it has fitted them): the
        # events after the label cut-off, whose labels it never saw, are the fair reference.
        if int((~labelled).sum()) >= _MIN_HELDOUT_ROWS:
            reference = ~labelled
        scales["supervised"] = NinesScale(supervised_raw[reference])

    labelled_days = int(np.ptp(days[labelled])) + 1 if labelled.any() else 0
    if alerts_per_day is None:
        alerts_per_day = frauds / labelled_days if frauds else DEFAULT_ALERTS_PER_DAY
    model = Ensemble(
        iforest=iforest,
        online=online,
        scales=scales,
        category_norms=norms,
        supervised=classifier,
        iforest_weight=iforest_weight,
        drift=DriftMonitor(DRIFT_FEATURES),
    )
    learned_nines = None
    if supervised and labelled.any():
        # The online classifier starts from the labelled history; the learner carries it on from the labels topic.
        learned = OnlineClassifier(seed=random_state)
        learned.learn_many(X[labelled], y[labelled], learned_until=df["event_time"][labelled].max().isoformat())
        model.learned = learned.snapshot()
        if model.learned.ready:
            learned_nines = model.learned.to_nines(model.learned.score_many(X))
    score = model.combine(iforest_raw, online_raw, supervised_raw, learned_nines)
    model.budget = AlertBudget.from_training(score[reference], days[reference], alerts_per_day)

    report = _report(df, model, source=source, online_detector=online_detector)
    report["training_data"]["data_hash"] = data_hash
    report["supervised"] = {
        "trained": classifier is not None,
        "why": why,
        "label_cutoff": str(cutoff),
        "labelled_rows": int(labelled.sum()),
        "labelled_frauds": frauds,
    }
    report["alerts_per_day"] = float(alerts_per_day)
    report["threshold"] = model.current_threshold()
    later = known & ~labelled  # labelled events after the label cut-off: no classifier saw their labels
    if later.any():
        raw = {"iforest": iforest_raw, "online": online_raw, "supervised": supervised_raw}
        units = {name: unit_score(scales[name](values[later])) for name, values in raw.items() if values is not None}
        if learned_nines is not None:
            units["learned"] = unit_score(learned_nines[later])
        report["heldout"] = heldout_evaluation(units, score[later], y[later], days[later], report["threshold"], cutoff)
        report["calibration"] = fit_calibration(score[later], y[later])
    model.metadata = report
    return model, report


def heldout_evaluation(
    units: dict[str, np.ndarray],
    score: np.ndarray,
    y: np.ndarray,
    days: np.ndarray,
    threshold: float,
    cutoff: pd.Timestamp,
) -> dict[str, Any]:
    """Each detector's quality on the labelled events after the label cut-off, and the ensemble's.

    Every detector is judged on its own scale (its nines as a unit score, as the
    ensemble sees it) at the ensemble's alert threshold, i.e. at the same rarity.
    Neither classifier learned a label of these events. The unsupervised
    detectors and the scales saw them without labels (the Isolation Forest is
    fitted on the whole window; the online detector scored each chunk before
    learning it).

    Parameters
    ----------
    units : dict of str to numpy.ndarray
        Unit scores of the held-out events per detector ("iforest", "online",
        "supervised", "learned").
    score : numpy.ndarray
        Their ensemble scores.
    y : numpy.ndarray
        Their fraud labels.
    days : numpy.ndarray
        Their event-days.
    threshold : float
        The alert threshold.
    cutoff : pandas.Timestamp
        The label cut-off: the held-out events are those at or after it.

    Returns
    -------
    dict
        ``since``, ``rows``, ``frauds``, ``days``, ``threshold`` and ``detectors``:
        per detector (and "ensemble") ``model.evaluation.summarise`` at the
        threshold, plus ``alerts_per_day``. Undefined metrics are None.
    """
    n_days = int(np.ptp(days)) + 1 if len(days) else 0
    detectors: dict[str, dict[str, Any]] = {}
    for name, unit in {**units, "ensemble": score}.items():
        figures: dict[str, Any] = summarise(y, unit, unit >= threshold)
        figures["alerts_per_day"] = figures["alerts"] / n_days if n_days else None
        detectors[name] = figures
    return {
        "since": str(cutoff),
        "rows": int(len(y)),
        "frauds": int(np.sum(y)),
        "days": n_days,
        "threshold": threshold,
        "detectors": detectors,
    }


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


def _report(df: pd.DataFrame, model: Ensemble, *, source: str, online_detector: str) -> dict:
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
        "category_norms": model.category_norms.to_dict(),
        "online_detector": online_detector,
        "iforest_features": list(model.iforest.features),
        "iforest_weight": model.iforest_weight,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "river": river.__version__,
            "numpy": np.__version__,
        },
    }
