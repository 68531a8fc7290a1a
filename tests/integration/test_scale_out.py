"""Scale-out: two ``persist`` and two ``scorer`` processes share 4 partitions during a replay;
one of each is killed with ``kill -9`` and restarted. PostgreSQL holds exactly the input rows
and one score each, and every card's DynamoDB item equals its recomputation from PostgreSQL
(``txguard rebuild-behavior``'s code, not written).

The scorers merge their online detectors into one checkpoint: it holds the statistics of
every event either of them learned from (each unflagged event, once), not its last writer's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from consumers.card_state import behavior_item
from consumers.rebuild import recompute
from model.registry import ModelRegistry, save
from model.train import train
from producer.cards import CardProtector
from producer.generator import generate
from producer.history import load_history
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource
from schemas.topics import DLQ, LABELS, TRANSACTIONS
from tests.integration.conftest import pg_count, pg_query, wait_for
from tests.integration.test_crash_recovery import ServiceProcess
from txguard.app import App
from txguard.clients import Clients, setup
from txguard.settings import Settings
from txguard.supervisor import ready_marker

# About 80 s (short) and 120 s (long) on 2 cores: four processes start one after another.
pytestmark = [pytest.mark.integration, pytest.mark.slow]
log = logging.getLogger(__name__)


def comparable(item: dict) -> dict:
    """An item less its write counter (bumped per checkpoint, so it differs between writers)."""
    state = json.loads(item["state"]["S"])
    del state["version"]
    return {**{k: v for k, v in item.items() if k not in ("version", "state")}, "state": state}


@pytest.mark.parametrize(("customers", "end", "at_least", "kill_after"), [
    pytest.param(40, date(2019, 3, 31), 5_000, 1_000, id="short"),
    pytest.param(80, date(2019, 5, 31), 25_000, 2_000, id="long"),
])  # fmt: skip
def test_two_by_two_processes_killed_mid_replay(
    settings: Settings, tmp_path: Path, customers: int, end: date, at_least: int, kill_after: int
) -> None:
    clients = Clients(settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}", "partitions": 4}))
    setup(clients)
    s = clients.settings
    data = tmp_path / "transactions.csv"
    generate(data, customers=customers, start=date(2019, 1, 1), end=end, seed=5)
    protector = CardProtector(App(s).card_key())
    split = datetime(2019, 2, 1)
    model, _ = train(load_history(CsvSource(str(data)), protector, until=split))
    save(model, tmp_path / "model")
    processes = []
    for i, name in enumerate(("persist", "persist", "scorer", "scorer")):
        (tmp_path / str(i)).mkdir()
        processes.append(ServiceProcess(name, s, tmp_path / "model", tmp_path / str(i)))
    try:
        for p in processes:  # one at a time: both of a service share the ready marker
            p.start()
            wait_for(lambda p=p: ready_marker(s, p.name).exists(), 60, f"{p.name} to join")
        topics = Topics(s.topic(TRANSACTIONS), s.topic(LABELS), s.topic(DLQ))
        result: dict = {}
        producer_thread = threading.Thread(
            target=lambda: result.update(stats=replay(CsvSource(str(data)), clients.producer(), topics, protector,
                                                      ReplayOptions(start=split, labels=False, rate=3000))),
        )  # fmt: skip
        producer_thread.start()
        for victim, table in ((processes[0], "transactions"), (processes[3], "scores")):
            stored = pg_count(clients, table)
            wait_for(lambda t=table, n=stored: pg_count(clients, t) > n + kill_after, 120, f"{table} to grow")
            time.sleep(0.5)
            victim.kill9()
            victim.start()
        producer_thread.join()
        sent = result["stats"].accepted
        wait_for(lambda: pg_count(clients, "transactions") >= sent and pg_count(clients, "scores") >= sent,
                 240, f"{sent} rows and scores")  # fmt: skip
    finally:
        for p in processes:
            p.stop()  # SIGTERM: the scorers' last checkpoints write their card states
    assert [p.kills for p in processes] == [1, 0, 0, 1]

    stored = {r[0] for r in pg_query(clients, "SELECT trans_num FROM transactions")}
    scored = pg_query(clients, "SELECT trans_num FROM scores")
    assert len(stored) == sent >= at_least
    assert len(scored) == sent and {r[0] for r in scored} == stored

    ddb = clients.dynamodb()
    pages = ddb.get_paginator("scan").paginate(TableName=s.behavior_table, ConsistentRead=True)
    streamed = {i["card_token"]["S"]: comparable(i) for page in pages for i in page["Items"]}
    conn = clients.pg()
    try:
        expected = {token: comparable(behavior_item(token, state, 1)) for token, state in recompute(conn)}
    finally:
        conn.close()
    assert streamed.keys() == expected.keys()
    assert [t for t in expected if streamed[t] != expected[t]] == []

    # The online detector's checkpoint: both scorers' learning, merged. Flagged events are not
    # learned from; a kill between a save and its offsets' commit would count a batch twice.
    restored = ModelRegistry(str(tmp_path / "model")).load_current()
    trained_n = max(model.online.scaler_.counts.values())
    assert ModelRegistry(str(tmp_path / "model")).online_checkpoint(s.namespace).restore(restored)
    learned_n = max(restored.online.scaler_.counts.values()) - trained_n
    unflagged = pg_query(clients, "SELECT count(*) FROM scores WHERE NOT flagged")[0][0]
    log.info("online checkpoint: %d events learned, %d scored unflagged", learned_n, unflagged)
    assert unflagged <= learned_n <= unflagged + sent // 50
