"""Latency from the producer's send to the score on ``scores`` and the alert on ``alerts``.

persist and the scorer run with the default settings while this process sends the
events after the training period at steady rates (default 1,000, 5,000 and 10,000
events/s, 30 s each), through a producer configured as the replay's, stamping each
transaction with ``schemas.topics.SENT_AT_HEADER`` (epoch ns) at send. A reader of
``scores`` and ``alerts`` (committed records only, as any consumer of the scorer's
transactions sees them) takes, per record, the time it got it minus the header the
scorer copied from the transaction. A record without that header is matched to its
transaction by ``trans_num`` instead (``matched_by`` says how many each way).
Result: ``benchmarks/results/latency.json``::

    {"rates": [{"events_per_s": ..., "p50_ms": ..., "p95_ms": ..., "p99_ms": ..., "max_ms": ...}], ...}

``rates`` is the scores, each rate also with ``per_second`` (p50 and max of the events sent
in each second: a stall shows there) and ``cpu_cores``, the cores each process used while
that rate was sent (the servers, persist, the scorer with its card writer, and this
process: the sender and the reader); ``alerts`` has the same shape for the alerts.

    PYTHONPATH=. python -m benchmarks.run --only latency [--latency-rates 1000,5000] [--latency-seconds 30]
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from benchmarks.cpu import CpuMeter, server_pids
from benchmarks.run import _close_producer, _stop, _train, _txguard, _write
from schemas.topics import ALERTS, SCORES, SENT_AT_HEADER, TRANSACTIONS
from streaming.producer import produce
from txguard.clients import Clients
from txguard.settings import Settings

DRAIN_TIMEOUT_S = 120.0


def _encoded(settings: Settings, path: Path, split: str, count: int) -> list[tuple[bytes, bytes, int, str]]:
    """The first ``count`` events from ``split`` on, as the replay encodes them: (key, value, event ms, trans_num)."""
    import pyarrow.compute as pc

    from producer.encode import encode_events
    from producer.source import CsvSource
    from txguard.app import App

    protector = App(settings).protector()
    out: list[tuple[bytes, bytes, int, str]] = []
    for chunk in CsvSource(str(path)).chunks():
        keep = pc.greater_equal(chunk.batch.column("trans_date_trans_time"), split)
        batch = chunk.batch.filter(keep)
        if not batch.num_rows:
            continue
        block = encode_events(batch, chunk.lines[-batch.num_rows :], protector)
        nums = batch.column("trans_num").to_pylist()
        out += zip(block.keys, block.events, block.event_ms, nums, strict=True)
        if len(out) >= count:
            return out[:count]
    return out


class Collector(threading.Thread):
    """Reads scores and alerts; per record, the ms since its transaction was sent."""

    def __init__(self, clients: Clients, partitions: int, sent_ns: dict[str, int]):
        super().__init__(daemon=True, name="latency-collector")
        settings = clients.settings
        self.topics = {settings.topic(SCORES): "scores", settings.topic(ALERTS): "alerts"}
        self.consumer = clients.consumer(f"bench-latency-{time.time_ns()}", **{"fetch.wait.max.ms": 5})
        self.consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in self.topics for p in range(partitions)])
        self.sent_ns = sent_ns
        self.latencies: dict[str, dict[str, float]] = {"scores": {}, "alerts": {}}  # trans_num -> ms
        self.matched_by = {"header": 0, "trans_num": 0}
        self.done = threading.Event()

    def run(self) -> None:
        header = SENT_AT_HEADER
        while not self.done.is_set():
            msgs = self.consumer.consume(10_000, timeout=0.05)
            now = time.time_ns()
            for m in msgs:
                if m.error() is not None:
                    continue
                trans_num: str = orjson.loads(m.value() or b"{}").get("trans_num", "")
                headers: list[tuple[str, bytes]] = m.headers() or []  # type: ignore[assignment]
                sent = next((int(v) for k, v in headers if k == header and v), None)
                if sent is not None:
                    self.matched_by["header"] += 1
                else:
                    sent = self.sent_ns.get(trans_num)
                    if sent is None:
                        continue
                    self.matched_by["trans_num"] += 1
                self.latencies[self.topics[m.topic() or ""]][trans_num] = (now - sent) / 1e6
        self.consumer.close()


def _percentiles(rate: int, ms: list[float]) -> dict:
    if not ms:
        return {"events_per_s": rate, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"events_per_s": rate, "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1),
            "p99_ms": round(float(p99), 1), "max_ms": round(float(max(ms)), 1)}  # fmt: skip


def _per_second(sent_ns: dict[str, int], latencies: dict[str, float], nums: list[str]) -> list[dict]:
    """p50 and max of the events sent in each second of a rate's run: where the tail comes from."""
    if not nums:
        return []
    start = sent_ns[nums[0]]
    seconds: dict[int, list[float]] = {}
    for t in nums:
        if t in latencies:
            seconds.setdefault((sent_ns[t] - start) // 1_000_000_000, []).append(latencies[t])
    return [{"second": s, "p50_ms": round(float(np.median(ms)), 1), "max_ms": round(max(ms), 1)}
            for s, ms in sorted(seconds.items())]  # fmt: skip


def bench_latency(settings: Settings, path: Path, rates: list[int], seconds_each: float) -> dict:
    from txguard.supervisor import ready_marker

    split, available = _train(settings, path)
    wanted = [int(r * seconds_each) for r in rates]
    if sum(wanted) > available:
        raise SystemExit(f"latency: {sum(wanted):,} events wanted, {available:,} after training: use a larger dataset")
    events = _encoded(settings, path, split, sum(wanted))
    clients = Clients(settings)
    sent_ns: dict[str, int] = {}
    collector = Collector(clients, settings.partitions, sent_ns)
    collector.start()
    services = ("persist", "scorer")
    procs = [subprocess.Popen(_txguard(settings, "consume", s)) for s in services]
    producer = clients.producer()
    topic = settings.topic(TRANSACTIONS)
    achieved, by_rate, cores = [], [], []
    components = {**server_pids(settings), **dict(zip(services, (p.pid for p in procs), strict=True))}
    try:
        while not all(ready_marker(settings, s).exists() for s in services):
            time.sleep(0.1)
        start = 0
        for rate, n in zip(rates, wanted, strict=True):
            chunk = events[start : start + n]
            start += n
            meter = CpuMeter(components).start()
            own_cpu_s = time.process_time()  # this process alone: the sender and the reader of the outputs
            t0 = time.perf_counter()
            for i, (key, value, event_ms, trans_num) in enumerate(chunk):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0.001:
                    time.sleep(delay)
                now = time.time_ns()
                sent_ns[trans_num] = now
                produce(producer, topic, value, key, timestamp=event_ms, headers=[(SENT_AT_HEADER, str(now).encode())])
                if i % 500 == 0:
                    producer.poll(0)
            producer.flush(30)
            sending_s = time.perf_counter() - t0
            achieved.append(round(n / sending_s))
            used = {**meter.stop(), "benchmark": time.process_time() - own_cpu_s}
            cores.append({name: round(cpu_s / sending_s, 2) for name, cpu_s in used.items()})
            nums = [c[3] for c in chunk]
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline and sum(t in collector.latencies["scores"] for t in nums) < n:
                time.sleep(0.5)
            by_rate.append(nums)
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("persist or the scorer exited")
    finally:
        collector.done.set()
        collector.join(10)
        _stop(procs)
        _close_producer(producer)
    scores, alerts = [], []
    for rate, nums, sent_rate, used in zip(rates, by_rate, achieved, cores, strict=True):
        s = [collector.latencies["scores"][t] for t in nums if t in collector.latencies["scores"]]
        a = [collector.latencies["alerts"][t] for t in nums if t in collector.latencies["alerts"]]
        per_second = _per_second(sent_ns, collector.latencies["scores"], nums)
        busy = {"cpu_cores": used, "cpu_cores_total": round(sum(used.values()), 2)}
        scores.append({**_percentiles(rate, s), **busy, "per_second": per_second})
        alerts.append({**_percentiles(rate, a), "alerts": len(a)})
        summary = {k: v for k, v in scores[-1].items() if k not in ("per_second", "cpu_cores")}
        print(f"{rate:>6} ev/s (sent at {sent_rate}): scores {len(s)}/{len(nums)} {summary}; alerts {alerts[-1]}")
        print(f"        CPU cores while sending: {used}")
    result = {
        "rates": scores,
        "alerts": alerts,
        "seconds_per_rate": seconds_each,
        "achieved_send_rates": achieved,
        "matched_by": collector.matched_by,
        "settings": {
            "batch_size": settings.batch_size,
            "batch_wait_s": settings.batch_wait_s,
            "partitions": settings.partitions,
        },  # fmt: skip
    }
    _write("latency", result)
    return result
