"""Retrying an action while the dependency it needs is down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from streaming.metrics import LoopMetrics
from streaming.service import Rewind, Service
from streaming.stats import LoopStats

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
FIRST_BACKOFF_S = 0.2


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


class Retry:
    """Runs an action until it succeeds, backing off while a sink is unreachable.

    A transient failure (database restarting, endpoint throttling) must not lose the
    batch nor skip it: the loop waits here, keeping its partitions, until it passes.
    The service says which failures are transient; any other one is raised.
    """

    def __init__(self, service: Service, stop: threading.Event, stats: LoopStats, metrics: LoopMetrics | None = None):
        self.service, self.stop, self.stats = service, stop, stats
        self.metrics = metrics or LoopMetrics(service.name)  # readiness: whether the sinks answer

    def __call__(self, action: Callable[[], None]) -> bool:
        """True once ``action`` succeeded; False if asked to stop meanwhile (nothing was committed)."""
        delay = FIRST_BACKOFF_S
        while True:
            try:
                action()
                self.metrics.sink_passed()
                return True
            except Rewind:
                raise
            except Exception as exc:
                if not self.service.is_transient(exc):
                    raise
                if self.stop.is_set():
                    return False
                self.stats.retries += 1
                self.metrics.sink_failed(exc)
                log.warning("%s: cannot go on yet (%s: %s); retrying in %.1fs",
                            self.service.name, type(exc).__name__, first_line(exc), delay)  # fmt: skip
                self.stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
