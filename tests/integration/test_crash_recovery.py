"""kill -9 the persist and scorer processes during a replay: nothing lost, nothing doubled.

The services run as real processes (``txguard consume ...``) against the embedded
stack and are killed with SIGKILL at random moments, then restarted. Afterwards
PostgreSQL must hold exactly the input rows and one score each, and every card's
DynamoDB aggregates must equal a batch recomputation from PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from model.registry import save
from model.train import train
from producer.cards import CardProtector
from producer.generator import generate
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import DLQ, LABELS, TRANSACTIONS
from tests.integration.conftest import pg_count, pg_query, wait_for
from txguard.app import App
from txguard.supervisor import ready_marker

pytestmark = pytest.mark.integration


class ServiceProcess:
    """One ``txguard consume`` process that can be killed and restarted."""

    def __init__(self, name: str, settings, model_dir: Path, log_dir: Path):
        self.name, self.settings = name, settings
        self.env = {**os.environ, "TXGUARD_MODEL_PATH": str(model_dir), "TXGUARD_BATCH_SIZE": "2000",
                    "TXGUARD_BATCH_WAIT_S": "0.2", "TXGUARD_COMMIT_INTERVAL_S": "1"}  # fmt: skip
        self.log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        ready_marker(self.settings, self.name).unlink(missing_ok=True)
        argv = [sys.executable, "-m", "txguard.cli", "--home", str(self.settings.home),
                "--namespace", self.settings.namespace, "consume", self.name]  # fmt: skip
        self.proc = subprocess.Popen(argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} died on its own"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()


def _generated(tmp: Path, customers: int, end: date) -> Path:
    path = tmp / "transactions.csv"
    generate(path, customers=customers, start=date(2019, 1, 1), end=end, seed=7)
    return path


def run_crash_scenario(clients, tmp: Path, *, customers: int, end: date, kills: int, seed: int) -> int:
    settings = clients.settings
    data = _generated(tmp, customers, end)
    protector = CardProtector(App(settings).card_key())
    split = datetime(2019, 2, 1)
    model, _ = train(load_history(CsvSource(str(data)), protector, until=split))
    save(model, tmp / "model")

    services = [ServiceProcess(n, settings, tmp / "model", tmp) for n in ("persist", "scorer")]
    for s in services:
        s.start()
    wait_for(lambda: all(ready_marker(settings, s.name).exists() for s in services), 60, "services to join")

    topics = Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))
    result = {}
    producer_thread = threading.Thread(
        target=lambda: result.update(stats=replay(CsvSource(str(data)), clients.producer(), topics, protector,
                                                  ReplayOptions(start=split, labels=False, rate=20_000))),
    )  # fmt: skip
    producer_thread.start()
    rng = random.Random(seed)
    try:
        for _ in range(kills):
            for s in services:
                time.sleep(rng.uniform(0.5, 2.5))
                s.kill9()
                s.start()
        producer_thread.join()
        sent = result["stats"].accepted
        wait_for(lambda: pg_count(clients, "transactions") >= sent and pg_count(clients, "scores") >= sent,
                 300, f"{sent} rows and scores")  # fmt: skip
    finally:
        for s in services:
            s.stop()
    assert all(s.kills == kills for s in services)
    return sent


def assert_exactly_once(clients, data: Path, sent: int) -> None:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(data, convert_options=pacsv.ConvertOptions(include_columns=["trans_num",
                           "trans_date_trans_time"], column_types={"trans_date_trans_time": "string"}))  # fmt: skip
    expected = {t for t, ts in zip(table["trans_num"].to_pylist(), table["trans_date_trans_time"].to_pylist(),
                                   strict=True) if ts >= "2019-02-01"}  # fmt: skip
    assert len(expected) == sent >= 100_000
    for name in ("transactions", "scores"):
        rows = pg_query(clients, f"SELECT trans_num FROM {name}")  # noqa: S608 - fixed names
        assert len(rows) == sent, f"{name}: {len(rows)} rows for {sent} events"
        assert {r[0] for r in rows} == expected


def assert_aggregates_equal_recomputation(clients) -> None:
    truth = {
        card: (n, total, lo, hi, mean, std, first, last)
        for card, n, total, lo, hi, mean, std, first, last in pg_query(
            clients,
            "SELECT card_token, count(*), sum(amt), min(amt), max(amt), avg(amt), coalesce(stddev_samp(amt), 0),"
            " extract(epoch FROM min(event_time))::bigint, extract(epoch FROM max(event_time))::bigint"
            " FROM transactions GROUP BY card_token",
        )
    }
    categories: dict[str, dict[str, int]] = {}
    for card, category, n in pg_query(clients, "SELECT card_token, category, count(*) FROM transactions GROUP BY 1, 2"):
        categories.setdefault(card, {})[category] = n

    ddb = clients.dynamodb()
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=clients.settings.behavior_table)
             for i in page["Items"]]  # fmt: skip
    assert {i["card_token"]["S"] for i in items} == set(truth)
    for item in items:
        n, total, lo, hi, mean, std, first, last = truth[item["card_token"]["S"]]
        assert int(item["txn_count"]["N"]) == n
        assert Decimal(item["amount_sum"]["N"]) == total
        assert Decimal(item["amount_min"]["N"]) == lo and Decimal(item["amount_max"]["N"]) == hi
        assert float(item["amount_mean"]["N"]) == pytest.approx(float(mean), rel=1e-6)
        assert float(item["amount_std"]["N"]) == pytest.approx(float(std), rel=1e-6, abs=1e-6)
        assert (int(item["first_txn_time"]["N"]), int(item["last_txn_time"]["N"])) == (first, last)
        assert {k: int(v["N"]) for k, v in item["category_counts"]["M"].items()} == categories[item["card_token"]["S"]]


def test_kill_9_during_replay_loses_and_doubles_nothing(fresh_clients, tmp_path):
    clients = fresh_clients
    sent = run_crash_scenario(clients, tmp_path, customers=150, end=date(2019, 10, 31), kills=3, seed=1)
    assert_exactly_once(clients, tmp_path / "transactions.csv", sent)
    assert_aggregates_equal_recomputation(clients)


@pytest.mark.slow
def test_kill_9_many_times_during_a_long_replay(fresh_clients, tmp_path):
    """The long variant (`make test-slow`): 321,081 events, ten kills of each service."""
    clients = fresh_clients
    sent = run_crash_scenario(clients, tmp_path, customers=400, end=date(2019, 12, 31), kills=10, seed=2)
    assert_exactly_once(clients, tmp_path / "transactions.csv", sent)
    assert_aggregates_equal_recomputation(clients)
