"""What the consumer loop counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopStats:
    batches: int = 0
    messages: int = 0
    dead_lettered: int = 0
    retries: int = 0
