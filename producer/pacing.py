"""Pacing: publish at event time x speed, or at a fixed rate, or as fast as possible."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Sleeps so that publishing follows event time x speed, or a fixed rate."""

    def __init__(self, speed: float | None, rate: float | None):
        self.speed, self.rate = speed, rate
        self.t0_wall: float | None = None
        self.t0_event = 0.0
        self.sent = 0

    @property
    def active(self) -> bool:
        return self.speed is not None or self.rate is not None

    def wait(self, event_s: float, stop: threading.Event) -> None:
        now = time.monotonic()
        if self.t0_wall is None:
            self.t0_wall, self.t0_event = now, event_s
        if self.speed is not None:
            due = self.t0_wall + (event_s - self.t0_event) / self.speed
        else:
            due = self.t0_wall + self.sent / self.rate  # type: ignore[operator]
        self.sent += 1
        if due - now > 0.002:
            stop.wait(due - now)
