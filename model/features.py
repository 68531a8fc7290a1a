"""Features of one transaction against its card's history: the same code trains and serves.

A feature row is computed *before* the transaction is added to the card's state, so
it describes how the event compares with what came before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from model.behavior import CardBehavior

FEATURE_NAMES: tuple[str, ...] = (
    # amount: against the card, the card in this category, and the category's norms
    "log_amt",
    "amt_to_card_mean",  # (amt + 1) / (card mean + 1)
    "amt_zscore",  # (amt - card mean) / max(card std, $5)
    "amt_to_card_max",  # (amt + 1) / (largest amount seen on the card + 1)
    "amt_to_card_category_mean",  # (amt + 1) / (card's mean in this category + 1)
    "amt_card_category_zscore",  # (amt - card's category mean) / max(card's category std, $5)
    "amt_to_category_median",  # (amt + 1) / (training median of the category + 1)
    "amt_category_logz",  # (log1p(amt) - category mean) / category std, training norms
    # time of day and week
    "night",
    "hour",
    "weekday",  # Monday = 0, event clock
    "card_night_share",  # share of the card's earlier transactions at night
    # velocity
    "log_secs_since_last",
    "count_1h",
    "log_sum_1h",
    "count_24h",
    "log_sum_24h",
    "night_count_24h",
    "count_7d",
    "log_sum_7d",
    "count_24h_to_rate",  # (count_24h + 1) / (card's mean transactions per day + 1)
    "sum_24h_to_daily_spend",  # (sum_24h + 1) / (card's mean spend per day + 1)
    # card profile and history
    "category_share",
    "category_new",  # 1 if the card has history but never used this category
    "log_card_history",
    "log_card_age_days",
    "age",
    "log_city_pop",
)
_NO_PREVIOUS_S = 30 * 86_400  # "long ago" for a card's first transaction
_STD_FLOOR = 5.0  # dollars: keeps a z-score finite for cards with near-constant amounts
_MIN_DAYS = 1.0  # a card's observed span counts as at least a day when computing its daily rates
_LOG_STD_FLOOR = 0.1
_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(ts: datetime) -> int:
    return int((ts.replace(tzinfo=None) - _EPOCH).total_seconds())


def event_time_of(seconds: float) -> datetime:
    """The event time (naive, like the dataset's clock) of ``seconds`` from :func:`epoch_seconds`."""
    return _EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Txn:
    """The fields of a transaction the model needs, and where it came from in Kafka."""

    card_token: str
    t: int  # event time, epoch seconds
    amt: float
    category: str
    birth_year: int
    city_pop: int = 0  # the cardholder's home city population
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
    city_pop: Sequence[int],
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
        city_pop,
        [None] * n if positions is None else positions,
        [None] * n if trans_nums is None else trans_nums,
        strict=True,
    )
    return [Txn(*row) for row in columns]


def is_night(hour: int) -> bool:
    """22:00 to 03:59: most fraud in this data happens then."""
    return hour >= 22 or hour < 4


