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

    @classmethod
    def load(cls, path: Path, source: str) -> ReplayCheckpoint | None:
        """The checkpoint at ``path`` if it is one of ``source``; else None (nothing to resume)."""
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        if saved.get("source") != source:
            return None
        return cls(source, int(saved["line"]), saved.get("pending_labels", []))

    def save(self, path: Path) -> None:
        """Replace the checkpoint at ``path`` atomically (a crash leaves the old one whole)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"source": self.source, "line": self.line, "pending_labels": self.pending_labels}))
        os.replace(tmp, path)
