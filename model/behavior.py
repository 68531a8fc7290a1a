"""Per-card behaviour state: exact running aggregates, updated one event at a time.

Pure: no clients, no clocks. The scorer keeps one :class:`CardBehavior` per card,
persists it to DynamoDB, and the batch recomputation in tests uses the same code.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

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
        """(count_1h, cents_1h, count_24h, cents_24h, night_count_24h, count_7d, cents_7d): the hot path.

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
