"""The scorer's card writer: fenced card writes from a child process, over the network to the
DynamoDB endpoint, and a child that never outlives its scorer."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

from consumers.card_state import CARD_WRITER_NICENESS, BehaviorStore, CardWriter, StaleStateError, behavior_item
from model.behavior import CardBehavior
from tests.integration.conftest import wait_for
from txguard.clients import Clients

ROOT = Path(__file__).parents[2]


def _card(amounts: list[float]) -> CardBehavior:
    state = CardBehavior()
    for i, amt in enumerate(amounts):
        state.apply(1_546_300_800 + 600 * i, amt, "grocery_pos", (0, i))
    return state


def test_the_child_writes_fenced_cards_and_reports_a_stale_one(clients: Clients) -> None:
    table = clients.settings.behavior_table
    writer = CardWriter(clients.dynamodb_maker(validate=False), table)
    try:
        cards = {f"writer-card-{i:02d}": _card([10.0 + i, 20.0]) for i in range(20)}
        written, error = writer.submit(pickle.dumps(cards)).result(timeout=60)
        assert error is None and sorted(written) == sorted(cards)
        children = multiprocessing.active_children()
        assert len(children) == 1 and children[0].pid != os.getpid()  # written by the child
        # It yields the cores to scoring: the scorer's niceness, plus the writer's.
        assert os.getpriority(os.PRIO_PROCESS, children[0].pid) == os.nice(0) + CARD_WRITER_NICENESS
        stored = BehaviorStore(clients.dynamodb(), table).load_many(cards)
        assert {t: behavior_item(t, s) for t, s in stored.items()} == {
            t: behavior_item(t, s, version=1) for t, s in cards.items()
        }  # the item the codec makes of each state, at version 1
        # A writer that still holds a card's state from before (version 0): refused, and named.
        other = {"writer-card-00": _card([99.0])}
        written, error = writer.submit(pickle.dumps(other)).result(timeout=60)
        assert written == [] and isinstance(error, StaleStateError)
        assert "stored version 1 (2 transactions, up to partition/offset [0, 1]), this write expected 0" in str(error)
    finally:
        writer.close()
    assert multiprocessing.active_children() == []  # stopped, by close


PARENT = """
import multiprocessing, pickle, sys, time
from consumers.card_state import CardWriter
from model.behavior import CardBehavior
from txguard.clients import Clients
from txguard.settings import Settings

clients = Clients(Settings(home=sys.argv[1], namespace=sys.argv[2]))
writer = CardWriter(clients.dynamodb_maker(validate=False), clients.settings.behavior_table)
print(writer.submit(pickle.dumps({"orphan-card": CardBehavior()})).result(timeout=60)[1], flush=True)
print(multiprocessing.active_children()[0].pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited (nobody reaped it yet)


def test_the_child_exits_when_its_scorer_is_killed(clients: Clients) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(clients.settings.home), clients.settings.namespace],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    child = None
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "None"  # written, no error
        child = int(parent.stdout.readline())
        assert _running(child)
        parent.kill()  # SIGKILL: no shutdown code runs in the parent
        parent.wait(10)
        wait_for(lambda: not _running(child), timeout=30, what="the card writer to exit after its scorer")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)
            time.sleep(0.1)
