"""Rejected rows: counted by reason, kept in the quarantine file, dead-lettered with the reason.

What is kept of a rejected row is built column by column, never from its text: the
card number becomes its token and mask, names, street and job are dropped, the date
of birth becomes a birth year, and every other value is scanned for card numbers
(:func:`producer.cards.redact`). A line that could not be parsed is kept as its
length and a keyed hash, not as text; so is one too long to read (its size in bytes,
its hash computed as it streamed past).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, Any

import orjson

from producer.cards import CardProtector, redact
from producer.progress import ReplayStats
from producer.source import LineDigest
from schemas.events import DeadLetter
from schemas.fields import PAN_PATTERN
from streaming.deadletter import dead_letter

DROPPED = ("first", "last", "street", "job")  # personal data: never needed to fix a row
# A well-formed event time is kept as written: redact would take its 14 digits for a number.
_EVENT_TIME = re.compile(r"(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_BIRTH_YEAR = re.compile(r"[0-9]{4}")


def safe_row(row: dict[str, Any], protector: CardProtector) -> dict[str, Any]:
    """What may be kept of a rejected row (the columns of the file, as text)."""
    safe: dict[str, Any] = {}
    for column, value in row.items():
        if column in DROPPED or value is None:
            continue
        if column == "cc_num":
            if re.fullmatch(PAN_PATTERN, value):
                safe["card_token"], safe["card_masked"] = protector.protect(value)
            else:  # the damage ("2.29E+15", separators) tells what went wrong; any number is masked
                safe["cc_num"] = redact(value)
        elif column == "dob":
            safe["birth_year"] = value[:4] if _BIRTH_YEAR.fullmatch(value[:4]) else None
        elif column == "trans_date_trans_time" and _EVENT_TIME.fullmatch(value):
            safe[column] = value
        else:
            safe[column] = redact(str(value))
    return safe


def safe_line(text: str, protector: CardProtector) -> dict[str, Any]:
    """An unparsable line: its length and keyed hash, enough to find it again in the file."""
    data = text.encode("utf-8", errors="surrogatepass")
    return {"length": len(text), "hmac_sha256": protector.fingerprint(data)}


def open_private(path: Path) -> IO[str]:
    """Open ``path`` for appending, created readable by its owner only (0600).

    Created with that mode, not changed afterwards: no moment where others could
    read it. A file left by an earlier version is tightened before anything is added.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class Rejects:
    """Where the rows that failed validation go; the card number and personal data never do."""

    def __init__(self, producer: Any, dlq_topic: str, location: str, quarantine: Path | None, stats: ReplayStats,
                 protector: CardProtector):  # fmt: skip
        self.producer, self.dlq_topic, self.location, self.stats = producer, dlq_topic, location, stats
        self.protector = protector
        self.quarantine = open_private(quarantine) if quarantine else None

    def reject(self, line: int | None, raw: dict | str | LineDigest, reasons: list[str]) -> None:
        reason = redact("; ".join(reasons))  # a damage hint may quote the card number
        self.stats.rejected_rows += 1
        for r in reasons:
            self.stats.rejected[redact(r.split(" (")[0])] += 1
        record: dict[str, Any] = {"source": self.location, "line": line, "reason": reason}
        if isinstance(raw, LineDigest):  # a line too long to read: never held whole
            record["unparsed"] = {"bytes": raw.size, "hmac_sha256": raw.fingerprint}
        elif isinstance(raw, str):
            record["unparsed"] = safe_line(raw, self.protector)
        else:
            record["row"] = safe_row(raw, self.protector)
        value = orjson.dumps(record)
        if self.quarantine:
            self.quarantine.write(value.decode() + "\n")
        where = DeadLetter(service="replay", source=self.location, line=line, error_class="RejectedRow", reason=reason)
        dead_letter(self.producer, self.dlq_topic, value, None, where)

    def close(self) -> None:
        if self.quarantine:
            self.quarantine.close()
