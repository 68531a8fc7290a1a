"""What a replay has done so far, and the part of its progress bar that says it."""

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


def progress_postfix(stats: ReplayStats) -> str:
    """Rows sent and rejected, speed and event clock: what a progress bar over the file's bytes
    (its share and ETA) does not show."""
    clock = stats.last_event.strftime("%Y-%m-%d %H:%M") if stats.last_event else "-"
    return (f"{stats.accepted:,} sent, {stats.rejected_rows:,} rejected, {stats.rows_per_s:,.0f} rows/s, "
            f"event clock {clock}")  # fmt: skip
