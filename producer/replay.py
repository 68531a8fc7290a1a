"""Replay a transaction file into Kafka: validate, tokenise, pace, publish, release labels."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector, redact
from producer.source import CsvSource
from producer.validate import validate

log = logging.getLogger(__name__)


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
    quarantine: Path | None = None
    checkpoint: Path | None = None


@dataclass
class ReplayStats:
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped: int = 0  # outside --start/--end/--limit or before --resume
    labels: int = 0
    delivery_errors: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    last_line: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_per_s(self) -> float:
        return (self.accepted + self.rejected_total) / max(time.monotonic() - self.started, 1e-9)


@dataclass(frozen=True)
class Topics:
    transactions: str
    labels: str
    dlq: str


class _Pacer:
    """Sleeps so that publishing follows event time x speed, or a fixed rate."""

    def __init__(self, speed: float | None, rate: float | None):
        self.speed, self.rate = speed, rate
        self.t0_wall: float | None = None
        self.t0_event = 0.0
        self.sent = 0

    def wait(self, event_s: float, stop: threading.Event) -> None:
        if self.speed is None and self.rate is None:
            return
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


def _event_columns(good: pa.RecordBatch) -> dict[str, list]:
    """Typed columns for the events of the accepted rows."""
    cols = {name: good.column(name) for name in good.schema.names}
    times = pc.strptime(cols["trans_date_trans_time"], format="%Y-%m-%d %H:%M:%S", unit="ms")
    zips = cols.get("merch_zipcode")
    return {
        "trans_num": cols["trans_num"].to_pylist(),
        "event_time": pc.replace_substring(cols["trans_date_trans_time"], " ", "T").to_pylist(),
        "event_ms": pc.cast(times, pa.int64()).to_pylist(),
        "cc_num": cols["cc_num"].to_pylist(),
        "merchant": cols["merchant"].to_pylist(),
        "category": cols["category"].to_pylist(),
        "amt": pc.cast(cols["amt"], pa.float64()).to_pylist(),
        "gender": cols["gender"].to_pylist(),
        "city": cols["city"].to_pylist(),
        "state": cols["state"].to_pylist(),
        "zip": cols["zip"].to_pylist(),
        "lat": pc.cast(cols["lat"], pa.float64()).to_pylist(),
        "long": pc.cast(cols["long"], pa.float64()).to_pylist(),
        "city_pop": pc.cast(cols["city_pop"], pa.int64()).to_pylist(),
        "birth_year": pc.cast(pc.utf8_slice_codeunits(cols["dob"], 0, 4), pa.int64()).to_pylist(),
        "merch_lat": pc.cast(cols["merch_lat"], pa.float64()).to_pylist(),
        "merch_long": pc.cast(cols["merch_long"], pa.float64()).to_pylist(),
        "merch_zipcode": (
            [None if not z else z.removesuffix(".0") for z in zips.to_pylist()]
            if zips is not None
            else [None] * good.num_rows
        ),
        "is_fraud": [v == "1" for v in cols["is_fraud"].to_pylist()],
    }


def replay(
    source: CsvSource,
    producer,  # confluent_kafka.Producer
    topics: Topics,
    protector: CardProtector,
    options: ReplayOptions,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[ReplayStats, CsvSource], None] | None = None,
) -> ReplayStats:
    """Publish every valid row of ``source``; reject the others with a reason.

    After each block the producer is flushed and the last acknowledged line is
    checkpointed, so ``resume_after_line`` continues without resending.
    """
    stop = stop or threading.Event()
    stats = ReplayStats()
    pacer = _Pacer(options.speed, options.rate)
    pending_labels: deque[tuple[float, bytes, bytes, int]] = deque()
    seen: set[int] = set()
    delay_ms = options.label_delay.total_seconds() * 1000
    start_ms = None if options.start is None else options.start.timestamp() * 1000
    end_ms = None if options.end is None else options.end.timestamp() * 1000
    last_progress = 0.0
    quarantine = open(options.quarantine, "a", encoding="utf-8") if options.quarantine else None

    def on_delivery(err, msg) -> None:  # noqa: ANN001 - librdkafka callback
        if err is not None:
            stats.delivery_errors += 1
            log.error("delivery to %s failed: %s", msg.topic(), err)

    def produce(topic: str, key: bytes | None, value: bytes, ts: int | None = None, headers=None) -> None:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, timestamp=ts or 0, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:  # local queue full: let librdkafka drain it
                producer.poll(0.05)

    def release_labels(clock_ms: float) -> None:
        while pending_labels and pending_labels[0][0] <= clock_ms:
            due, key, value, _ = pending_labels.popleft()
            produce(topics.labels, key, value, int(due))
            stats.labels += 1

    def reject(line: int | None, raw: dict | str, reasons: list[str]) -> None:
        reason = redact("; ".join(reasons))  # a damage hint may quote the card number
        for r in reasons:
            stats.rejected[r.split(" (")[0]] += 1
        safe_raw = redact(raw if isinstance(raw, str) else json.dumps(raw))
        record = {"source": source.location, "line": line, "reason": reason, "raw": safe_raw}
        if quarantine:
            quarantine.write(json.dumps(record) + "\n")
        headers = [
            ("source", source.location.encode()),
            ("line", str(line).encode()),
            ("error", reason.encode()[:1000]),
        ]
        produce(topics.dlq, None, orjson.dumps(record), headers=headers)
        log.warning("rejected %s line %s: %s", source.location, line, reason)

    try:
        reported_malformed = 0
        for chunk in source.chunks():
            for bad in source.malformed[reported_malformed:]:
                reject(bad.line, bad.text, [bad.reason])
            reported_malformed = len(source.malformed)

            batch = chunk.batch
            if chunk.lines and chunk.lines[-1] <= options.resume_after_line:
                stats.skipped += batch.num_rows
                continue
            verdict = validate(batch, seen)
            if verdict.reasons:
                raw_rows = batch.to_pylist()
                for i, reasons in sorted(verdict.reasons.items()):
                    if chunk.lines[i] > options.resume_after_line:
                        reject(chunk.lines[i], raw_rows[i], reasons)
            good = batch.filter(verdict.accepted)
            lines = [ln for ln, ok in zip(chunk.lines, verdict.accepted.to_pylist(), strict=True) if ok]
            c = _event_columns(good)

            for i in range(good.num_rows):
                if lines[i] <= options.resume_after_line:
                    stats.skipped += 1
                    continue
                ms = c["event_ms"][i]
                if (start_ms is not None and ms < start_ms) or (end_ms is not None and ms >= end_ms):
                    stats.skipped += 1
                    continue
                if options.limit is not None and stats.accepted >= options.limit:
                    stop.set()
                    break
                pacer.wait(ms / 1000, stop)
                if stop.is_set():
                    break
                token, masked = protector.protect(c["cc_num"][i])
                event = {
                    "trans_num": c["trans_num"][i],
                    "event_time": c["event_time"][i],
                    "card_token": token,
                    "card_masked": masked,
                    **{k: c[k][i] for k in _PASS_THROUGH},
                }
                key = token.encode()
                produce(topics.transactions, key, orjson.dumps(event), ms)
                stats.accepted += 1
                stats.last_line = lines[i]
                if options.labels:
                    label = {
                        "trans_num": event["trans_num"],
                        "card_token": token,
                        "event_time": event["event_time"],
                        "is_fraud": c["is_fraud"][i],
                    }
                    pending_labels.append((ms + delay_ms, key, orjson.dumps(label), lines[i]))
                    release_labels(ms)
                if stats.first_event is None:
                    stats.first_event = datetime.fromisoformat(event["event_time"])
                stats.last_event = datetime.fromisoformat(event["event_time"])
                producer.poll(0)
                if on_progress and (now := time.monotonic()) - last_progress > 1.0:
                    last_progress = now
                    on_progress(stats, source)
            _checkpoint(producer, stats, options, source)
            if stop.is_set():
                break
        for bad in source.malformed[reported_malformed:]:
            reject(bad.line, bad.text, [bad.reason])
        if not stop.is_set():
            # End of the file: the history is complete, every outstanding label is known.
            release_labels(float("inf"))
    finally:
        producer.flush()
        _checkpoint(producer, stats, options, source)
        if quarantine:
            quarantine.close()
        if on_progress:
            on_progress(stats, source)
    return stats


_PASS_THROUGH = (
    "merchant", "category", "amt", "gender", "city", "state", "zip", "lat", "long",
    "city_pop", "birth_year", "merch_lat", "merch_long", "merch_zipcode",
)  # fmt: skip


def _checkpoint(producer, stats: ReplayStats, options: ReplayOptions, source: CsvSource) -> None:
    """Record the last line whose event the broker acknowledged (after a flush)."""
    if options.checkpoint is None or stats.last_line == 0:
        return
    if producer.flush(30) != 0 or stats.delivery_errors:
        log.error("not checkpointing: %d deliveries failed or pending", stats.delivery_errors)
        return
    options.checkpoint.write_text(json.dumps({"source": source.location, "line": stats.last_line}))


def load_history(source: CsvSource, protector: CardProtector, until: datetime | None = None):
    """Valid rows up to ``until`` as a frame for batch training (tokenised, with is_fraud)."""
    import pandas as pd

    frames = []
    seen: set[int] = set()
    for chunk in source.chunks():
        verdict = validate(chunk.batch, seen)
        c = _event_columns(chunk.batch.filter(verdict.accepted))
        frame = pd.DataFrame({
            "card_token": [protector.protect(p)[0] for p in c["cc_num"]],
            "event_time": pd.to_datetime(c["event_ms"], unit="ms"),
            "amt": c["amt"], "category": c["category"], "birth_year": c["birth_year"],
            "is_fraud": c["is_fraud"],
        })  # fmt: skip
        if until is not None:
            frame = frame[frame["event_time"] < until]
            if frame.empty:
                break
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
