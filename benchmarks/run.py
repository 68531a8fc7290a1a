"""Benchmarks, run by ``make bench`` (never by the tests). Results: benchmarks/results/*.json.

producer  CSV -> broker as fast as possible: events/s and the producer's peak RSS.
pipeline  the same events already in Kafka, drained by persist + scorer, against a
          bare consume + COPY of the same topic on the same machine, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from schemas.topics import TRANSACTIONS
from txguard import stack
from txguard.clients import Clients, reset
from txguard.settings import Settings

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE / ".data"


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def _write(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": name, "at": datetime.now(UTC).isoformat(), "machine": _machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return path


def _dataset(customers: int, months: int) -> Path:
    from producer.generator import generate

    end = date(2019 + (months - 1) // 12, (months - 1) % 12 + 1, 28)
    path = DATA / f"generated_{customers}c_{months}m.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        generate(path, customers=customers, start=date(2019, 1, 1), end=end)
    return path


def _txguard(settings: Settings, *argv: str) -> list[str]:
    return [sys.executable, "-m", "txguard.cli", "--home", str(settings.home), "--namespace", settings.namespace,
            "--partitions", str(settings.partitions), *argv]  # fmt: skip


def _fresh(settings: Settings) -> Clients:
    clients = Clients(settings)
    reset(clients)
    return clients


def _rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def bench_producer(settings: Settings, path: Path) -> dict:
    """Replay the whole file with labels, in a child process so its peak RSS is its own."""
    _fresh(settings)
    t0 = time.perf_counter()
    subprocess.run(_txguard(settings, "replay", str(path)), check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    rows = _rows(path)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"rows": rows, "seconds": round(seconds, 2), "events_per_s": round(rows / seconds),
            "peak_rss_mb": round(peak_kb / 1024, 1), "file_mb": round(path.stat().st_size / 2**20, 1),
            "target_events_per_s": 150_000}  # fmt: skip


def _pg_count(clients: Clients, table: str) -> int:
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            return cur.fetchone()[0]
    finally:
        conn.close()


def _bare_consume_copy(clients: Clients, expected: int) -> float:
    """The floor: consume the topic and COPY the raw JSON into a one-column table."""
    from confluent_kafka import TopicPartition

    from streaming.message import offset_of, partition_of, topic_of, value_of

    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bare_copy (doc text)")
    conn.commit()
    consumer = clients.consumer(f"bare-{time.time_ns()}")
    consumer.subscribe([clients.settings.topic(TRANSACTIONS)])
    done = 0
    t0 = None
    import io

    while done < expected:
        msgs = consumer.consume(20_000, timeout=1.0)
        if not msgs:
            continue
        t0 = t0 or time.perf_counter()
        buf = io.StringIO("".join(value_of(m).decode().replace("\\", "\\\\") + "\n" for m in msgs if not m.error()))
        with conn.cursor() as cur:
            cur.copy_expert("COPY bare_copy (doc) FROM STDIN", buf)
        conn.commit()
        consumer.commit(offsets=[TopicPartition(topic_of(m), partition_of(m), offset_of(m) + 1) for m in msgs],
                        asynchronous=False)  # fmt: skip
        done += len(msgs)
    consumer.close()
    conn.close()
    assert t0 is not None
    return time.perf_counter() - t0


def bench_pipeline(settings: Settings, path: Path, train_fraction: float = 0.3) -> dict:
    """Drain the preloaded topic with persist + scorer; compare with bare consume + COPY."""
    clients = _fresh(settings)
    from datetime import datetime as dt

    import pandas as pd

    times = pd.read_csv(path, usecols=["trans_date_trans_time"])["trans_date_trans_time"]
    first, last = dt.fromisoformat(times.iloc[0]), dt.fromisoformat(times.iloc[-1])
    split = first + (last - first) * train_fraction
    subprocess.run(_txguard(settings, "train", str(path), "--until", split.isoformat(" ")), check=True)
    subprocess.run(_txguard(settings, "replay", str(path), "--start", split.isoformat(" "), "--labels", "off"),
                   check=True, stderr=subprocess.DEVNULL)  # fmt: skip
    events = int((times >= split.isoformat(" ")).sum())

    bare_s = _bare_consume_copy(clients, events)

    from txguard.supervisor import ready_marker

    procs = [subprocess.Popen(_txguard(settings, "consume", s)) for s in ("persist", "scorer")]
    try:
        while not all(ready_marker(settings, s).exists() for s in ("persist", "scorer")):
            time.sleep(0.1)
        t0 = time.perf_counter()
        first_seen = None
        while True:
            t, s = _pg_count(clients, "transactions"), _pg_count(clients, "scores")
            if first_seen is None and (t or s):
                first_seen = time.perf_counter()
            if t >= events and s >= events:
                break
            time.sleep(0.25)
        pipeline_s = time.perf_counter() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    return {
        "events": events,
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_events_per_s": round(events / pipeline_s),
        "bare_consume_copy_seconds": round(bare_s, 2),
        "bare_consume_copy_events_per_s": round(events / bare_s),
        "pipeline_vs_bare_ratio": round((events / pipeline_s) / (events / bare_s), 3),
        "target_events_per_s": 30_000,
        "note": "pipeline = persist (PostgreSQL) + scorer (DynamoDB, features, models, scores/alerts topics)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.run")
    ap.add_argument("--only", choices=("producer", "pipeline"))
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--months", type=int, default=18)
    args = ap.parse_args(argv)
    # A stack of its own, started fresh: the broker keeps everything in memory.
    settings = Settings(home=HERE / ".stack", namespace="bench", partitions=4)
    path = _dataset(args.customers, args.months)
    stack.down(settings)
    stack.up(settings, {name: stack.free_port() for name in stack.DEFAULT_PORTS})
    try:
        if args.only in (None, "producer"):
            _write("producer", {"dataset": path.name, **bench_producer(settings, path)})
        if args.only in (None, "pipeline"):
            _write("pipeline", {"dataset": path.name, **bench_pipeline(settings, path)})
    finally:
        stack.down(settings)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