@dataclass(frozen=True)
class CategoryNorms:
    """Amount norms per merchant category over the training window: model data, not card state.

    ``median`` of the amounts and mean / std of ``log1p(amount)``; a category unseen
    in training falls back to the event's own amount (ratio 1) and the overall log
    mean / std.
    """

    median: dict[str, float]
    log_mean: dict[str, float]
    log_std: dict[str, float]
    default_log_mean: float = 4.0
    default_log_std: float = 1.0
    _table: dict[str, tuple[float, float, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # one dict lookup per event on the hot path
        table = {
            c: (self.median[c], self.log_mean.get(c, self.default_log_mean), self.log_std.get(c, self.default_log_std))
            for c in self.median
        }
        object.__setattr__(self, "_table", table)

    def lookup(self, category: str, amt: float) -> tuple[float, float, float]:
        """(median, log mean, log std) of ``category``."""
        found = self._table.get(category)
        return found if found is not None else (amt, self.default_log_mean, self.default_log_std)

    @classmethod
    def fit(cls, category: pd.Series, amt: pd.Series) -> CategoryNorms:
        amounts = amt.astype(float).to_numpy()
        logs = pd.Series(np.log1p(amounts))
        keys = category.to_numpy()
        by_category = logs.groupby(keys)
        overall_std = float(logs.std()) if len(logs) > 1 else 1.0
        return cls(
            median={str(k): float(v) for k, v in pd.Series(amounts).groupby(keys).median().items()},
            log_mean={str(k): float(v) for k, v in by_category.mean().items()},
            log_std={str(k): max(float(v), _LOG_STD_FLOOR) for k, v in by_category.std().fillna(1.0).items()},
            default_log_mean=float(logs.mean()) if len(logs) else 4.0,
            default_log_std=max(overall_std if math.isfinite(overall_std) else 1.0, _LOG_STD_FLOOR),
        )

    def to_dict(self) -> dict:
        return {
            "median": self.median,
            "log_mean": self.log_mean,
            "log_std": self.log_std,
            "default_log_mean": self.default_log_mean,
            "default_log_std": self.default_log_std,
        }


def feature_row(state: CardBehavior, txn: Txn, norms: CategoryNorms) -> list[float]:
    """``FEATURE_NAMES`` of ``txn`` against its card's state before it."""
    return _feature_row(state, txn.t, txn.amt, txn.category, txn.birth_year, txn.city_pop, norms)


def _feature_row(
    state: CardBehavior, t: int, amt: float, category: str, birth_year: int, city_pop: int, norms: CategoryNorms
) -> list[float]:
    """:func:`feature_row` of one transaction given as its fields (no :class:`Txn` made on the hot path)."""
    hour = (t // 3600) % 24
    n = state.count
    if n:
        card_mean = state.mean
        zscore = (amt - card_mean) / max(state.std, _STD_FLOOR)
        n_category = state.category_counts.get(category, 0)
        if n_category:
            category_mean = state.category_means[category]
            category_z = (amt - category_mean) / max(state.category_std(category), _STD_FLOOR)
        else:
            category_mean, category_z = card_mean, zscore
        last_seen = state.last_seen if state.last_seen is not None else t
        first_seen = state.first_seen if state.first_seen is not None else t
        since_last = max(t - last_seen, 0)
        age_s = max(t - first_seen, 0)
        days = max(age_s / 86_400, _MIN_DAYS)
        daily_rate = n / days
        daily_spend = state.sum_cents / 100 / days
        night_share = state.night_count / n
        max_amt = state.max_amt
        category_share = n_category / n
        category_new = 0.0 if n_category else 1.0
    else:
        card_mean, zscore, category_mean, category_z, since_last = amt, 0.0, amt, 0.0, _NO_PREVIOUS_S
        age_s, daily_rate, daily_spend, night_share, max_amt = 0, 0.0, 0.0, 0.0, amt
        category_share = category_new = 0.0
    n_1h, c_1h, n_24h, c_24h, night_24h, n_7d, c_7d = state.windows(t)
    median, log_mean, log_std = norms.lookup(category, amt)
    log_amt = math.log1p(amt)
    return [
        log_amt,
        (amt + 1.0) / (card_mean + 1.0),
        zscore,
        (amt + 1.0) / (max_amt + 1.0),
        (amt + 1.0) / (category_mean + 1.0),
        category_z,
        (amt + 1.0) / (median + 1.0),
        (log_amt - log_mean) / log_std,
        1.0 if is_night(hour) else 0.0,
        float(hour),
        float((t // 86_400 + 3) % 7),  # 1970-01-01 was a Thursday
        night_share,
        math.log1p(since_last),
        float(n_1h),
        math.log1p(c_1h / 100),
        float(n_24h),
        math.log1p(c_24h / 100),
        float(night_24h),
        float(n_7d),
        math.log1p(c_7d / 100),
        (n_24h + 1.0) / (daily_rate + 1.0),
        (c_24h / 100 + 1.0) / (daily_spend + 1.0),
        category_share,
        category_new,
        math.log1p(n),
        math.log1p(age_s / 86_400),
        float(t // 31_557_600 + 1970 - birth_year),
        math.log1p(max(city_pop, 0)),
    ]


def apply_txn(state: CardBehavior, txn: Txn) -> None:
    """Add ``txn`` to its card's state unless its Kafka position says it was applied before a restart:
    the one update serving makes, and ``txguard rebuild-behavior`` repeats from PostgreSQL."""
    if txn.position is None or not state.already_applied(*txn.position):
        state.apply(txn.t, txn.amt, txn.category, txn.position, txn.trans_num)


def featurize(
    txns: Iterable[Txn],
    states: dict[str, CardBehavior],
    norms: CategoryNorms,
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
        rows.append(feature_row(state, txn, norms))
        apply_txn(state, txn)
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))


def featurize_columns(
    card_token: Sequence[str],
    event_time_s: Sequence[int],
    amt: Sequence[float],
    category: Sequence[str],
    birth_year: Sequence[int],
    city_pop: Sequence[int],
    positions: Sequence[tuple[int, int]],
    trans_nums: Sequence[str],
    states: dict[str, CardBehavior],
    norms: CategoryNorms,
) -> np.ndarray:
    """:func:`featurize` of the transactions :func:`txns_from_columns` would make of these columns,
    without making them: the same rows and the same state updates, for serving's micro-batches."""
    rows = []
    for token, t, a, c, b, p, position, trans_num in zip(
        card_token, event_time_s, amt, category, birth_year, city_pop, positions, trans_nums, strict=True
    ):
        state = states.get(token)
        if state is None:
            state = states[token] = CardBehavior()
        rows.append(_feature_row(state, t, a, c, b, p, norms))
        if not state.already_applied(*position):  # apply_txn, inlined
            state.apply(t, a, c, position, trans_num)
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
