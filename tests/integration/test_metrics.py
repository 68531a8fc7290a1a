"""Metrics, health and JSON logs of the services ``txguard run`` starts, scraped during a replay.

Real processes on the embedded stack: the counts each service reports once its batches
are committed must equal what PostgreSQL holds at the end.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model.registry import ModelRegistry, save
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.source import CsvSource
from tests.conftest import FIXTURES, http_get
from tests.integration.conftest import pg_count, pg_query, wait_for
from tests.integration.scored_data import ROWS
from tests.integration.test_supervisor import RunningSupervisor
from txguard import stack
from txguard.app import App, ReplayRequest
from txguard.cli import main
from txguard.settings import SERVICE_NAMES

pytestmark = pytest.mark.integration

KAGGLE_SLICE = FIXTURES / "kaggle_rows2301_2900.csv"


@pytest.fixture(scope="module")
def model_dir(clients, tmp_path_factory) -> Path:
    protector = CardProtector(App(clients.settings).card_key())
    model, _ = train(load_history(CsvSource(str(KAGGLE_SLICE)), protector))
    path = tmp_path_factory.mktemp("model")
    save(model, path)
    return path


def free_base_port(count: int = len(SERVICE_NAMES)) -> int:
    """A port P with P .. P + count - 1 all free on loopback."""
    for _ in range(50):
        base = stack.free_port()
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError(f"no {count} consecutive free ports")


class Scraper:
    """Reads one service's /metrics as {(sample name, sorted labels): value}."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = http_get(f"{self.url}/metrics")
        assert status == 200
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def running(clients, model_dir, tmp_path) -> Iterator[tuple[RunningSupervisor, dict[str, Scraper]]]:
    base = free_base_port()
    supervisor = RunningSupervisor(clients.settings, model_dir, tmp_path / "run.log",
                                   env={"TXGUARD_METRICS_PORT": str(base), "TXGUARD_LOG_FORMAT": "json"})  # fmt: skip
    try:
        supervisor.wait_until_ready()
        yield supervisor, {name: Scraper(base + SERVICE_NAMES.index(name)) for name in SERVICE_NAMES[:3]}
    finally:
        supervisor.close()


def test_counts_scraped_during_a_replay_equal_postgresql(clients, running, model_dir, tmp_path, capsys):
    supervisor, scrape = running
    persist, scorer = scrape["persist"], scrape["scorer"]
    topic = clients.settings.topic
    from schemas.topics import SCORES, TRANSACTIONS

    def persisted() -> float:
        return persist.value("txguard_events_total", service="persist", topic=topic(TRANSACTIONS),
                             outcome="processed") or 0.0  # fmt: skip

    # A paced replay in a thread; the persist service is scraped all along.
    request = ReplayRequest(str(KAGGLE_SLICE), rate=300, quarantine=tmp_path / "quarantine.jsonl")
    replayed = threading.Thread(target=App(clients.settings).replay, args=(request,), daemon=True)
    replayed.start()
    during = [persisted()]
    while replayed.is_alive():
        during.append(persisted())
    replayed.join()
    wait_for(lambda: pg_count(clients, "scores") >= ROWS, what=f"{ROWS} scores in PostgreSQL")

    # Once committed, every count equals PostgreSQL's: none lost, none counted twice.
    transactions, scores = pg_count(clients, "transactions"), pg_count(clients, "scores")
    alerts = pg_query(clients, "SELECT count(*) FROM scores WHERE flagged")[0][0]
    assert transactions == scores == ROWS and alerts > 0
    wait_for(lambda: persisted() == transactions, 30, "persist's count to reach PostgreSQL's")
    wait_for(lambda: persist.value("txguard_events_total", service="persist", topic=topic(SCORES),
                                   outcome="processed") == scores, 30, "persist's scores count")  # fmt: skip
    wait_for(lambda: scorer.value("txguard_events_total", service="scorer", topic=topic(TRANSACTIONS),
                                  outcome="processed") == scores, 30, "scorer's count")  # fmt: skip
    wait_for(lambda: scorer.value("txguard_alerts_total", service="scorer") == alerts, 30, "the alerts count")
    assert during == sorted(during) and during[-1] <= transactions  # a counter, of committed events only
    assert persist.value("txguard_events_total", service="persist", topic=topic(TRANSACTIONS),
                         outcome="dead_lettered") == 0  # fmt: skip

    samples = scorer.samples()
    assert samples[("txguard_batch_seconds_count", (("service", "scorer"),))] > 0
    assert samples[("txguard_checkpoint_seconds_count", (("service", "scorer"),))] > 0
    version = ModelRegistry.at(str(model_dir)).current_version()
    assert ("txguard_model_version_info", (("learned", ""), ("service", "scorer"), ("shadow", ""),
                                           ("version", version))) in samples  # fmt: skip

    def lags() -> dict[str, float]:
        return {dict(labels)["partition"]: value for (name, labels), value in scorer.samples().items()
                if name == "txguard_consumer_lag"}  # fmt: skip

    wait_for(lambda: lags() == {str(p): 0.0 for p in range(clients.settings.partitions)}, 30, "no lag left")

    for name, service in scrape.items():
        assert http_get(f"{service.url}/healthz")[0] == 200, name
        status, why = http_get(f"{service.url}/readyz")
        assert status == 200 and "holds" in why, (name, why)

    base_port = persist.url.rsplit(":", 1)[1]
    assert main(["--metrics-port", base_port, "health", "--ready"]) == 0  # what a container's health check runs
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["persist", "scorer", "learner"]

    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(60) == 0
    # TXGUARD_LOG_FORMAT=json: every line the supervisor and its services logged is one JSON object.
    lines = [line for line in supervisor.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if not line.startswith("%")]  # %: librdkafka's own lines
    assert len(records) > 10 and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("metrics on http://127.0.0.1:" in r["message"] for r in records)
