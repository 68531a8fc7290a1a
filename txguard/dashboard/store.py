"""The dashboard's PostgreSQL reads and its one write, the verdict (with its label on Kafka).

Every query reads the analyst views of ``schemas/sql/013_analyst.sql``; none returns the
whole card token (a pseudonym, shortened for display) and there is no card number to
return: PostgreSQL holds only the masked form.
"""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from schemas.events import LabelEvent
from streaming.producer import ReportingProducer, produce
from txguard.dashboard.live import card_token_prefix

Verdict = Literal["confirmed_fraud", "false_positive"]

ALERT_COLUMNS = ("trans_num", "event_time", "card_token", "card_masked", "merchant", "category", "amt", "state",
                 "city", "score", "reason", "model_version", "is_fraud", "verdict", "verdict_by",
                 "verdict_at")  # fmt: skip
DETAIL_COLUMNS = (*ALERT_COLUMNS, "iforest_score", "online_score", "supervised_score", "learned_score", "threshold",
                  "flagged")  # fmt: skip
HISTORY_COLUMNS = ("trans_num", "event_time", "merchant", "category", "amt", "city", "state", "score", "flagged",
                   "is_fraud", "verdict")  # fmt: skip
HISTORY_ROWS = 20


class UnknownTransaction(LookupError):
    """No such transaction in PostgreSQL."""


class PublishFailed(RuntimeError):
    """The label could not be delivered to Kafka: nothing was stored."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rows(cur: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for values in cur.fetchall():
        row = {name: _jsonable(v) for name, v in zip(columns, values, strict=True)}
        if "card_token" in row:
            row["card"] = card_token_prefix(row.pop("card_token"))
        rows.append(row)
    return rows


def _select(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)  # fixed names from this module, never from a request


def latest_alerts(conn: Any, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` latest alerts (by event time), newest first."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_select(ALERT_COLUMNS)} FROM alerts ORDER BY event_time DESC LIMIT %s", (limit,))  # noqa: S608
        rows = _rows(cur, ALERT_COLUMNS)
    conn.rollback()
    return rows


def alert_detail(conn: Any, trans_num: str, history: int = HISTORY_ROWS) -> dict[str, Any]:
    """One scored transaction with every detector's score, and its card's latest transactions."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_select(DETAIL_COLUMNS)} FROM scored_transactions WHERE trans_num = %s",  # noqa: S608
                    (trans_num,))  # fmt: skip
        found = cur.fetchone()
        if found is None:
            conn.rollback()
            raise UnknownTransaction(trans_num)
        card_token = found[DETAIL_COLUMNS.index("card_token")]
        cur.execute(f"SELECT {_select(HISTORY_COLUMNS)} FROM scored_transactions WHERE card_token = %s"  # noqa: S608
                    " ORDER BY event_time DESC LIMIT %s", (card_token, history))  # fmt: skip
        card_history = _rows(cur, HISTORY_COLUMNS)
    conn.rollback()
    detail = {name: _jsonable(v) for name, v in zip(DETAIL_COLUMNS, found, strict=True)}
    detail["card"] = card_token_prefix(detail.pop("card_token"))
    detail["history"] = card_history
    return detail


class LabelPublisher:
    """Publishes one label at a time and waits for its delivery (a verdict answers only then)."""

    def __init__(self, producer: ReportingProducer, topic: str, timeout_s: float = 10.0):
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self._lock = threading.Lock()  # one in flight: its delivery errors are its own

    def publish(self, label: LabelEvent) -> None:
        with self._lock:
            failed_before = self.producer.delivery_errors()
            # Keyed by card token like the replay's labels: one card's labels stay in order.
            produce(self.producer, self.topic, label.to_json(), label.card_token.encode())
            left = self.producer.flush(self.timeout_s)
            if left:
                self.producer.purge(in_queue=True, in_flight=False)  # not sent: withdraw it
                self.producer.flush(0)
                raise PublishFailed(f"the label was not delivered to {self.topic} within {self.timeout_s:g}s")
            if self.producer.delivery_errors() != failed_before:
                raise PublishFailed(f"the label was not delivered to {self.topic} (see the log)")

    def close(self) -> None:
        self.producer.flush(self.timeout_s)


def record_verdict(conn: Any, publisher: LabelPublisher, trans_num: str, verdict: Verdict,
                   analyst: str) -> dict[str, Any]:  # fmt: skip
    """Store an analyst's verdict and publish it as a label, both or neither.

    The verdict row is written in a transaction that commits only once the label is on
    Kafka; a concurrent verdict on the same transaction waits on the row's lock, so the
    last label published matches the row kept. Raises :class:`UnknownTransaction` (nothing
    done) or :class:`PublishFailed` (rolled back).
    """
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT card_token, event_time FROM transactions WHERE trans_num = %s", (trans_num,))
            found = cur.fetchone()
            if found is None:
                raise UnknownTransaction(trans_num)
            card_token, event_time = found
            cur.execute(
                "INSERT INTO verdicts (trans_num, verdict, analyst, decided_at) VALUES (%s, %s, %s, now())"
                " ON CONFLICT (trans_num) DO UPDATE"
                " SET verdict = EXCLUDED.verdict, analyst = EXCLUDED.analyst, decided_at = EXCLUDED.decided_at"
                " RETURNING decided_at",
                (trans_num, verdict, analyst),
            )
            row = cur.fetchone()
            assert row is not None
            decided_at = row[0]
            label = LabelEvent(trans_num=trans_num, card_token=card_token, event_time=event_time,
                               is_fraud=verdict == "confirmed_fraud")  # fmt: skip
            publisher.publish(label)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return {"trans_num": trans_num, "verdict": verdict, "verdict_by": analyst, "verdict_at": decided_at.isoformat(),
            "label": {"topic": publisher.topic, "is_fraud": label.is_fraud}}  # fmt: skip
