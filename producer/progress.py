"""What a replay has done so far, and the one-line progress report of it."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class ReplayStats:
    accepted: int = 0
    rejected_rows: int = 0
    rejected: Counter = field(default_factory=Counter)  # per reason; a row may have several
    skipped: int = 0  # outside --start/--end/--limit or before --resume
    masked_text: int = 0  # merchant or city values published with a card number in them masked
    labels: int = 0
    delivery_errors: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    last_line: int = 0
    accepted_in_block: int = 0  # progress inside the block being sent
    bytes_read: int = 0
    total_bytes: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def rows_per_s(self) -> float:
        done = self.accepted + self.accepted_in_block + self.rejected_rows
        return done / max(time.monotonic() - self.started, 1e-9)


def progress_line(stats: ReplayStats, now: float | None = None) -> str:
    """Share of the file read, rows sent and rejected, speed, event clock and ETA.

    ``now`` is the ``time.monotonic()`` reading the ETA is computed at (default: now).
    """
    total = stats.total_bytes or 0
    done = stats.bytes_read
    eta = ""
    if total and done:
        elapsed = (time.monotonic() if now is None else now) - stats.started
        eta = f"  ETA {max(elapsed * (total - done) / done, 0):5.0f}s"
    clock = stats.last_event.strftime("%Y-%m-%d %H:%M") if stats.last_event else "-"
    pct = f"{100 * done / total:5.1f}%" if total else ""
    return (f"{pct} {stats.accepted:>9,} sent {stats.rejected_rows:>6,} rejected "
            f"{stats.rows_per_s:>9,.0f} rows/s  event clock {clock}{eta}")  # fmt: skip
