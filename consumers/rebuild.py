"""Recompute the DynamoDB behaviour table (one item per card) from PostgreSQL's ``transactions``.

For a lost or damaged table, or a new aggregate: every stored transaction goes through the
scorer's own update (``model.features.apply_txn``), card by card in event-time order, so the
items equal what streaming wrote. A card's state depends only on that card's events, so the
rows are read card after card (the ``transactions_card_time`` index), each card in event time,
ties in Kafka order (the order the scorer applied them): memory holds one card's state at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions

from consumers.card_state import behavior_item
from model.behavior import CardBehavior
from model.features import Txn, apply_txn, epoch_seconds

log = logging.getLogger(__name__)

# Ties on event time in Kafka order: one card's events share a partition, so offsets order them
# as the scorer saw them.
QUERY = (
    "SELECT card_token, event_time, amt, category, kafka_partition, kafka_offset, trans_num FROM transactions"
    " ORDER BY card_token, event_time, kafka_partition, kafka_offset"
)
# DynamoDB's BatchWriteItem limit.
BATCH_WRITE_ITEMS = 25


@dataclass
class RebuildStats:
    """How far a rebuild has got: rows read, cards written, and its rate."""

    rows: int = 0
    cards: int = 0
    deleted: int = 0  # items of cards with no transaction left in PostgreSQL
    started: float = 0.0
    elapsed_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


def recompute(
    conn: psycopg2.extensions.connection, stats: RebuildStats | None = None, fetch_rows: int = 10_000
) -> Iterator[tuple[str, CardBehavior]]:
    """(card token, state) of every card in ``transactions``, streamed by a server-side cursor."""
    stats = stats if stats is not None else RebuildStats()
    with conn.cursor(name="txguard_rebuild_behavior") as cur:  # named: rows stream from the server
        cur.itersize = fetch_rows
        cur.execute(QUERY)
        token: str | None = None
        state = CardBehavior()
        for card_token, event_time, amt, category, partition, offset, trans_num in cur:
            if card_token != token:
                if token is not None:
                    yield token, state
                token, state = card_token, CardBehavior()
            txn = Txn(card_token, epoch_seconds(event_time), float(amt), category, 0, 0, (partition, offset), trans_num)
            apply_txn(state, txn)
            stats.rows += 1
        if token is not None:
            yield token, state
    conn.commit()


def rebuild(
    conn: psycopg2.extensions.connection,
    dynamodb: Any,
    table: str,
    on_progress: Callable[[RebuildStats], None] | None = None,
    progress_every_s: float = 1.0,
) -> RebuildStats:
    """Write every card's recomputed item into ``table`` (batched, unconditional: run it with the
    scorers stopped), then delete the items of cards PostgreSQL no longer has. Each item gets
    version 1: a scorer that cached an older copy is fenced off by its conditional write and reloads."""
    stats = RebuildStats(started=time.monotonic())
    reported = stats.started
    pending: list[dict] = []
    written: set[str] = set()
    for token, state in recompute(conn, stats):
        pending.append({"PutRequest": {"Item": behavior_item(token, state, version=1)}})
        written.add(token)
        stats.cards += 1
        if len(pending) == BATCH_WRITE_ITEMS:
            _write(dynamodb, table, pending)
            pending = []
        now = time.monotonic()
        stats.elapsed_s = now - stats.started
        if on_progress is not None and now - reported >= progress_every_s:
            on_progress(stats)
            reported = now
    _write(dynamodb, table, pending)
    stats.deleted = _delete_others(dynamodb, table, written)
    stats.elapsed_s = time.monotonic() - stats.started
    if on_progress is not None:
        on_progress(stats)
    log.info("rebuild-behavior: %d cards from %d transactions in %.1f s, %d stale items deleted",
             stats.cards, stats.rows, stats.elapsed_s, stats.deleted)  # fmt: skip
    return stats


def _delete_others(dynamodb: Any, table: str, keep: set[str]) -> int:
    """Delete every item whose card is not in ``keep``; returns how many."""
    stale = [
        item["card_token"]
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="card_token")
        for item in page["Items"]
        if item["card_token"]["S"] not in keep
    ]
    for start in range(0, len(stale), BATCH_WRITE_ITEMS):
        _write(
            dynamodb,
            table,
            [{"DeleteRequest": {"Key": {"card_token": key}}} for key in stale[start : start + BATCH_WRITE_ITEMS]],
        )
    return len(stale)


def _write(dynamodb: Any, table: str, requests: list[dict]) -> None:
    """One BatchWriteItem, resending what DynamoDB left unprocessed (throttling) after a short wait."""
    wait_s = 0.05
    while requests:
        response = dynamodb.batch_write_item(RequestItems={table: requests})
        requests = response.get("UnprocessedItems", {}).get(table, [])
        if requests:
            time.sleep(wait_s)
            wait_s = min(wait_s * 2, 2.0)
