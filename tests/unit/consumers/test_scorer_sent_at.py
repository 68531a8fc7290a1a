"""The send time the producer stamped on a transaction travels onto its score and its alert."""

import dataclasses

import orjson

from consumers.scorer import ScorerService
from model.train import train
from producer.history import load_history
from producer.source import CsvSource
from schemas.topics import SENT_AT_HEADER
from streaming.batch import BatchProcessor
from streaming.stats import LoopStats
from tests.unit.consumers.test_scorer import PROTECTOR, MemoryStore, transaction_messages
from tests.unit.streaming.kafka_fakes import FakeProducer


def test_scores_and_alerts_carry_their_transactions_send_time_and_none_where_it_had_none(kaggle_csv):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    producer = FakeProducer()
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, producer, threshold=0.3)
    messages = [dataclasses.replace(m, headers_=[("other", b"x"), (SENT_AT_HEADER, b"%d" % (10**18 + i))])
                if i % 5 else m for i, m in enumerate(transaction_messages(kaggle_csv))]  # fmt: skip
    batches = BatchProcessor(scorer, producer, "dlq", retry=None, stats=LoopStats())  # type: ignore[arg-type]
    batch, _ = batches.decode(messages)  # type: ignore[arg-type]
    scorer.process(batch)

    sent_at = {scorer.decode(m).trans_num: dict(m.headers() or []).get(SENT_AT_HEADER) for m in messages}
    for topic in ("scores", "alerts"):
        produced = [p for p in producer.produced if p["topic"] == topic]
        assert produced and any(p.get("headers") is None for p in produced) or topic == "alerts"
        for p in produced:
            expected = sent_at[orjson.loads(p["value"])["trans_num"]]
            assert p.get("headers") == (None if expected is None else [(SENT_AT_HEADER, expected)])
    assert len(producer.produced) == len(messages) + scorer.alerted > len(messages)
