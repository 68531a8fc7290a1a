"""Features of one transaction against its card's history: the same code trains and serves.

A feature row is computed *before* the transaction is added to the card's state, so
it describes how the event compares with what came before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from model.behavior import CardBehavior

FEATURE_NAMES: tuple[str, ...] = (
    "log_amt",
    "amt_to_card_mean",
    "amt_zscore",
    "amt_to_card_category_mean",
    "amt_to_category_median",
    "night",
    "hour",
    "log_secs_since_last",
    "count_1h",
    "log_sum_1h",
    "count_24h",
    "log_sum_24h",
    "count_7d",
    "category_share",
    "log_card_history",
    "age",
)
_NO_PREVIOUS_S = 30 * 86_400  # "long ago" for a card's first transaction
_STD_FLOOR = 5.0  # dollars: keeps a z-score finite for cards with near-constant amounts
_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(ts: datetime) -> int:
    return int((ts.replace(tzinfo=None) - _EPOCH).total_seconds())


@dataclass(frozen=True, slots=True)
class Txn:
    """The fields of a transaction the model needs, and where it came from in Kafka."""

    card_token: str
    t: int  # event time, epoch seconds
    amt: float
    category: str
    birth_year: int
    position: tuple[int, int] | None = None  # (partition, offset)
    trans_num: str | None = None  # recognises the same transaction published twice

    @property
    def hour(self) -> int:
        return (self.t // 3600) % 24


def txns_from_columns(
    card_token: Sequence[str],
    event_time_s: Sequence[int],
    amt: Sequence[float],
    category: Sequence[str],
    birth_year: Sequence[int],
    positions: Sequence[tuple[int, int]] | None = None,
    trans_nums: Sequence[str] | None = None,
) -> list[Txn]:
    """Transactions as the model takes them, from one column per field: the one way
    both training (a frame of history) and serving (a micro-batch of events) build them.

    ``event_time_s`` is epoch seconds; ``positions`` (Kafka partition, offset) and
    ``trans_nums`` are known when serving, where they make redelivery harmless.
    """
    n = len(card_token)
    columns = zip(
        card_token,
        event_time_s,
        amt,
        category,
        birth_year,
        [None] * n if positions is None else positions,
        [None] * n if trans_nums is None else trans_nums,
        strict=True,
    )
    return [Txn(*row) for row in columns]


def is_night(hour: int) -> bool:
    """22:00 to 03:59: most fraud in this data happens then."""
    return hour >= 22 or hour < 4


def feature_row(state: CardBehavior, txn: Txn, category_medians: Mapping[str, float]) -> list[float]:
    amt = txn.amt
    hour = txn.hour
    if state.count:
        card_mean = state.mean
        zscore = (amt - state.mean) / max(state.std, _STD_FLOOR)
        cat_mean = state.category_means.get(txn.category, card_mean)
        since_last = max(txn.t - (state.last_seen or txn.t), 0)
    else:
        card_mean, zscore, cat_mean, since_last = amt, 0.0, amt, _NO_PREVIOUS_S
    n_1h, c_1h, n_24h, c_24h, n_7d = state.windows(txn.t)
    return [
        math.log1p(amt),
        (amt + 1.0) / (card_mean + 1.0),
        zscore,
        (amt + 1.0) / (cat_mean + 1.0),
        (amt + 1.0) / (category_medians.get(txn.category, amt) + 1.0),
        1.0 if is_night(hour) else 0.0,
        float(hour),
        math.log1p(since_last),
        float(n_1h),
        math.log1p(c_1h / 100),
        float(n_24h),
        math.log1p(c_24h / 100),
        float(n_7d),
        state.category_counts.get(txn.category, 0) / state.count if state.count else 0.0,
        math.log1p(state.count),
        float(txn.t // 31_557_600 + 1970 - txn.birth_year),
    ]


def featurize(
    txns: Iterable[Txn],
    states: dict[str, CardBehavior],
    category_medians: Mapping[str, float],
) -> np.ndarray:
    """Feature rows for ``txns`` in order, applying each to its card's state.

    ``states`` is updated in place (missing cards start empty). A transaction whose
    Kafka position is at or below its card's watermark was applied before a
    restart, and one whose trans_num the card saw in the last 7 days was published
    twice: either still gets a feature row, but is not applied again.
    """
    rows = []
    for txn in txns:
        state = states.get(txn.card_token)
        if state is None:
            state = states[txn.card_token] = CardBehavior()
        rows.append(feature_row(state, txn, category_medians))
        if txn.position is None or not state.already_applied(*txn.position):
            state.apply(txn.t, txn.amt, txn.category, txn.position, txn.trans_num)
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
