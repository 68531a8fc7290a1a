"""The embedded broker's CPU per fetch, against how many record batches a partition holds.

Tansu 0.6.0's memory storage keeps each produced record batch as an object, and each fetch
that finds data lists every batch object of the partition to find its offset (then once
more to find that nothing follows), so a fetch costs more the more batches the partition
has ever received. A low-latency consumer (the scorer fetches every 20 ms) pays that at
every fetch. This stage measures it: per size, a one-partition topic is filled with that
many single-record batches, then a consumer fetching as the scorer does reads a trickle of
new records while the broker's own CPU time is taken. Result: ``benchmarks/results/broker.json``::

    {"sizes": [{"stored_batches": ..., "fetches_per_s": ..., "broker_cpu_ms_per_fetch": ...}], ...}

    PYTHONPATH=. python -m benchmarks.run --only broker
"""

from __future__ import annotations

import json
import threading
import time

from confluent_kafka import OFFSET_END, TopicPartition
from confluent_kafka.admin import NewTopic

from benchmarks.cpu import CpuMeter, server_pids
from benchmarks.run import _close_producer, _write
from txguard.clients import Clients
from txguard.settings import Settings

TRICKLE_PER_S = 100  # new records a second while measuring, one batch each
RECORD = b"x" * 1000  # about a transaction's size


class _FetchCounter:
    """A consumer's fetch requests so far, from librdkafka's statistics."""

    def __init__(self) -> None:
        self.fetches = 0

    def __call__(self, stats_json: str) -> None:
        brokers = json.loads(stats_json)["brokers"].values()
        self.fetches = sum(b["req"].get("Fetch", 0) for b in brokers if b.get("nodeid", -1) >= 0)


def _fill(clients: Clients, topic: str, batches: int) -> None:
    """``batches`` records into partition 0, each in a batch of its own (one produce request each)."""
    producer = clients.producer(**{"linger.ms": 0, "batch.num.messages": 1, "compression.type": "none"})
    for i in range(batches):
        producer.produce(topic, RECORD, partition=0)
        if i % 100 == 0:
            producer.poll(0)
    producer.flush(60)
    _close_producer(producer)


def _measure(clients: Clients, settings: Settings, topic: str, seconds: float) -> dict:
    counter = _FetchCounter()
    as_the_scorer = {"fetch.wait.max.ms": settings.fetch_wait_max_ms}
    consumer = clients.consumer(f"bench-broker-{time.time_ns()}", **as_the_scorer,
                                **{"statistics.interval.ms": 200, "stats_cb": counter})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    stop, received = threading.Event(), [0]

    def read() -> None:
        while not stop.is_set():
            received[0] += len(consumer.consume(1000, 0.05))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.0)  # assigned and fetching
    producer = clients.producer(**{"linger.ms": 0, "batch.num.messages": 1, "compression.type": "none"})
    meter = CpuMeter({"broker": server_pids(settings)["broker"]}).start()
    fetches_before, t0, sent = counter.fetches, time.perf_counter(), 0
    while (elapsed := time.perf_counter() - t0) < seconds:
        time.sleep(max(0.0, sent / TRICKLE_PER_S - elapsed))
        producer.produce(topic, RECORD, partition=0)
        producer.poll(0)
        sent += 1
    producer.flush(10)
    wall_s = time.perf_counter() - t0
    broker_s = meter.stop()["broker"]
    _close_producer(producer)
    time.sleep(0.5)  # the last statistics
    fetches = counter.fetches - fetches_before
    stop.set()
    reader.join(5)
    consumer.close()
    return {"fetches_per_s": round(fetches / wall_s, 1), "broker_cores": round(broker_s / wall_s, 3),
            "broker_cpu_ms_per_fetch": round(broker_s / max(fetches, 1) * 1e3, 2),
            "records_read": received[0], "records_sent": sent}  # fmt: skip


def bench_broker(settings: Settings, sizes: list[int], seconds: float = 8.0) -> dict:
    clients = Clients(settings)
    admin = clients.admin()
    rows = []
    for size in sizes:
        topic = settings.namespaced(f"broker-fetch-{size}-{time.time_ns()}")
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        try:
            _fill(clients, topic, size)
            row = {"stored_batches": size, **_measure(clients, settings, topic, seconds)}
        finally:
            admin.delete_topics([topic])[topic].result(30)  # the broker holds it in memory
        print(f"{size:>7} stored batches: {row}", flush=True)
        rows.append(row)
    result = {
        "sizes": rows,
        "trickle_records_per_s": TRICKLE_PER_S,
        "fetch_wait_max_ms": settings.fetch_wait_max_ms,
        "note": "one partition; each size: that many single-record batches stored, then a consumer with the "
        "scorer's fetch.wait.max.ms reads new records arriving at trickle_records_per_s (a batch each). "
        "broker_cpu_ms_per_fetch: the broker's CPU time over the fetch requests librdkafka sent meanwhile "
        "(it includes taking in the trickle, the same at every size: the growth is the fetches').",
    }
    _write("broker", result)
    return result
