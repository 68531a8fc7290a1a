"""Replicas of the topics setup creates: the broker's default on an external Kafka (MSK's min.insync.replicas 2
refuses writes to a topic of one replica), one on the embedded broker, or what TXGUARD_REPLICATION_FACTOR says."""

import pytest
from pydantic import ValidationError

from txguard.settings import Settings


def test_external_kafka_gets_the_brokers_default():
    assert Settings(kafka_bootstrap="b-1.msk.example:9098").topic_replication_factor == -1


def test_the_embedded_broker_gets_one():
    assert Settings(kafka_bootstrap="").topic_replication_factor == 1


def test_a_setting_overrides_both(monkeypatch):
    monkeypatch.setenv("TXGUARD_REPLICATION_FACTOR", "3")
    assert Settings(kafka_bootstrap="b-1.msk.example:9098").topic_replication_factor == 3
    with pytest.raises(ValidationError):
        Settings(replication_factor=0)
