"""A labelled generated history and the model trained on it, for the model's tests (one per module)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from model.train import train
from producer.cards import CardProtector
from producer.generator import generate
from producer.history import load_history
from producer.source import CsvSource

PROTECTOR = CardProtector(b"unit-test-key-0123456789")


@pytest.fixture(scope="module")
def labelled_history(tmp_path_factory) -> pd.DataFrame:
    """Four generated months of 150 cards: ~44k events, ~260 frauds."""
    path = tmp_path_factory.mktemp("generated") / "generated.csv"
    generate(path, customers=150, start=date(2019, 1, 1), end=date(2019, 4, 30), seed=3)
    return load_history(CsvSource(str(path)), PROTECTOR)


@pytest.fixture(scope="module")
def supervised_model(labelled_history):
    return train(labelled_history)
