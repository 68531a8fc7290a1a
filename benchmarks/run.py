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
import traceback
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.cpu import CpuMeter, per_event_us, server_pids, tree_memory_mb
from benchmarks.cpu import table as cpu_table
from schemas.topics import TRANSACTIONS
from txguard import stack
from txguard.clients import Clients, reset
from txguard.settings import Settings

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE / ".data"


def _machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }  # the machine is shared: how busy it was


def _write(name: str, result: dict, show: bool = True) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": name, "at": datetime.now(UTC).isoformat(), "machine": _machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if show:
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


# What this run has trained: the model registry (under the stack's home) outlives a namespace's
# reset, so the stages after the first reuse the model (training 400,000 rows takes minutes here).
_TRAINED: set[tuple[Path, float]] = set()
# The share of the data's event time trained on (--train-fraction); the rest is replayed.
TRAIN_FRACTION = 0.3


def _train(settings: Settings, path: Path, train_fraction: float | None = None, train: bool = True) -> tuple[str, int]:
    """Fresh namespace; train on the first ``train_fraction`` of event time (unless not ``train``, or
    already done by this run). Returns the split time and the number of rows from it on."""
    _fresh(settings)
    train_fraction = TRAIN_FRACTION if train_fraction is None else train_fraction
    from datetime import datetime as dt

    import pandas as pd

    times = pd.read_csv(path, usecols=["trans_date_trans_time"])["trans_date_trans_time"]
    first, last = dt.fromisoformat(times.iloc[0]), dt.fromisoformat(times.iloc[-1])
    split = (first + (last - first) * train_fraction).isoformat(" ")
    if train and (path, train_fraction) not in _TRAINED:
        subprocess.run(_txguard(settings, "train", str(path), "--until", split), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        _TRAINED.add((path, train_fraction))
    return split, int((times >= split).sum())


def _train_and_preload(
    settings: Settings, path: Path, train_fraction: float | None = None, limit: int | None = None, train: bool = True
) -> tuple[int, dict[str, float]]:
    """:func:`_train`, then replay the rest (or its first ``limit`` events) into the transactions topic,
    labels off. Returns the events sent and the CPU seconds of the producer and the broker meanwhile."""
    split, events = _train(settings, path, train_fraction, train)
    replay = ["replay", str(path), "--start", split, "--labels", "off"]
    if limit is not None and limit < events:
        events, replay = limit, [*replay, "--limit", str(limit)]
    broker = CpuMeter({"broker": server_pids(settings)["broker"]}).start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(_txguard(settings, *replay), check=True, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    producer_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return events, {"producer": producer_s, **broker.stop()}


def _next_poll(remaining: int, rate: float) -> float:
    """Seconds to wait before counting again: half the time the rest should take, 0.25-5 s. A
    count(*) of a growing table costs PostgreSQL CPU, and the pipeline's accounting includes it."""
    return min(5.0, max(0.25, remaining / rate / 2)) if rate > 0 else 0.25


def _wait_for_counts(clients: Clients, tables: tuple[str, ...], events: int) -> None:
    t0 = time.perf_counter()
    while (done := min(_pg_count(clients, t) for t in tables)) < events:
        time.sleep(_next_poll(events - done, done / (time.perf_counter() - t0)))


def _close_producer(producer: object) -> None:
    """Without ``close()`` (confluent-kafka 2.8 on) a producer's delivery callback keeps it alive
    past its stage, reconnecting to a broker that has stopped."""
    getattr(producer, "close", lambda: None)()


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _sizes(clients: Clients, events: int) -> dict:
    """What an event leaves behind: PostgreSQL bytes (transactions + scores, indexes included) and the
    mean size of a card's DynamoDB item (attribute names and values, as DynamoDB counts them, roughly)."""
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size('transactions') + pg_total_relation_size('scores')")
            pg_bytes = cur.fetchone()[0]
    finally:
        conn.close()
    page = clients.dynamodb().scan(TableName=clients.settings.behavior_table, Limit=200)
    items = page.get("Items", [])
    sizes = [sum(len(k) + len(json.dumps(v)) for k, v in item.items()) for item in items]
    return {"postgresql_bytes_per_event": round(pg_bytes / events),
            "dynamodb_item_bytes": round(sum(sizes) / len(sizes)) if sizes else None}  # fmt: skip


def _card_writes(clients: Clients) -> int:
    """The conditional card writes made so far in the namespace: each one put its card's version up by one."""
    pages = (
        clients.dynamodb()
        .get_paginator("scan")
        .paginate(TableName=clients.settings.behavior_table, ProjectionExpression="version", ConsistentRead=True)
    )
    return sum(int(item["version"]["N"]) for page in pages for item in page["Items"])


def bench_pipeline(
    settings: Settings, path: Path, train_fraction: float | None = None, limit: int | None = None
) -> dict:
    """Drain the preloaded topic with persist + scorer; compare with bare consume + COPY.

    Also the CPU each component spent, from its own accounting: producer and broker while
    the events are sent, then broker, persist, PostgreSQL, scorer and the DynamoDB endpoint
    while they are drained (written to cpu.json too)."""
    events, send_cpu = _train_and_preload(settings, path, train_fraction, limit)
    clients = Clients(settings)

    bare_s = _bare_consume_copy(clients, events)

    from txguard.supervisor import ready_marker

    services = ("persist", "scorer")
    procs = [subprocess.Popen(_txguard(settings, "consume", s)) for s in services]
    try:
        while not all(ready_marker(settings, s).exists() for s in services):
            time.sleep(0.1)
        meter = CpuMeter({**server_pids(settings), **{s: p.pid for s, p in zip(services, procs, strict=True)}}).start()
        t0 = time.perf_counter()
        _wait_for_counts(clients, ("transactions", "scores"), events)
        pipeline_s = time.perf_counter() - t0
        drain_cpu = meter.stop()
        card_writes = _card_writes(clients)  # before the services stop: their last checkpoint is not in the CPU
        peak_rss = {s: round(tree_memory_mb(p.pid, "VmHWM"), 1) for s, p in zip(services, procs, strict=True)}
    finally:
        _stop(procs)
    phases = {"send": send_cpu, "drain": drain_cpu}
    print(cpu_table(phases, events))
    print("peak RSS (MiB): " + ", ".join(f"{s} {mb:,.0f}" for s, mb in peak_rss.items()))
    _write("cpu", {"dataset": path.name, "events": events, **_sizes(clients, events),
                   "cpu_seconds": {ph: {k: round(v, 2) for k, v in cpu.items()} for ph, cpu in phases.items()},
                   "cpu_us_per_event": {ph: per_event_us(cpu, events) for ph, cpu in phases.items()},
                   "cpu_us_per_event_total": round(sum(sum(c.values()) for c in phases.values()) / events * 1e6, 1),
                   "card_writes": card_writes,  # in the scorer's CPU (its card writer's), during the drain
                   "pipeline_events_per_s": round(events / pipeline_s),
                   "peak_rss_mb": peak_rss,  # over the whole drain (Linux VmHWM), each with its children
                   "note": "send: the replay (CSV -> validation -> tokens -> JSON -> broker); drain: persist + scorer "
                           "running together. postgresql = postmaster + every backend (exited ones too); dynamodb = "
                           "the embedded endpoint (moto or dynalite). Measured with psutil from each process's own "
                           "user + system CPU time."})  # fmt: skip
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


STAGES = ("producer", "pipeline", "profile", "peer", "scaling", "latency", "broker", "memory", "card-writes")


def _run_stage(stage: str, settings: Settings, path: Path, args: argparse.Namespace) -> None:
    if stage == "producer":
        _write("producer", {"dataset": path.name, **bench_producer(settings, path)})
    elif stage == "pipeline":
        _write("pipeline", {"dataset": path.name, **bench_pipeline(settings, path, limit=args.events)})
    elif stage == "profile":
        from benchmarks.pyspy import bench_profile

        bench_profile(settings, path, args.profile_events, gil_only=args.profile_gil)
    elif stage == "peer":
        from benchmarks.peer import bench_peer

        bench_peer(settings, path, args.peer_events)
    elif stage == "scaling":
        from benchmarks.capacity import bench_scaling

        counts = [int(n) for n in args.scaling_processes.split(",")]
        bench_scaling(settings.model_copy(update={"partitions": 8}), path, args.scaling_events, counts)
    elif stage == "card-writes":
        from benchmarks.capacity import bench_card_writes

        bench_card_writes(settings, args.card_writes)
    elif stage == "latency":
        from benchmarks.latency import bench_latency

        rates = [int(r) for r in args.latency_rates.split(",")]
        bench_latency(settings, path, rates, args.latency_seconds)
    elif stage == "broker":
        from benchmarks.broker import bench_broker

        bench_broker(settings, [int(n) for n in args.broker_batches.split(",")])
    elif stage == "memory":
        from benchmarks.scorer import main as bench_scorer

        # The scorer alone (no servers: a store that keeps nothing), so its RSS is its own.
        cards = bench_scorer(["--data", str(path), "--distinct-cards", str(args.memory_cards)])
        _write("memory", {"dataset": path.name, "scorer_distinct_cards": cards,
                          "note": "the scorer's RSS with distinct_cards new cards streaming through, one event "
                                  "each: its card cache bounded at cache_capacity, the overflow written ahead "
                                  "of eviction; persist's and the scorer's peak RSS in the pipeline run are "
                                  "in cpu.json (peak_rss_mb)"})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    global TRAIN_FRACTION
    ap = argparse.ArgumentParser(prog="benchmarks.run", description="txguard's benchmarks, JSON in benchmarks/results/")
    ap.add_argument("--only", choices=STAGES, action="append", help="run only this stage (repeatable)")
    ap.add_argument("--customers", type=int, default=1000, help="generated dataset: customers")
    ap.add_argument("--months", type=int, default=18, help="generated dataset: months")
    ap.add_argument("--train-fraction", type=float, default=TRAIN_FRACTION,
                    help="share of the data's event time to train on (once a run), the rest is replayed")  # fmt: skip
    ap.add_argument("--events", type=int, help="pipeline: drain at most this many events (default: all after training)")
    ap.add_argument("--profile-events", type=int, default=200_000, help="profile: events drained under py-spy")
    ap.add_argument(
        "--profile-gil",
        action="store_true",
        help="profile: sample only the threads holding the GIL (py-spy --gil): Python's CPU, not its waits",
    )
    ap.add_argument("--peer-events", type=int, default=300_000, help="peer: events persisted by each persist job")
    ap.add_argument("--scaling-events", type=int, default=200_000, help="scaling: events scored per run")
    ap.add_argument("--scaling-processes", default="1,2,4", help="scaling: scorer process counts")
    ap.add_argument("--latency-rates", default="1000,5000,10000", help="latency: steady rates, events/s")
    ap.add_argument("--latency-seconds", type=float, default=30.0, help="latency: seconds at each rate")
    ap.add_argument("--broker-batches", default="0,2000,8000",
                    help="broker: record batches stored in the partition before each measure")  # fmt: skip
    ap.add_argument("--memory-cards", type=int, default=1_000_000, help="memory: distinct cards through the scorer")
    ap.add_argument("--card-writes", type=int, default=20_000, help="card-writes: distinct cards written")
    args = ap.parse_args(argv)
    TRAIN_FRACTION = args.train_fraction
    stages = [s for s in STAGES if s in (args.only or STAGES)]
    # A stack of its own, started fresh: the broker keeps everything in memory.
    settings = Settings(home=HERE / ".stack", namespace="bench", partitions=4)
    path = _dataset(args.customers, args.months)
    stack.down(settings)
    stack.up(settings, {name: stack.free_port() for name in stack.DEFAULT_PORTS})
    failed = []
    try:
        for stage in stages:
            t0 = time.perf_counter()
            try:
                _run_stage(stage, settings, path, args)
            except Exception:  # the other stages still run; the exit status says one failed
                traceback.print_exc()
                failed.append(stage)
            print(f"== {stage}: {time.perf_counter() - t0:.0f} s{' FAILED' if stage in failed else ''}", flush=True)
    finally:
        stack.down(settings)
    if failed:
        print(f"failed stages: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    from benchmarks import run  # the module the stages import: one TRAIN_FRACTION, one _TRAINED

    sys.exit(run.main())
