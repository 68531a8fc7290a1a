"""The scorer's outputs on a fixed input, byte for byte, against a golden file.

The golden file was written by the scorer as it was before its hot path was rewritten
for throughput (column-wise decoding, features and encoding): the rewrite must give
the same feature rows, scores, alerts and card states, to the last bit. A deliberate
change of features or scores regenerates it::

    TXGUARD_REGENERATE_GOLDEN=1 PYTHONPATH=. python -m pytest tests/unit/consumers/test_scorer_golden.py
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson

from consumers.card_state import behavior_item
from consumers.scorer import ScorerService
from model.behavior import CardBehavior
from model.train import train
from producer.cards import CardProtector
from producer.encode import encode_events
from producer.history import load_history
from producer.source import CsvSource
from schemas.behavior import decode_state
from streaming.service import Decoded
from tests.unit.streaming.kafka_fakes import FakeMessage, FakeProducer

PROTECTOR = CardProtector(b"unit-test-key-0123456789")
GOLDEN = Path(__file__).parents[2] / "fixtures" / "scorer_golden.jsonl.gz"


class ItemStore:
    """The scorer's DynamoDB boundary in memory, through the stored item's codec (as DynamoDB would keep it)."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def load_many(self, tokens):
        return {t: CardBehavior.from_dict(decode_state(self.items[t])[1]) for t in tokens if t in self.items}

    def save_many(self, states):
        for token, state in states.items():
            state.version += 1
            self.items[token] = behavior_item(token, state)


def _messages(path: Path) -> list[FakeMessage]:
    chunk = next(CsvSource(str(path)).chunks())
    block = encode_events(chunk.batch, chunk.lines, PROTECTOR)
    return [FakeMessage(partition_=i % 3, offset_=i // 3, value_=v, key_=k)
            for i, (v, k) in enumerate(zip(block.events, block.keys, strict=True))]  # fmt: skip


def _run(kaggle_csv: Path) -> list[dict]:
    """Train on the file, then score it in uneven micro-batches with checkpoints, a redelivered
    batch, a cache emptied by a rebalance, and a cache smaller than the cards: every output as records."""
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    model.metadata["version"] = "golden"  # a version is named after the training time
    producer, store = FakeProducer(), ItemStore()
    scorer = ScorerService("transactions", "scores", "alerts", store, model, producer, cache_capacity=40)  # type: ignore[arg-type]
    messages = _messages(kaggle_csv)
    steps: list[tuple[int, int] | str] = [(0, 1), (1, 97), (97, 250), "flush", (250, 400), "flush",
                                          (350, 400), "revoke", (400, 401), (401, 600), "flush"]  # fmt: skip
    for step in steps:
        if step == "flush":
            scorer.flush()
        elif step == "revoke":
            scorer.cache.clear()  # what a rebalance does to the cards (on_revoke), without the budget's sources
        else:
            start, end = step
            batch = messages[start:end]
            scorer.process([Decoded(m, scorer.decode(m)) for m in batch])  # type: ignore[arg-type]
    records = [{"topic": p["topic"], "key": p["key"].decode(), "value": orjson.loads(p["value"])}
               for p in producer.produced]  # fmt: skip
    states = sorted(store.items.items())
    records += [{"topic": "<state>", "key": t, "value": decode_state(item)[1]} for t, item in states]
    assert scorer.evicted_unsaved > 0  # the cache overflowed with unsaved states: they went through the store
    return records


def _without_write_count(record: dict) -> dict:
    """A card state's ``version`` counts its writes: states evicted ahead of a checkpoint are written more often."""
    if record["topic"] != "<state>":
        return record
    return {**record, "value": {k: v for k, v in record["value"].items() if k != "version"}}


def test_features_scores_alerts_and_card_states_equal_the_golden_file(kaggle_csv):
    records = _run(kaggle_csv)
    if os.environ.get("TXGUARD_REGENERATE_GOLDEN"):
        GOLDEN.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in records) + b"\n", mtime=0))
    golden = [orjson.loads(line) for line in gzip.decompress(GOLDEN.read_bytes()).splitlines()]
    assert sum(r["topic"] == "alerts" for r in golden) > 0 and sum(r["topic"] == "<state>" for r in golden) > 40
    assert len(records) == len(golden)
    for got, expected in zip(records, golden, strict=True):
        # Floats compare exactly: orjson writes the shortest repr that round-trips.
        assert _without_write_count(got) == _without_write_count(expected)
