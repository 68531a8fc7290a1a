"""In-process scorer throughput: ``ScorerService.process`` alone, no broker, no DynamoDB.

Trains on the first rows of a transactions CSV, then scores the next ``--events``
rows as the producer encodes them, in micro-batches of ``--batch`` messages, with a
producer that only collects the messages and card states kept in memory. What is
timed is decode + features + ensemble + explanations + encoding of scores/alerts, in
wall time and in CPU time (steadier on a shared machine)::

    PYTHONPATH=. python -m benchmarks.scorer --data FILE [--train-rows 100000] [--events 50000]

With ``--distinct-cards N`` it streams N events of N different cards instead (the
file's events as templates, each under a new card token), through a card cache of
``--cache-capacity`` states and a store that drops what it is given, and reports the
scorer's resident memory: the cache stays bounded, its overflow written ahead of
the checkpoint (``evicted_unsaved``)::

    PYTHONPATH=. python -m benchmarks.scorer --data FILE --train-rows 20000 --distinct-cards 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from benchmarks.cpu import memory_mb
from consumers.scorer import ScorerService
from model.behavior import CardBehavior
from model.train import train
from producer.cards import CardProtector
from producer.encode import encode_events
from producer.history import load_history
from producer.source import CsvSource
from streaming.service import Decoded

PROTECTOR = CardProtector(b"benchmark-key-0123456789")


class _Message:
    __slots__ = ("_offset", "_partition", "_value")

    def __init__(self, partition: int, offset: int, value: bytes):
        self._partition, self._offset, self._value = partition, offset, value

    def topic(self) -> str:
        return "transactions"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def headers(self) -> None:
        return None


class _CollectingProducer:
    def __init__(self) -> None:
        self.produced = 0

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, **_: Any) -> None:
        self.produced += 1

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return 0


class _MemoryStore:
    def __init__(self) -> None:
        self.saved: dict[str, CardBehavior] = {}

    def load_many(self, tokens: list[str]) -> dict[str, CardBehavior]:
        return {t: self.saved[t] for t in tokens if t in self.saved}

    def save_many(self, states: dict[str, CardBehavior]) -> None:
        self.saved.update(states)


class _DroppingStore:
    """DynamoDB as far as the scorer's memory is concerned: nothing stored here, nothing to load."""

    def __init__(self) -> None:
        self.saved = 0

    def load_many(self, tokens: list[str]) -> dict[str, CardBehavior]:
        return {}

    def save_many(self, states: dict[str, CardBehavior]) -> None:
        self.saved += len(states)


def _distinct_cards(scorer: ScorerService, templates: list[_Message], cards: int, batch: int) -> dict:
    """Stream ``cards`` events, each of a card never seen before, in batches of ``batch``."""
    rss_before = memory_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for start in range(0, cards, batch):
        messages = []
        for i in range(start, min(start + batch, cards)):
            template = templates[i % len(templates)]
            doc = orjson.loads(template.value())
            doc["card_token"] = doc["trans_num"] = f"{i:032x}"
            messages.append(_Message(i % 3, i // 3, orjson.dumps(doc)))
        scorer.process([Decoded(m, e) for m, e in zip(messages, scorer.decode_many(messages), strict=True)])  # type: ignore[arg-type]
    scorer.flush()
    return {
        "distinct_cards": cards,
        "cache_capacity": scorer.cache.capacity,
        "cache_size_at_end": len(scorer.cache),
        "evicted_unsaved": scorer.evicted_unsaved,
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - cpu0, 2),
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(memory_mb(), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _messages(path: Path, skip: int, count: int) -> list[_Message]:
    out: list[_Message] = []
    seen = 0
    for chunk in CsvSource(str(path)).chunks():
        block = encode_events(chunk.batch, chunk.lines, PROTECTOR)
        for value in block.events:
            if seen >= skip:
                out.append(_Message(len(out) % 3, len(out) // 3, value))
                if len(out) == count:
                    return out
            seen += 1
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--distinct-cards", type=int, default=0, help="stream this many cards, one event each")
    parser.add_argument("--cache-capacity", type=int, default=200_000, help="the scorer's card cache (states)")
    args = parser.parse_args(argv)

    history = load_history(CsvSource(str(args.data)), PROTECTOR)
    history = history.iloc[: args.train_rows]
    t0 = time.perf_counter()
    model, _ = train(pd.DataFrame(history))
    train_s = time.perf_counter() - t0
    messages = _messages(args.data, args.train_rows, args.events)

    producer = _CollectingProducer()
    if args.distinct_cards:
        store = _DroppingStore()
        scorer = ScorerService("transactions", "scores", "alerts", store, model, producer,  # type: ignore[arg-type]
                               cache_capacity=args.cache_capacity)  # fmt: skip
        result = {"train_rows": len(history), **_distinct_cards(scorer, messages, args.distinct_cards, args.batch)}
        print(json.dumps(result))
        return result
    scorer = ScorerService("transactions", "scores", "alerts", _MemoryStore(), model, producer)  # type: ignore[arg-type]
    it = iter(messages)
    t0, cpu0 = time.perf_counter(), time.process_time()
    while batch := list(islice(it, args.batch)):
        decoded = scorer.decode_many(batch)  # type: ignore[arg-type]  # as the loop decodes a batch
        scorer.process([Decoded(m, e) for m, e in zip(batch, decoded, strict=True)])  # type: ignore[arg-type]
        scorer.flush()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    result = {
        "train_rows": len(history),
        "train_s": round(train_s, 1),
        "events": scorer.scored,
        "alerts": scorer.alerted,
        "batch": args.batch,
        "seconds": round(seconds, 2),
        "events_per_s": round(scorer.scored / seconds),
        # CPU time says more than wall time on a machine shared with other work.
        "cpu_seconds": round(cpu_seconds, 2),
        "events_per_cpu_s": round(scorer.scored / cpu_seconds),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
