"""Features of one transaction against its card's history: the same code trains and serves.

A feature row is computed *before* the transaction is added to the card's state, so
it describes how the event compares with what came before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from model.behavior import CardBehavior, observe_then_apply

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
EPOCH = datetime(1970, 1, 1)
# Events; a batch this small costs less one event at a time in Python than through pandas,
# whose calls cost ~0.1 ms each whatever the size (the scorer sees such batches at low rates).
SMALL_BATCH = 64


def epoch_seconds(ts: datetime) -> int:
    return int((ts.replace(tzinfo=None) - EPOCH).total_seconds())


def event_time_of(seconds: float) -> datetime:
    """The event time (naive, like the dataset's clock) of ``seconds`` from :func:`epoch_seconds`."""
    return EPOCH + timedelta(seconds=seconds)


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

    def __post_init__(self) -> None:  # one dict lookup per category of a batch
        table = {
            c: (self.median[c], self.log_mean.get(c, self.default_log_mean), self.log_std.get(c, self.default_log_std))
            for c in self.median
        }
        object.__setattr__(self, "_table", table)

    def lookup(self, category: str, amt: float) -> tuple[float, float, float]:
        """(median, log mean, log std) of ``category``."""
        found = self._table.get(category)
        return found if found is not None else (amt, self.default_log_mean, self.default_log_std)

    def lookup_many(self, category: Sequence[str], amt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lookup` of each event: columns of median, log mean and log std, one look-up per category
        (a small batch: one per event, cheaper than pandas' factorizing)."""
        if len(category) <= SMALL_BATCH:
            unseen = (self.default_log_mean, self.default_log_std)
            rows = [self._table.get(c) or (a, *unseen) for c, a in zip(category, amt.tolist(), strict=True)]
            median, log_mean, log_std = np.array(rows, dtype=np.float64).reshape(-1, 3).T
            return median, log_mean, log_std
        codes, uniques = pd.factorize(np.asarray(category, dtype=object))
        found = [self._table.get(c) for c in uniques]
        fallback = (0.0, self.default_log_mean, self.default_log_std)  # median: the event's amount, below
        table = np.array([f if f is not None else fallback for f in found], dtype=np.float64).reshape(-1, 3)
        median, log_mean, log_std = table[codes].T
        unseen = np.array([f is None for f in found], dtype=bool)[codes]
        if unseen.any():
            median = np.where(unseen, amt, median)
        return median, log_mean, log_std

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


def _log1p(values: np.ndarray) -> np.ndarray:
    """``math.log1p`` of each value: numpy's own may take a SIMD path that differs in the last bit on
    some CPUs, and a feature must be the same bits whichever machine computes it."""
    return np.fromiter(map(math.log1p, values.tolist()), dtype=np.float64, count=len(values))


def _features(
    prior: np.ndarray,
    t: np.ndarray,
    amt: np.ndarray,
    category: Sequence[str],
    birth_year: np.ndarray,
    city_pop: np.ndarray,
    norms: CategoryNorms,
) -> np.ndarray:
    """``FEATURE_NAMES`` of each event from its card's state before it (``PRIOR_STATE_COLUMNS``), a column
    at a time: the float operations of the per-event formulas, in the same order, so the same bits."""
    (count, mean, m2, max_amt, sum_cents, night_count, first_seen, last_seen, category_count, category_mean,
     category_m2, n_1h, c_1h, n_24h, c_24h, night_24h, n_7d, c_7d) = prior.T  # fmt: skip
    seen = count > 0  # the card has history: otherwise the event is compared with itself
    some = np.maximum(count, 1.0)  # a divisor where ``seen`` picks the result
    std = np.where(count > 1, np.sqrt(m2 / np.maximum(count - 1, 1.0)), 0.0)
    zscore = np.where(seen, (amt - mean) / np.maximum(std, _STD_FLOOR), 0.0)
    card_mean = np.where(seen, mean, amt)
    in_category = category_count > 0
    category_std = np.where(category_count > 1, np.sqrt(category_m2 / np.maximum(category_count - 1, 1.0)), 0.0)
    category_z = np.where(in_category, (amt - category_mean) / np.maximum(category_std, _STD_FLOOR), zscore)
    category_mean = np.where(in_category, category_mean, card_mean)
    since_last = np.where(seen, np.maximum(t - last_seen, 0), _NO_PREVIOUS_S)
    age_s = np.where(seen, np.maximum(t - first_seen, 0), 0.0)
    days = np.maximum(age_s / 86_400, _MIN_DAYS)
    daily_rate = np.where(seen, count / days, 0.0)
    daily_spend = np.where(seen, sum_cents / 100 / days, 0.0)
    median, log_mean, log_std = norms.lookup_many(category, amt)
    log_amt = _log1p(amt)
    hour = (t // 3600) % 24
    X = np.empty((len(amt), len(FEATURE_NAMES)), dtype=np.float64)
    X[:, 0] = log_amt
    X[:, 1] = (amt + 1.0) / (card_mean + 1.0)
    X[:, 2] = zscore
    X[:, 3] = (amt + 1.0) / (np.where(seen, max_amt, amt) + 1.0)
    X[:, 4] = (amt + 1.0) / (category_mean + 1.0)
    X[:, 5] = category_z
    X[:, 6] = (amt + 1.0) / (median + 1.0)
    X[:, 7] = (log_amt - log_mean) / log_std
    X[:, 8] = (hour >= 22) | (hour < 4)  # is_night
    X[:, 9] = hour
    X[:, 10] = (t // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    X[:, 11] = np.where(seen, night_count / some, 0.0)
    X[:, 12] = _log1p(since_last)
    X[:, 13] = n_1h
    X[:, 14] = _log1p(c_1h / 100)
    X[:, 15] = n_24h
    X[:, 16] = _log1p(c_24h / 100)
    X[:, 17] = night_24h
    X[:, 18] = n_7d
    X[:, 19] = _log1p(c_7d / 100)
    X[:, 20] = (n_24h + 1.0) / (daily_rate + 1.0)
    X[:, 21] = (c_24h / 100 + 1.0) / (daily_spend + 1.0)
    X[:, 22] = np.where(seen, category_count / some, 0.0)
    X[:, 23] = seen & ~in_category  # category_new
    X[:, 24] = _log1p(count)
    X[:, 25] = _log1p(age_s / 86_400)
    X[:, 26] = t // 31_557_600 + 1970 - birth_year
    X[:, 27] = _log1p(np.maximum(city_pop, 0))
    return X


def apply_txn(state: CardBehavior, txn: Txn) -> None:
    """Add ``txn`` to its card's state unless its Kafka position says it was applied before a restart:
    the one update serving makes, and ``txguard rebuild-behavior`` repeats from PostgreSQL."""
    if txn.position is None or not state.already_applied(*txn.position):
        state.apply(txn.t, txn.amt, txn.category, txn.position, txn.trans_num)


def featurize(
    txns: Iterable[Txn],
    states: MutableMapping[str, CardBehavior],
    norms: CategoryNorms,
) -> np.ndarray:
    """Feature rows for ``txns`` in order, applying each to its card's state.

    ``states`` is updated in place (missing cards start empty). A transaction whose
    Kafka position is at or below its card's watermark was applied before a
    restart, and one whose trans_num the card saw in the last 7 days was published
    twice: either still gets a feature row, but is not applied again. Training's form
    of :func:`featurize_columns`, which it calls: one code for training and serving.
    """
    txns = list(txns)
    return featurize_columns(
        [x.card_token for x in txns],
        [x.t for x in txns],
        [x.amt for x in txns],
        [x.category for x in txns],
        [x.birth_year for x in txns],
        [x.city_pop for x in txns],
        [x.position for x in txns],
        [x.trans_num for x in txns],
        states,
        norms,
    )


def featurize_columns(
    card_token: Sequence[str],
    event_time_s: Sequence[int],
    amt: Sequence[float],
    category: Sequence[str],
    birth_year: Sequence[int],
    city_pop: Sequence[int],
    positions: Sequence[tuple[int, int] | None],
    trans_nums: Sequence[str | None],
    states: MutableMapping[str, CardBehavior],
    norms: CategoryNorms,
) -> np.ndarray:
    """:func:`featurize` of the transactions :func:`txns_from_columns` would make of these columns,
    without making them: the same rows and the same state updates, for serving's micro-batches.

    The per-card part is sequential (each event sees its card after the card's earlier events):
    :func:`model.behavior.observe_then_apply` records it in one pass; the features are then
    computed from those records a column at a time.
    """
    prior = observe_then_apply(states, card_token, event_time_s, amt, category, positions, trans_nums)
    return _features(
        prior,
        np.asarray(event_time_s, dtype=np.int64),
        np.asarray(amt, dtype=np.float64),
        category,
        np.asarray(birth_year, dtype=np.int64),
        np.asarray(city_pop, dtype=np.int64),
        norms,
    )
