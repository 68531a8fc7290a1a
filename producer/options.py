"""What a replay does: its options, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from producer.order import RUN_ROWS


@dataclass
class ReplayOptions:
    speed: float | None = None  # x event time; None with rate None = as fast as possible
    rate: float | None = None  # events per second
    start: datetime | None = None
    end: datetime | None = None
    limit: int | None = None
    labels: bool = True
    label_delay: timedelta = timedelta(days=7)
    resume_after_line: int = 0
    resume_after_key: int | None = None  # a file read sorted: resume after (this event time in ms, the line)
    resume_labels: list = field(default_factory=list)  # labels still pending at the checkpoint
    quarantine: Path | None = None
    checkpoint: Path | None = None
    spill_dir: Path | None = None  # where a file not in event-time order is sorted (None: the system's temp)
    sort_run_rows: int = RUN_ROWS  # rows sorted in memory at a time
