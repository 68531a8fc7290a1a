"""Per-card behaviour state: the in-memory cache of the cards this process owns, and
their store in DynamoDB (one item per card, fenced writes, per-card watermarks).

The item shape is ``schemas.behavior``'s; the state itself is ``model.behavior``'s.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from model.behavior import CardBehavior
from schemas.behavior import STATE_PROJECTION, decode_state, encode_item, key

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
})  # fmt: skip


class BehaviorCache(OrderedDict[str, CardBehavior]):
    """Card states of the partitions this process owns, least recently used first out.

    States changed since the last checkpoint are ``dirty``: ``touch`` never evicts them
    (they are not in DynamoDB yet); ``overflow`` names the oldest of them beyond the
    capacity, which the scorer writes to DynamoDB and then drops (``drop_saved``), so
    the cache stays bounded however many cards stream through between checkpoints.
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.dirty: set[str] = set()
        self.saving: set[str] = set()  # being written by a checkpoint in the background: kept until it lands

    def touch(self, tokens: list[str]) -> None:
        for t in tokens:
            self.move_to_end(t)
        self.dirty.update(tokens)
        excess = len(self) - self.capacity
        if excess > 0:
            evict = []
            for t in self:  # oldest first; stop as soon as enough clean states are found
                if t not in self.dirty and t not in self.saving:
                    evict.append(t)
                    if len(evict) == excess:
                        break
            for t in evict:
                del self[t]

    def overflow(self) -> list[str]:
        """The least recently used dirty states beyond the capacity (oldest first)."""
        excess = len(self) - self.capacity
        if excess <= 0:
            return []
        out = []
        for t in self:
            if t in self.dirty:
                out.append(t)
                if len(out) == excess:
                    break
        return out

    def drop_saved(self, tokens: list[str]) -> None:
        """Forget states just written to the store."""
        for t in tokens:
            del self[t]
            self.dirty.discard(t)

    def clear(self) -> None:
        super().clear()
        self.dirty.clear()
        self.saving.clear()


def behavior_item(card_token: str, state: CardBehavior, version: int | None = None) -> dict:
    """The DynamoDB item of one card (``schemas.behavior``'s codec), at ``version``."""
    return encode_item(card_token, state.to_dict(), state.std, state.version if version is None else version)


def encode_states(states: Mapping[str, CardBehavior]) -> dict[str, tuple[dict, int]]:
    """Each state's item at its next version, with the version it was loaded at (the write's condition)."""
    return {token: (behavior_item(token, state, state.version + 1), state.version) for token, state in states.items()}


class StaleStateError(Exception):
    """Another writer updated a card since this process loaded it: reload and retry."""


def _progress(item: Mapping[str, Any]) -> str:
    """How far a stored card item had got: its transactions and the last Kafka position applied."""
    if "state" not in item:
        return "no item"
    state = json.loads(item["state"]["S"])
    return f"{state['count']} transactions, up to partition/offset {state.get('watermark')}"


class BehaviorStore:
    """Per-card behaviour in DynamoDB: batched reads, one write per touched card per batch."""

    def __init__(self, client: Any, table: str, concurrency: int = 8):
        self.client = client
        self.table = table
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ddb-put")

    @staticmethod
    def is_transient(exc: Exception) -> bool:
        if isinstance(exc, BotoCoreError):  # endpoint unreachable, timeouts
            return True
        if isinstance(exc, ClientError):
            return exc.response.get("Error", {}).get("Code", "") in TRANSIENT_CODES
        return False

    def load_many(self, tokens: Iterable[str]) -> dict[str, CardBehavior]:
        keys = [key(t) for t in tokens]
        found: dict[str, CardBehavior] = {}
        for start in range(0, len(keys), 100):
            # Strongly consistent: a card reloaded after a rebalance must show its last write,
            # or the fenced write that follows fails on the version it read.
            chunk = keys[start : start + 100]
            request: dict = {self.table: {"Keys": chunk, "ConsistentRead": True, **STATE_PROJECTION}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    token, state = decode_state(item)
                    found[token] = CardBehavior.from_dict(state)
                request = response.get("UnprocessedKeys") or {}
        return found

    def save_many(self, states: dict[str, CardBehavior]) -> None:
        """Write every touched card once, fenced by its version.

        Each item is put only if its stored version is the one this process loaded
        (or it does not exist yet), and the version is bumped: a scorer that lost the
        card's partition in a rebalance, and still holds old state, gets
        :class:`StaleStateError` instead of overwriting newer aggregates.
        Conditional PutItem, not BatchWriteItem (which takes no conditions) nor
        TransactWriteItems (twice the write cost); the calls run concurrently.
        """
        written, error = self.put_items(encode_states(states))
        for token in written:
            states[token].version += 1
        if error is not None:
            raise error

    def put_items(self, items: Mapping[str, tuple[dict, int]]) -> tuple[list[str], BaseException | None]:
        """``save_many`` of states already encoded (``{token: (item, version it was loaded at)}``),
        from any thread: the tokens written, and the first error (a stale state's first)."""
        futures = {token: self._pool.submit(self._put, token, item, loaded) for token, (item, loaded) in items.items()}
        written: list[str] = []
        errors: list[BaseException] = []
        for token, future in futures.items():
            error = future.exception()
            if error is None:
                written.append(token)
            else:
                errors.append(error)
        stale = [e for e in errors if isinstance(e, StaleStateError)]
        if len(stale) > 1:  # how many there were tells a rebalance's few cards from a lost table
            stale[0] = StaleStateError(f"{stale[0]}; and {len(stale) - 1} more of these {len(items)} cards")
        return written, next(iter(stale or errors), None)

    def _put(self, token: str, item: dict, loaded: int) -> None:
        condition: dict[str, Any]
        if loaded == 0:
            condition = {"ConditionExpression": "attribute_not_exists(card_token)"}
        else:
            condition = {"ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": {"N": str(loaded)}}}  # fmt: skip
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            stored = self._stored(token)
            if stored.get("version") == item["version"] and stored.get("state") == item["state"]:
                # An attempt the client took for failed (a connection lost after the write) had
                # written it, and the SDK's retry found its own write: done, not stale.
                log.info("card %s...: the write had landed before its retry", token[:8])
                return
            found = stored.get("version", {}).get("N", "none")
            raise StaleStateError(f"card {token[:8]}... changed under this scorer (rebalance?): stored version "
                                  f"{found} ({_progress(stored)}), this write expected {loaded} and "
                                  f"brings {_progress(item)}") from exc  # fmt: skip

    def _stored(self, token: str) -> dict:
        """The stored version and state of a card ({} if none)."""
        stored = self.client.get_item(
            TableName=self.table, Key=key(token), ConsistentRead=True,
            ProjectionExpression="version, #s", ExpressionAttributeNames={"#s": "state"},
        )  # fmt: skip
        return stored.get("Item", {})


