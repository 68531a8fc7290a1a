"""Rejected rows: counted by reason, kept in the quarantine file, dead-lettered with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from producer.cards import redact
from producer.progress import ReplayStats
from schemas.events import DeadLetter
from streaming.deadletter import dead_letter


class Rejects:
    """Where the rows that failed validation go; the card number never does (redacted)."""

    def __init__(self, producer: Any, dlq_topic: str, location: str, quarantine: Path | None, stats: ReplayStats):
        self.producer, self.dlq_topic, self.location, self.stats = producer, dlq_topic, location, stats
        self.quarantine = open(quarantine, "a", encoding="utf-8") if quarantine else None

    def reject(self, line: int | None, raw: dict | str, reasons: list[str]) -> None:
        reason = redact("; ".join(reasons))  # a damage hint may quote the card number
        self.stats.rejected_rows += 1
        for r in reasons:
            self.stats.rejected[r.split(" (")[0]] += 1
        safe_raw = redact(raw if isinstance(raw, str) else json.dumps(raw))
        record = {"source": self.location, "line": line, "reason": reason, "raw": safe_raw}
        if self.quarantine:
            self.quarantine.write(json.dumps(record) + "\n")
        where = DeadLetter(service="replay", source=self.location, line=line, error_class="RejectedRow", reason=reason)
        dead_letter(self.producer, self.dlq_topic, orjson.dumps(record), None, where)

    def close(self) -> None:
        if self.quarantine:
            self.quarantine.close()
