"""From the ensemble score to a fraud probability: a calibration map fitted on held-out labelled events.

The ensemble score is a rank scale (``nines / (nines + 3)``, see ``model.ensemble``):
0.5 means "rarer than one training event in a thousand", not "50 % fraud". How
likely an event at a given score is to be fraud depends on the fraud rate and on
how well the detectors separate it, so it is measured: an isotonic (monotone)
regression of the labels on the score, over events the model did not learn their
labels from. The result is plain JSON for the model's metadata: the map, a
reliability table (per score bin: events, mean score, observed fraud rate and the
mapped probability) and Brier scores.

Pure functions of arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

# Score bins of the reliability table, on the unit score: nines 0, 1, 1.5, 2, 2.5, 3, 4, 6.
# Uniform or quantile bins would put every fraud in the top bin.
RELIABILITY_EDGES: tuple[float, ...] = (0.0, 0.25, 1 / 3, 0.4, 5 / 11, 0.5, 4 / 7, 2 / 3, 1.0)
MIN_FRAUDS = 5  # fewer held-out frauds than this: no map, the table alone
_FOLDS = 5


def fit_calibration(
    score: np.ndarray,
    is_fraud: np.ndarray,
    *,
    edges: tuple[float, ...] = RELIABILITY_EDGES,
    min_frauds: int = MIN_FRAUDS,
) -> dict[str, Any]:
    """Calibration map and reliability table of a score against fraud labels.

    Parameters
    ----------
    score : numpy.ndarray
        Ensemble scores in [0, 1], shape (n,), in event-time order.
    is_fraud : numpy.ndarray
        Their labels, shape (n,), truthy for fraud.
    edges : tuple of float
        Score bin edges of the reliability table (the last bin includes its upper edge).
    min_frauds : int
        Least number of frauds to fit the map.

    Returns
    -------
    dict
        ``method`` ("isotonic", or None without a map and then ``why``), ``rows``,
        ``frauds``; ``map``: ``score`` and ``probability``, the knots of a
        non-decreasing step function (:func:`probability` reads it);
        ``reliability``: one entry per non-empty bin with ``low``, ``high``,
        ``events``, ``mean_score``, ``fraud_rate`` and ``probability`` (the map's
        mean there); ``brier``: Brier score of the map's probabilities, each
        event's from a map fitted on the other folds (contiguous in time), so not
        in-sample; ``brier_base_rate``: Brier score of predicting the overall fraud
        rate for every event, the figure to beat.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    y = np.asarray(is_fraud).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"score {s.shape} and is_fraud {y.shape} differ in shape")
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    frauds = int(y.sum())
    out: dict[str, Any] = {"method": None, "rows": len(y), "frauds": frauds}
    if frauds < min_frauds or frauds == len(y):
        out["why"] = f"{frauds} frauds in {len(y)} held-out events: too few to fit a map"
        out["reliability"] = _reliability(s, y, None, edges)
        return out
    fitted = _isotonic(s, y)
    knots = _knots(fitted)
    out.update(method="isotonic", map=knots, reliability=_reliability(s, y, knots, edges))
    out["brier"] = _round(float(np.mean((_out_of_fold(s, y) - y) ** 2)))
    out["brier_base_rate"] = _round(float(np.mean((y.mean() - y) ** 2)))
    return out


def probability(calibration: dict[str, Any], score: np.ndarray) -> np.ndarray:
    """Fraud probability of each score through a map from :func:`fit_calibration` (NaN without one)."""
    s = np.asarray(score, dtype=np.float64)
    knots = calibration.get("map")
    if not knots:
        return np.full(s.shape, np.nan)
    # Knots come in pairs at each step (end of one level, start of the next): linear between them.
    return np.interp(s, knots["score"], knots["probability"])


def _isotonic(s: np.ndarray, y: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(s, y)


def _knots(fitted: IsotonicRegression) -> dict[str, list[float]]:
    """The fitted step function's knots, without the interior points of flat stretches."""
    x, p = np.asarray(fitted.X_thresholds_), np.asarray(fitted.y_thresholds_)
    keep = np.ones(len(x), dtype=bool)
    keep[1:-1] = (p[1:-1] != p[:-2]) | (p[1:-1] != p[2:])
    return {"score": [_round(v) for v in x[keep]], "probability": [_round(v) for v in p[keep]]}


def _out_of_fold(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each event's probability from a map fitted without its fold (contiguous folds; folds without fraud skipped)."""
    predicted = np.full(len(s), float(y.mean()))
    for fold in np.array_split(np.arange(len(s)), _FOLDS):
        rest = np.ones(len(s), dtype=bool)
        rest[fold] = False
        if 0 < y[rest].sum() < rest.sum():
            predicted[fold] = _isotonic(s[rest], y[rest]).predict(s[fold])
    return predicted


def _reliability(
    s: np.ndarray, y: np.ndarray, knots: dict[str, list[float]] | None, edges: tuple[float, ...]
) -> list[dict[str, float | int | None]]:
    mapped = probability({"map": knots}, s) if knots else None
    bins = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    table: list[dict[str, float | int | None]] = []
    for i in range(len(edges) - 1):
        inside = bins == i
        n = int(inside.sum())
        if not n:
            continue
        table.append({
            "low": _round(edges[i]),
            "high": _round(edges[i + 1]),
            "events": n,
            "mean_score": _round(float(s[inside].mean())),
            "fraud_rate": _round(float(y[inside].mean())),
            "probability": _round(float(mapped[inside].mean())) if mapped is not None else None,
        })  # fmt: skip
    return table


def _round(value: float) -> float:
    """Six significant digits: the metadata stays readable and small."""
    return float(f"{float(value):.6g}")