# The card writer's side (one per child process): its store, made by its initializer.
CARD_WRITER_NICENESS = 10  # added to the scorer's: the writer yields a shared core to it
_child_store: BehaviorStore | None = None


def write_snapshot(store: BehaviorStore, snapshot: bytes) -> tuple[list[str], BaseException | None]:
    """``store.put_items`` of pickled states (``{token: CardBehavior}``, as the caller had them):
    encoded here, off the thread that took the snapshot and goes on changing the states."""
    return store.put_items(encode_states(pickle.loads(snapshot)))


class CardWriter:
    """:func:`write_snapshot` in a child process with its own DynamoDB client.

    botocore spends ~2 ms of Python per PutItem: a checkpoint of a thousand cards written
    by threads of the scorer's own process held its GIL for seconds, and scoring stalled
    meanwhile (latency p99 of seconds). A child process writes them on the other core.
    ``client_factory`` (picklable: e.g. a ``functools.partial`` of ``boto3.client``) makes
    the child's client. The child exits with ``close`` or, if the scorer dies, on its own.
    """

    def __init__(self, client_factory: Callable[[], Any], table: str, concurrency: int = 8):
        self.client_factory, self.table, self.concurrency = client_factory, table, concurrency
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, snapshot: bytes) -> Future[tuple[list[str], BaseException | None]]:
        """Write the pickled states in the child, started at the first call (and again if it died)."""
        try:
            return self._child().submit(_write, snapshot)
        except BrokenProcessPool:
            log.warning("card writer: its process died; starting another")
            self._executor = None
            return self._child().submit(_write, snapshot)

    def _child(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the scorer's process runs librdkafka's threads.
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child,
                initargs=(self.client_factory, self.table, self.concurrency),
            )  # fmt: skip
        return self._executor

    def close(self) -> None:
        """Wait for the writes under way, then stop the child."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _start_child(client_factory: Callable[[], Any], table: str, concurrency: int) -> None:
    global _child_store
    # A Ctrl-C or a SIGTERM to the process group reaches the scorer too, which finishes its
    # checkpoint and then stops this process (a write cut short here would look like a stale card).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Scoring goes first on a busy machine: a checkpoint's writes can wait (the scorer waits for
    # them only when its cache is full), while a writer that takes the cores stalls every alert.
    os.nice(CARD_WRITER_NICENESS)
    _child_store = BehaviorStore(client_factory(), table, concurrency)
    parent = multiprocessing.parent_process()
    assert parent is not None, "the card writer runs in a child process"
    threading.Thread(target=_exit_with, args=(parent.sentinel,), name="scorer-watch", daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    """Exit once the scorer's process has ended, killed or not (its writes are uncommitted)."""
    wait([parent_sentinel])
    os._exit(0)


def _write(snapshot: bytes) -> tuple[list[str], BaseException | None]:
    assert _child_store is not None, "the card writer's store is made by its initializer"
    written, error = write_snapshot(_child_store, snapshot)
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - the scorer gets the error's class and message instead
        error = RuntimeError(f"{type(error).__name__}: {error}")
    return written, error
