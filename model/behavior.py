"""Per-card behaviour state: exact running aggregates, updated one event at a time.

Pure: no clients, no clocks. The scorer keeps one :class:`CardBehavior` per card,
persists it to DynamoDB, and the batch recomputation in tests uses the same code.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

WINDOWS_S = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400}
_LONGEST_WINDOW_S = max(WINDOWS_S.values())
_NIGHT_START_S, _NIGHT_END_S = 22 * 3600, 4 * 3600  # 22:00-03:59, seconds of the day


def is_night_second(t: int) -> bool:
    """Whether epoch second ``t`` falls between 22:00 and 03:59 (the event clock's day)."""
    s = t % 86_400
    return s >= _NIGHT_START_S or s < _NIGHT_END_S


@dataclass(slots=True)
class CardBehavior:
    """Running aggregates of one card's transactions.

    Amounts are kept in integer cents where they are summed, so totals are exact;
    mean and variance use Welford's update. ``recent`` holds the (time, cents) of the
    last 7 days in event time, enough for exact 1 h / 24 h / 7 d windows.
    ``watermark`` is the (partition, offset) of the last applied Kafka message: a
    redelivered message at or below it is not applied twice. ``recent_ids`` catches
    the other kind of repeat: the same transaction published again (a producer
    resending after a crash) at a new offset.

    ``category_m2`` (Welford's M2 per category) gives the card's own spread in a
    category and ``night_count`` its night habit. Both were added later: a stored
    state without them loads with empty values. ``recent_cents`` is derived (the
    cents in ``recent``), recomputed on load and never stored.
    """

    count: int = 0
    sum_cents: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min_amt: float = math.inf
    max_amt: float = 0.0
    first_seen: int | None = None
    last_seen: int | None = None
    last_category: str | None = None
    category_counts: dict[str, int] = field(default_factory=dict)
    category_means: dict[str, float] = field(default_factory=dict)
    recent: deque[tuple[int, int]] = field(default_factory=deque)
    recent_ids: dict[str, int] = field(default_factory=dict)  # trans_num prefix -> time, same 7 days
    watermark: tuple[int, int] | None = None
    version: int = 0  # bumped on every persisted write; fences a stale writer
    category_m2: dict[str, float] = field(default_factory=dict)
    night_count: int = 0
    recent_cents: int = 0  # derived: sum of the cents in ``recent``, for an O(1) 7-day sum

    def category_std(self, category: str) -> float:
        n = self.category_counts.get(category, 0)
        return math.sqrt(self.category_m2.get(category, 0.0) / (n - 1)) if n > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def already_applied(self, partition: int, offset: int) -> bool:
        return self.watermark is not None and self.watermark[0] == partition and offset <= self.watermark[1]

    def window(self, now: int, seconds: int) -> tuple[int, int]:
        """Count and summed cents of the transactions in (now - seconds, now]."""
        count = cents = 0
        for t, c in reversed(self.recent):
            if t <= now - seconds:
                break
            if t <= now:
                count += 1
                cents += c
        return count, cents

    def windows(self, now: int) -> tuple[int, int, int, int, int, int, int]:
        """(count_1h, cents_1h, count_24h, cents_24h, night_count_24h, count_7d, cents_7d) at ``now``.

        The reference for :func:`observe_then_apply`, which computes the same inline for a batch.

        One scan back over the last 24 h; the 7-day totals are the running totals
        minus the entries after ``now`` and the stale ones (older than 7 days, kept
        at the front until a later event prunes them).
        """
        h1, d1, d7 = now - WINDOWS_S["1h"], now - WINDOWS_S["24h"], now - WINDOWS_S["7d"]
        n1 = c1 = n24 = c24 = night24 = future_n = future_c = 0
        for t, c in reversed(self.recent):
            if t <= d1:
                break
            if t > now:
                future_n += 1
                future_c += c
                continue
            n24 += 1
            c24 += c
            s = t % 86_400
            if s >= _NIGHT_START_S or s < _NIGHT_END_S:
                night24 += 1
            if t > h1:
                n1 += 1
                c1 += c
        n7 = len(self.recent) - future_n
        c7 = self.recent_cents - future_c
        for t, c in self.recent:  # entries older than 7 d sit at the front, if any
            if t > d7:
                break
            n7 -= 1
            c7 -= c
        return n1, c1, n24, c24, night24, n7, c7

    def apply(
        self,
        t: int,
        amt: float,
        category: str,
        position: tuple[int, int] | None = None,
        trans_num: str | None = None,
    ) -> bool:
        """Add one transaction at epoch second ``t``; False if it was already counted."""
        if position is not None:
            self.watermark = position
        trans_id = None if trans_num is None else trans_num[:16]
        if trans_id is not None and trans_id in self.recent_ids:
            return False
        cents = round(amt * 100)
        self.count += 1
        self.sum_cents += cents
        delta = amt - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (amt - self.mean)
        if amt < self.min_amt:
            self.min_amt = amt
        if amt > self.max_amt:
            self.max_amt = amt
        self.first_seen = t if self.first_seen is None else min(self.first_seen, t)
        if self.last_seen is None or t >= self.last_seen:
            self.last_seen = t
            self.last_category = category
        n = self.category_counts.get(category, 0) + 1
        self.category_counts[category] = n
        old = self.category_means.get(category, 0.0)
        new = old + (amt - old) / n
        self.category_means[category] = new
        self.category_m2[category] = self.category_m2.get(category, 0.0) + (amt - old) * (amt - new) if n > 1 else 0.0
        if is_night_second(t):
            self.night_count += 1
        self.recent.append((t, cents))
        self.recent_cents += cents
        if trans_id is not None:
            self.recent_ids[trans_id] = t
        horizon = self.last_seen - _LONGEST_WINDOW_S
        while self.recent and self.recent[0][0] <= horizon:
            self.recent_cents -= self.recent.popleft()[1]
        while self.recent_ids and (oldest := next(iter(self.recent_ids))) and self.recent_ids[oldest] <= horizon:
            del self.recent_ids[oldest]
        return True

    # Plain-data form, for storage. Kept here so every store shares one shape.
    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "sum_cents": self.sum_cents,
            "mean": self.mean,
            "m2": self.m2,
            "min_amt": None if self.count == 0 else self.min_amt,
            "max_amt": self.max_amt,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_category": self.last_category,
            "category_counts": dict(self.category_counts),
            "category_means": dict(self.category_means),
            "recent": [list(x) for x in self.recent],
            "recent_ids": dict(self.recent_ids),
            "watermark": None if self.watermark is None else list(self.watermark),
            "version": self.version,
            "category_m2": dict(self.category_m2),
            "night_count": self.night_count,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CardBehavior:
        recent = deque((int(t), int(c)) for t, c in d["recent"])
        return cls(
            count=int(d["count"]),
            sum_cents=int(d["sum_cents"]),
            mean=float(d["mean"]),
            m2=float(d["m2"]),
            min_amt=math.inf if d.get("min_amt") is None else float(d["min_amt"]),
            max_amt=float(d["max_amt"]),
            first_seen=None if d.get("first_seen") is None else int(d["first_seen"]),
            last_seen=None if d.get("last_seen") is None else int(d["last_seen"]),
            last_category=d.get("last_category"),
            category_counts={k: int(v) for k, v in d["category_counts"].items()},
            category_means={k: float(v) for k, v in d["category_means"].items()},
            recent=recent,
            recent_ids={k: int(v) for k, v in d.get("recent_ids", {}).items()},
            watermark=None if d.get("watermark") is None else (int(d["watermark"][0]), int(d["watermark"][1])),
            version=int(d.get("version", 0)),
            category_m2={k: float(v) for k, v in d.get("category_m2", {}).items()},
            night_count=int(d.get("night_count", 0)),
            recent_cents=sum(c for _, c in recent),
        )


PRIOR_STATE_COLUMNS: tuple[str, ...] = (
    "count", "mean", "m2", "max_amt", "sum_cents", "night_count", "first_seen", "last_seen",
    "category_count", "category_mean", "category_m2",
    "count_1h", "cents_1h", "count_24h", "cents_24h", "night_count_24h", "count_7d", "cents_7d",
)  # fmt: skip
"""What :func:`observe_then_apply` records of each event's card just before the event: the aggregates
(``first_seen`` / ``last_seen`` the event's own time for a card without them), those of the event's
category on the card (0 when none), and :meth:`CardBehavior.windows` at the event's time."""


def observe_then_apply(
    states: MutableMapping[str, CardBehavior],
    card_token: Sequence[str],
    event_time_s: Sequence[int],
    amt: Sequence[float],
    category: Sequence[str],
    positions: Sequence[tuple[int, int] | None],
    trans_nums: Sequence[str | None],
) -> np.ndarray:
    """For each event in order, its card's state just before it (``PRIOR_STATE_COLUMNS``, float64),
    then the event applied to the state as :meth:`CardBehavior.apply` does, unless its position is at
    or below the card's watermark. ``states`` is updated in place; a missing card starts empty.

    The serving hot path. Cards are independent, so the events are taken card by card (each card's
    in their order), with the card's fields in local variables for all of its events, where calling
    :meth:`CardBehavior.windows` and :meth:`CardBehavior.apply` per event would cost twice as much.
    Both stay the reference that the unit tests hold this to, field for field (the same float
    operations in the same order, so the same bits). Every recorded value is an integer below 2**53
    or a float, so the float64 array holds each exactly.
    """
    width = len(PRIOR_STATE_COLUMNS)
    if not len(card_token):
        return np.empty((0, width), dtype=np.float64)
    codes, cards = pd.factorize(np.asarray(card_token, dtype=object))
    order = np.argsort(codes, kind="stable")  # card by card, each card's events in their order
    ends = np.cumsum(np.bincount(codes)).tolist()
    recorded: list[float] = []
    record = recorded.extend
    night_start, night_end, day, hour, week = _NIGHT_START_S, _NIGHT_END_S, 86_400, 3600, _LONGEST_WINDOW_S
    events = order.tolist()
    start = 0
    for token, end in zip(cards.tolist(), ends, strict=True):
        state = states.get(token)
        if state is None:
            state = states[token] = CardBehavior()
        count, sum_cents, mean, m2 = state.count, state.sum_cents, state.mean, state.m2
        min_amt, max_amt, night_count = state.min_amt, state.max_amt, state.night_count
        first_seen, last_seen, last_category = state.first_seen, state.last_seen, state.last_category
        watermark, recent_ids = state.watermark, state.recent_ids
        recent, recent_cents = state.recent, state.recent_cents
        category_counts, category_means, category_m2 = state.category_counts, state.category_means, state.category_m2
        try:
            for i in events[start:end]:
                t, a, c = event_time_s[i], amt[i], category[i]
                category_count = category_counts.get(c, 0)
                # CardBehavior.windows(t), inlined.
                h1, d1 = t - hour, t - day
                n1 = c1 = n24 = c24 = night24 = future_n = future_c = 0
                for u, cents in reversed(recent):
                    if u <= d1:
                        break
                    if u > t:
                        future_n += 1
                        future_c += cents
                        continue
                    n24 += 1
                    c24 += cents
                    s = u % day
                    if s >= night_start or s < night_end:
                        night24 += 1
                    if u > h1:
                        n1 += 1
                        c1 += cents
                n7 = len(recent) - future_n
                c7 = recent_cents - future_c
                if recent and recent[0][0] <= t - week:  # entries older than 7 d sit at the front, if any
                    d7 = t - week
                    for u, cents in recent:
                        if u > d7:
                            break
                        n7 -= 1
                        c7 -= cents
                record((
                    count, mean, m2, max_amt, sum_cents, night_count,
                    t if first_seen is None else first_seen, t if last_seen is None else last_seen,
                    category_count, category_means[c] if category_count else 0.0, category_m2.get(c, 0.0),
                    n1, c1, n24, c24, night24, n7, c7,
                ))  # fmt: skip
                # CardBehavior.apply(t, a, c, position, trans_num) unless already applied, inlined.
                position = positions[i]
                if position is not None:
                    if watermark is not None and watermark[0] == position[0] and position[1] <= watermark[1]:
                        continue
                    watermark = position
                trans_num = trans_nums[i]
                trans_id = None if trans_num is None else trans_num[:16]
                if trans_id is not None and trans_id in recent_ids:
                    continue
                cents = round(a * 100)
                count += 1
                sum_cents += cents
                delta = a - mean
                mean += delta / count
                m2 += delta * (a - mean)
                if a < min_amt:
                    min_amt = a
                if a > max_amt:
                    max_amt = a
                first_seen = t if first_seen is None else min(first_seen, t)
                if last_seen is None or t >= last_seen:
                    last_seen = t
                    last_category = c
                category_count += 1
                category_counts[c] = category_count
                old = category_means.get(c, 0.0)
                new = old + (a - old) / category_count
                category_means[c] = new
                category_m2[c] = category_m2.get(c, 0.0) + (a - old) * (a - new) if category_count > 1 else 0.0
                s = t % day
                if s >= night_start or s < night_end:
                    night_count += 1
                recent.append((t, cents))
                recent_cents += cents
                if trans_id is not None:
                    recent_ids[trans_id] = t
                horizon = last_seen - week
                while recent and recent[0][0] <= horizon:
                    recent_cents -= recent.popleft()[1]
                while recent_ids and (oldest := next(iter(recent_ids))) and recent_ids[oldest] <= horizon:
                    del recent_ids[oldest]
        finally:  # the card's fields as of its last event applied, even if a later one raised
            state.count, state.sum_cents, state.mean, state.m2 = count, sum_cents, mean, m2
            state.min_amt, state.max_amt, state.night_count = min_amt, max_amt, night_count
            state.first_seen, state.last_seen, state.last_category = first_seen, last_seen, last_category
            state.watermark, state.recent_cents = watermark, recent_cents
        start = end
    prior = np.empty((len(events), width), dtype=np.float64)
    prior[order] = np.fromiter(recorded, dtype=np.float64, count=len(recorded)).reshape(-1, width)
    return prior
