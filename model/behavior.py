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

    def windows(self, now: int) -> tuple[int, int, int, int, int]:
        """(count_1h, cents_1h, count_24h, cents_24h, count_7d) in one pass: the hot path."""
        h1, d1, d7 = now - WINDOWS_S["1h"], now - WINDOWS_S["24h"], now - WINDOWS_S["7d"]
        n1 = c1 = n24 = c24 = future = 0
        for t, c in reversed(self.recent):
            if t <= d1:
                break
            if t > now:
                future += 1
                continue
            n24 += 1
            c24 += c
            if t > h1:
                n1 += 1
                c1 += c
        n7 = len(self.recent) - future
        for t, _ in self.recent:  # entries older than 7 d sit at the front, if any
            if t > d7:
                break
            n7 -= 1
        return n1, c1, n24, c24, n7

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
        self.min_amt = min(self.min_amt, amt)
        self.max_amt = max(self.max_amt, amt)
        self.first_seen = t if self.first_seen is None else min(self.first_seen, t)
        if self.last_seen is None or t >= self.last_seen:
            self.last_seen = t
            self.last_category = category
        n = self.category_counts.get(category, 0) + 1
        self.category_counts[category] = n
        old = self.category_means.get(category, 0.0)
        self.category_means[category] = old + (amt - old) / n
        self.recent.append((t, cents))
        if trans_id is not None:
            self.recent_ids[trans_id] = t
        horizon = self.last_seen - _LONGEST_WINDOW_S
        while self.recent and self.recent[0][0] <= horizon:
            self.recent.popleft()
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
        }

    @classmethod
    def from_dict(cls, d: dict) -> CardBehavior:
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
            recent=deque((int(t), int(c)) for t, c in d["recent"]),
            recent_ids={k: int(v) for k, v in d.get("recent_ids", {}).items()},
            watermark=None if d.get("watermark") is None else (int(d["watermark"][0]), int(d["watermark"][1])),
            version=int(d.get("version", 0)),
        )
