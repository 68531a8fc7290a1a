"""Ensemble of the batch and the online detector, thresholds and explanations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.detectors import RISK_FEATURES, Detector, IsolationForestDetector
from model.features import FEATURE_NAMES

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_QUANTILE_GRID = np.linspace(0.0, 1.0, 1001)
_RARE = 0.97  # a feature at or above this training percentile is worth naming


class EmpiricalCDF:
    """Maps a raw detector score to its rank among the training scores, in [0, 1]."""

    def __init__(self, reference: np.ndarray):
        self.quantiles_ = np.quantile(np.asarray(reference, dtype=np.float64), _QUANTILE_GRID)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.quantiles_, _QUANTILE_GRID, left=0.0, right=1.0)


@dataclass(frozen=True, slots=True)
class BatchScores:
    iforest: np.ndarray
    online: np.ndarray
    score: np.ndarray
    flagged: np.ndarray


@dataclass
class Ensemble:
    """Weighted mean of the detectors' calibrated ranks; flags above ``threshold``.

    ``feature_cdfs`` (one per risk feature, from training) say how rare a value is,
    which is what the explanation of an alert reports.
    """

    iforest: IsolationForestDetector
    online: Detector
    iforest_cdf: EmpiricalCDF
    online_cdf: EmpiricalCDF
    threshold: float
    category_medians: dict[str, float]
    feature_cdfs: dict[str, EmpiricalCDF]
    iforest_weight: float = 0.6
    metadata: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "untrained"))

    def combine(self, iforest_raw: np.ndarray, online_raw: np.ndarray) -> np.ndarray:
        w = self.iforest_weight
        return w * self.iforest_cdf(iforest_raw) + (1.0 - w) * self.online_cdf(online_raw)

    def score_batch(self, X: np.ndarray, threshold: float | None = None) -> BatchScores:
        """Score a micro-batch, then let the online detector learn from its normal part.

        Flagged events are kept out of the online detector's learning so an attack
        does not teach it that attacks are normal.
        """
        iforest_raw = self.iforest.score_many(X)
        online_raw = self.online.score_many(X)
        score = self.combine(iforest_raw, online_raw)
        flagged = score >= (self.threshold if threshold is None else threshold)
        self.online.learn_many(X[~flagged])
        return BatchScores(iforest_raw, online_raw, score, flagged)

    def explain(self, x: np.ndarray, amt: float, category: str) -> str:
        """The features of one event that are rarest against training, in words."""
        rarity = sorted(
            ((float(self.feature_cdfs[f](x[_COL[f]])), f) for f in RISK_FEATURES),
            reverse=True,
        )
        said: list[str] = []
        for pct, name in rarity:
            if pct < _RARE or len(said) == 3:
                break
            text = _describe(name, x, amt, category)
            if text and text not in said:
                said.append(text)
        return "; ".join(said)[:500] or "unusual combination of amount, time and recent activity"


def _describe(name: str, x: np.ndarray, amt: float, category: str) -> str | None:
    v = x[_COL[name]]
    match name:
        case "log_amt":
            return f"large amount ${amt:,.2f}"
        case "amt_to_card_mean" | "amt_zscore":
            return f"${amt:,.2f} is {x[_COL['amt_to_card_mean']]:.1f}x this card's average"
        case "amt_to_card_category_mean":
            return f"{v:.1f}x this card's usual {category} amount"
        case "amt_to_category_median":
            return f"{v:.1f}x the typical {category} amount"
        case "night":
            return f"night-time ({int(x[_COL['hour']]):02d}h)"
        case "count_1h" | "log_sum_1h":
            return f"{int(x[_COL['count_1h']]) + 1} transactions within 1 h"
        case "count_24h" | "log_sum_24h":
            return f"{int(x[_COL['count_24h']]) + 1} transactions within 24 h"
    return None
