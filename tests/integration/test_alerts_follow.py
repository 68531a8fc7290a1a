"""``txguard alerts --follow`` prints the alerts published after it starts, and none before."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime

import pytest

from schemas.events import AlertEvent
from schemas.topics import ALERTS
from streaming.producer import produce
from txguard.console import ALERT_HEADER

pytestmark = pytest.mark.integration


def publish_per_partition(clients, reason: str, count: int = 1) -> None:
    """``count`` alerts on every partition, in one batch each, with ``reason`` and their partition number."""
    settings = clients.settings
    producer = clients.producer()
    for partition in [p for p in range(settings.partitions) for _ in range(count)]:
        alert = AlertEvent(trans_num=uuid.uuid4().hex, card_token=uuid.uuid4().hex, card_masked="411111******1111",
                           event_time=datetime(2020, 1, 1, 12, partition), amt=42.0, category="misc_net",
                           merchant="fraud_Test", score=0.99, reason=f"{reason} {partition}",
                           model_version="test")  # fmt: skip
        produce(producer, settings.topic(ALERTS), alert.to_json(), alert.card_token.encode(), partition=partition)
    assert producer.flush(10) == 0


def test_follow_prints_only_the_alerts_published_after_it_started(fresh_clients):
    settings = fresh_clients.settings
    # Batches of several: Tansu reports the end of a partition as its last batch's first offset + 1.
    publish_per_partition(fresh_clients, "before", count=5)
    argv = [sys.executable, "-m", "txguard.cli", "--home", str(settings.home), "--namespace", settings.namespace,
            "alerts", "--follow", "--limit", str(settings.partitions)]  # fmt: skip
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert follower.stdout is not None
        # The header comes once the follower holds the end of every partition.
        assert follower.stdout.readline().rstrip("\n") == ALERT_HEADER
        publish_per_partition(fresh_clients, "after")
        # It exits after --limit lines; an alert from before would come first on its partition,
        # so among them.
        out, _ = follower.communicate(timeout=60)
        assert follower.returncode == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    reasons = sorted(line.split("  ")[-1] for line in out.splitlines())
    assert reasons == [f"after {p}" for p in range(settings.partitions)]
