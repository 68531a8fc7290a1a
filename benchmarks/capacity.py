"""Scorer scaling on this machine, and the capacity model for more than one.

``bench_scaling``: 1, 2 and 4 scorer processes in one consumer group over 8 partitions,
each run on a fresh namespace with the same preloaded events; the scores are counted on
the ``scores`` topic (committed transactions only) by a reader in this process. Rate:
from 10% to 90% of the scores (the group's join and the last partial batch left out).
Result: ``scaling.json``.

``bench_card_writes``: the scorer's card writer (``consumers.card_state.CardWriter``, its own
process) writing distinct cards to the DynamoDB endpoint in checkpoint-sized snapshots: the
CPU of one conditional write, which the pipeline's 1,000 cards hardly show (~1,000 writes a
checkpoint) and millions of cards make one per event. Result: ``card_writes.json``.

``python -m benchmarks.capacity`` (also run by ``make bench``): the capacity table from
the measured per-event CPU (``cpu.json``, plus ``card_writes.json``) and sizes, with the
arithmetic, to ``capacity.json`` and as Markdown (the README's "Capacity" table).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from benchmarks.cpu import CpuMeter, server_pids
from benchmarks.run import RESULTS, _fresh, _stop, _train_and_preload, _txguard, _write
from consumers.card_state import CardWriter
from model.behavior import CardBehavior
from schemas.topics import SCORES
from txguard.clients import Clients
from txguard.settings import Settings


class ScoreCounter(threading.Thread):
    """Counts the committed records of a topic from the beginning, with the time of each step."""

    def __init__(self, clients: Clients, topic: str, partitions: int):
        super().__init__(daemon=True, name="score-counter")
        self.consumer = clients.consumer(f"bench-count-{time.time_ns()}", **{"fetch.wait.max.ms": 10})
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.count = 0
        self.steps: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            n = sum(1 for m in self.consumer.consume(10_000, timeout=0.2) if m.error() is None)
            if n:
                self.count += n
                self.steps.append((time.perf_counter(), self.count))
        self.consumer.close()

    def time_at(self, count: float) -> float:
        return next(t for t, c in self.steps if c >= count)


def _scaling_run(settings: Settings, path: Path, limit: int, processes: int) -> dict:
    events, _ = _train_and_preload(settings, path, limit=limit)
    clients = Clients(settings)
    counter = ScoreCounter(clients, settings.topic(SCORES), settings.partitions)
    counter.start()
    procs = [subprocess.Popen(_txguard(settings, "consume", "scorer")) for _ in range(processes)]
    # CPU in the steady part only, like the rate: start-up (the model's load) is not per event.
    meter = CpuMeter({f"scorer{i}": p.pid for i, p in enumerate(procs)})
    # The whole run too: a run of a few batches has no steady part to measure.
    whole = CpuMeter({f"scorer{i}": p.pid for i, p in enumerate(procs)}).start()
    cpu: dict[str, float] = {}
    cpu_from = cpu_events = 0
    try:
        t0 = time.perf_counter()
        while counter.count < events:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a scorer exited")
            if not meter.started and counter.count >= 0.1 * events:
                meter.start()
                cpu_from = counter.count
            if meter.started and not cpu and counter.count >= 0.9 * events:
                cpu, cpu_events = meter.stop(), counter.count - cpu_from
            time.sleep(0.05)
        total_s = time.perf_counter() - t0
        whole_cpu = whole.stop()
    finally:
        counter.done.set()
        _stop(procs)
    t10, t90 = counter.time_at(0.1 * events), counter.time_at(0.9 * events)
    steady = t90 > t10 and bool(cpu) and cpu_events > 0
    return {
        "scorer_processes": processes,
        "events": events,
        "events_per_s": round(0.8 * events / (t90 - t10)) if t90 > t10 else round(events / total_s),
        "seconds_start_to_last": round(total_s, 2),
        "scorer_cpu_us_per_event": round(
            (sum(cpu.values()) / cpu_events if steady else sum(whole_cpu.values()) / events) * 1e6, 1
        ),
        "measured_over": "10% to 90% of the scores" if steady else "the whole run (too few batches for a steady part)",
    }


def bench_scaling(settings: Settings, path: Path, limit: int, counts: list[int]) -> dict:
    runs = [_scaling_run(settings, path, limit, n) for n in counts]
    base = runs[0]["events_per_s"]
    for r in runs:
        r["speedup"] = round(r["events_per_s"] / base, 2)
    lines = [f"{'scorers':>7} {'events/s':>9} {'speedup':>8} {'cpu_us/event':>13}"]
    lines += [f"{r['scorer_processes']:>7} {r['events_per_s']:>9} {r['speedup']:>8} {r['scorer_cpu_us_per_event']:>13}"
              for r in runs]  # fmt: skip
    print("\n".join(lines))
    result = {"partitions": settings.partitions, "runs": runs,
              "note": "scorers only (no persist), one group over 8 partitions, on this machine's cores (shared "
                      "with the broker and DynamoDB); rate and CPU from 10% to 90% of the scores"}  # fmt: skip
    _write("scaling", result, show=False)
    return result


def _cards(count: int, first: int = 0) -> dict[str, CardBehavior]:
    """``count`` distinct cards of a few transactions each (items of the usual size)."""
    cards = {}
    for n in range(first, first + count):
        state = CardBehavior()
        for i in range(8):
            state.apply(1_546_300_800 + 3_600 * i, 12.5 + (n + i) % 90, ("grocery_pos", "gas_transport")[i % 2], (0, i))
        cards[f"{n:032x}"] = state
    return cards


def bench_card_writes(settings: Settings, writes: int, snapshot_size: int = 5_000) -> dict:
    clients = _fresh(settings)
    writer = CardWriter(clients.dynamodb_maker(validate=False), settings.behavior_table)
    try:
        writer.submit(pickle.dumps(_cards(100, first=writes))).result()  # the child's start, not measured
        (child,) = multiprocessing.active_children()
        assert child.pid is not None, "the writer's process runs"
        snapshots = [pickle.dumps(_cards(min(snapshot_size, writes - start), start))
                     for start in range(0, writes, snapshot_size)]  # fmt: skip
        meter = CpuMeter({"card_writer": child.pid, "dynamodb": server_pids(settings)["dynamodb"]}).start()
        t0 = time.perf_counter()
        for snapshot in snapshots:
            written, error = writer.submit(snapshot).result()
            if error is not None:
                raise error
        seconds = time.perf_counter() - t0
        cpu = meter.stop()
    finally:
        writer.close()
    us = {name: round(s / writes * 1e6, 1) for name, s in cpu.items()}
    print(f"card writes: {writes:,} in {seconds:.1f} s ({writes / seconds:,.0f}/s); CPU-us a write: {us}")
    result = {"writes": writes, "snapshot_size": snapshot_size, "writes_per_s": round(writes / seconds),
              "cpu_us_per_write": us,
              "note": "distinct cards (first writes), in snapshots of snapshot_size as a checkpoint hands them "
                      "over; card_writer = the writer's process (unpickling, encoding, 8 threads of botocore "
                      "PutItem); dynamodb = the embedded endpoint"}  # fmt: skip
    _write("card_writes", result, show=False)
    return result


# --- the capacity model -------------------------------------------------------------------

RATES = (1_000, 10_000, 65_000)
UTILISATION = 0.6  # plan each process and server for 60% busy: headroom for peaks, rebalances and catch-up
# RDS PostgreSQL sizes by vCPU (db.r6g family: 8 GiB of memory per vCPU).
RDS = ((2, "db.r6g.large"), (4, "db.r6g.xlarge"), (8, "db.r6g.2xlarge"), (16, "db.r6g.4xlarge"),
       (32, "db.r6g.8xlarge"), (48, "db.r6g.12xlarge"), (64, "db.r6g.16xlarge"))  # fmt: skip


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def model(cpu: dict, rates: tuple[int, ...] = RATES, card_write_us: float | None = None) -> dict:
    """What it takes to sustain each rate, from CPU-us per event measured on one machine, and
    the card writer's CPU-us a write (``card_writes.json``), one write an event: the bound with
    millions of cards, each event's card a different item in its checkpoint."""
    us = {**cpu["cpu_us_per_event"]["send"]}
    for name, v in cpu["cpu_us_per_event"]["drain"].items():
        us[name] = round(us.get(name, 0.0) + v, 1)
    if card_write_us is not None:
        us["card_writer"] = card_write_us
        # The scorer's measured CPU holds its card writer's writes of that run: counted once, as one an event.
        if cpu.get("card_writes"):
            us["scorer"] = round(max(0.0, us["scorer"] - cpu["card_writes"] / cpu["events"] * card_write_us), 1)
    item_kb = cpu.get("dynamodb_item_bytes", 1024) / 1024
    row_bytes = cpu.get("postgresql_bytes_per_event", 1000)
    rows = []
    for rate in rates:
        cores = {name: rate * v / 1e6 / UTILISATION for name, v in us.items()}
        # One core a process: the scoring is Python under one GIL, and so is each one's card writer.
        scorers = max(1, math.ceil(cores["scorer"]), math.ceil(cores.get("card_writer", 0.0)))
        persists = max(1, math.ceil(cores["persist"]))
        partitions = max(8, 2 ** math.ceil(math.log2(2 * max(scorers, persists))))  # room to double the processes
        pg_vcpu = cores["postgresql"]
        rds = next((name for vcpu, name in RDS if vcpu >= pg_vcpu), f"{math.ceil(pg_vcpu)} vCPU: shard or partition")
        # One conditional put per card per checkpoint; with millions of cards each event's card is distinct
        # within a batch, so the bound is one write per event, of ceil(item KB) units.
        wcu = math.ceil(rate * math.ceil(item_kb))
        rows.append(
            {
                "events_per_s": rate,
                "cores": {k: round(v, 2) for k, v in cores.items()},
                # What one runs oneself: the replay and the two services (the broker, PostgreSQL and
                # DynamoDB are sized on their own rows; the local DynamoDB endpoint's CPU is no guide to AWS's).
                "app_cores": round(sum(cores.get(k, 0.0) for k in ("producer", "persist", "scorer", "card_writer")), 1),
                "partitions": partitions,
                "persist_processes": persists,
                "scorer_processes": scorers,
                "broker_cores": round(cores["broker"], 2),
                "dynamodb_wcu": wcu,
                "rds_vcpu": round(pg_vcpu, 2),
                "rds": rds,
                "postgresql_gb_per_day": round(rate * 86_400 * row_bytes / 1e9, 1),
            }
        )
    return {"cpu_us_per_event": us, "utilisation": UTILISATION, "dynamodb_item_kb": round(item_kb, 2),
            "postgresql_bytes_per_event": row_bytes, "rows": rows}  # fmt: skip


