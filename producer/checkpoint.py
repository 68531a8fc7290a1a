"""The replay checkpoint: how far a replay of one source got, to resume without resending."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ReplayCheckpoint:
    """The last line of ``source`` whose event the broker acknowledged, and the labels
    not yet due then (as :meth:`producer.labels.LabelScheduler.to_json` writes them).

    Written only after a flush without delivery errors, so resuming after ``line``
    sends nothing twice and loses nothing; the pending labels are released on time.
    """

    source: str
    line: int
    pending_labels: list[list[float | str]] = field(default_factory=list)
    # A file replayed sorted (not in event-time order): the event time (ms) of ``line``, which
    # with it is the position in the sorted order.
    event_ms: int | None = None

    @classmethod
    def load(cls, path: Path, source: str) -> ReplayCheckpoint | None:
        """The checkpoint at ``path`` if it is one of ``source``; else None (nothing to resume)."""
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        if saved.get("source") != source:
            return None
        event_ms = saved.get("event_ms")
        return cls(source, int(saved["line"]), saved.get("pending_labels", []),
                   int(event_ms) if event_ms is not None else None)  # fmt: skip

    def save(self, path: Path) -> None:
        """Replace the checkpoint at ``path`` atomically (a crash leaves the old one whole)."""
        tmp = path.with_suffix(".tmp")
        saved: dict = {"source": self.source, "line": self.line, "pending_labels": self.pending_labels}
        if self.event_ms is not None:
            saved["event_ms"] = self.event_ms
        tmp.write_text(json.dumps(saved))
        os.replace(tmp, path)
