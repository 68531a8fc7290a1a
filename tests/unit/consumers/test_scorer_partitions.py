"""The scorer tells the alert budget which partition each event came from, and which partitions it reads."""

import copy

from consumers.scorer import ScorerService
from model.features import epoch_seconds
from model.train import train
from producer.history import load_history
from producer.source import CsvSource
from tests.unit.consumers.test_scorer import PROTECTOR, MemoryStore, score_all, transaction_messages
from tests.unit.streaming.kafka_fakes import FakeProducer


def test_the_budget_waits_for_the_assigned_partitions_and_forgets_them_on_revocation(kaggle_csv):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, FakeProducer())
    scorer.on_assign([0, 1, 2, 3])
    messages = transaction_messages(kaggle_csv)  # partitions 0, 1 and 2
    score_all(scorer, messages)
    budget = scorer.model.budget
    assert budget is not None
    days = [(m.partition(), epoch_seconds(scorer.decode(m).event_time) // 86_400) for m in messages]
    for partition in (0, 1, 2):  # the latest event-day read from each partition
        assert budget.source_days_[partition] == max(d for p, d in days if p == partition)
    assert budget.closed_through_ == min(d for _, d in days) - 1  # partition 3 is assigned, unread: no day complete
    scorer.on_revoke()
    assert budget.source_days_ == {}

    scorer.on_assign([0, 1, 2, 3])
    swapped = copy.deepcopy(model)  # a version promoted mid-stream: its budget has not seen the assignment
    swapped.budget.forget_sources()
    scorer.model = swapped
    score_all(scorer, messages[:300], cut=100)
    assert set(swapped.budget.source_days_) == {0, 1, 2, 3} and swapped.budget.source_days_[3] < 0


def test_a_scorer_reading_some_of_the_partitions_sets_its_budget_share(kaggle_csv):
    model, _ = train(load_history(CsvSource(str(kaggle_csv)), PROTECTOR))
    scorer = ScorerService("transactions", "scores", "alerts", MemoryStore(), model, FakeProducer(), partition_count=4)
    scorer.on_assign([1, 3])
    assert scorer.model.budget is not None and scorer.model.budget.share == 0.5