def markdown(cap: dict) -> str:
    us = cap["cpu_us_per_event"]
    head = ("| events/s | partitions | persist processes | scorer processes | cores: producer + persist + scorer"
            f"{' + card writer' if 'card_writer' in us else ''} "
            "| broker cores | DynamoDB WCU | RDS (PostgreSQL vCPU) | PostgreSQL GB/day |\n"
            "|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    lines = [head]
    for r in cap["rows"]:
        lines.append(f"| {r['events_per_s']:,} | {r['partitions']} | {r['persist_processes']} | "
                     f"{r['scorer_processes']} | {r['app_cores']} | {r['broker_cores']} | {r['dynamodb_wcu']:,} | "
                     f"{r['rds']} ({r['rds_vcpu']}) | {r['postgresql_gb_per_day']} |")  # fmt: skip
    arithmetic = ", ".join(f"{k} {v}" for k, v in us.items())
    lines.append("")
    lines.append(f"CPU-us per event measured: {arithmetic}. Cores of a component = rate x us / 1e6 / "
                 f"{cap['utilisation']} (planned utilisation); processes = ceil(cores); partitions = the next "
                 f"power of two >= 2 x processes, at least 8 (scorer processes: enough for the card writers too, "
                 f"one each); card writes: one an event; WCU = rate x ceil({cap['dynamodb_item_kb']} KB); "
                 f"GB/day = rate x 86,400 x {cap['postgresql_bytes_per_event']} B.")  # fmt: skip
    if cap.get("scaling"):
        runs = ", ".join(f"{r['scorer_processes']} -> {r['events_per_s']:,} events/s "
                         f"({r['scorer_cpu_us_per_event']} us CPU an event)" for r in cap["scaling"])  # fmt: skip
        lines.append(f"Checked here, scorers in one group over 8 partitions: {runs}.")
    return "\n".join(lines)


def main() -> int:
    if not (RESULTS / "cpu.json").exists():
        print("capacity: no cpu.json yet: run python -m benchmarks.run --only pipeline first", file=sys.stderr)
        return 1
    card_writes = RESULTS / "card_writes.json"
    card_write_us = _load("card_writes")["cpu_us_per_write"]["card_writer"] if card_writes.exists() else None
    cap = model(_load("cpu"), card_write_us=card_write_us)
    scaling_path = RESULTS / "scaling.json"
    if scaling_path.exists():
        cap["scaling"] = _load("scaling")["runs"]
    _write("capacity", cap, show=False)
    print(markdown(cap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
