"""Summary statistics of a transaction frame, generated or real."""

from __future__ import annotations

from typing import Any

import numpy as np

from producer.generator.clock import SECONDS_PER_DAY


def describe(df: Any) -> dict[str, Any]:
    """Summary statistics to compare generated and real transaction frames.

    Parameters
    ----------
    df
        A pandas DataFrame with at least ``trans_date_trans_time``, ``cc_num``,
        ``category``, ``amt`` and ``is_fraud`` (as read from either Kaggle layout).

    Returns
    -------
    dict
        ``rows``, ``cards``, ``span_days``, ``fraud_rate``, ``fraud_night_share`` and
        ``legit_night_share`` (night: 22:00-03:59), ``median_fraud_amt_by_category``,
        ``tx_per_card_day_median`` (per card: transactions / span of the frame in days)
        and ``tx_per_active_card_day_median`` (per card and calendar day with activity).
    """
    import pandas as pd

    when = pd.to_datetime(df["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S")
    fraud = df["is_fraud"].astype(int).to_numpy() == 1
    hour = when.dt.hour.to_numpy()
    night = (hour >= 22) | (hour < 4)
    span_days = max((when.max() - when.min()).total_seconds() / SECONDS_PER_DAY, 1.0 / 24)
    card = df["cc_num"].astype(str)
    per_card = card.value_counts()
    per_card_day = pd.Series(1, index=df.index).groupby([card, when.dt.date]).size()
    amt = pd.to_numeric(df["amt"])
    by_category = amt[fraud].groupby(df["category"][fraud]).median().round(2)

    def share(mask: np.ndarray) -> float:
        return float(night[mask].mean()) if mask.any() else float("nan")

    return {
        "rows": len(df),
        "cards": int(per_card.size),
        "span_days": round(span_days, 3),
        "fraud_rate": float(fraud.mean()) if len(df) else float("nan"),
        "fraud_night_share": share(fraud),
        "legit_night_share": share(~fraud),
        "median_fraud_amt_by_category": {str(k): float(v) for k, v in by_category.items()},
        "tx_per_card_day_median": float((per_card / span_days).median()),
        "tx_per_active_card_day_median": float(per_card_day.median()),
    }
