"""One settings object for every txguard process.

Values come from ``TXGUARD_*`` environment variables (or a ``.env`` file); CLI flags
override them by passing explicit keyword arguments. An endpoint left empty means
"start the embedded one"; once set, nothing embedded starts for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import TopicSpec

# Every consumer service. `txguard run` and the demo start the first three; the retrainer
# only when there is something for it to act on (TXGUARD_RETRAIN_*).
SERVICE_NAMES: tuple[str, ...] = ("persist", "scorer", "learner", "retrainer")

# A namespace names Kafka topics and consumer groups, a PostgreSQL schema (identifiers
# longer than 63 bytes are truncated, so long names would collide) and files under
# ``home``: lowercase letters, digits and _, a letter first, at most 41 characters.
NAMESPACE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,40}")
# The demo's own namespace: ``txguard demo`` works (and resets) there unless told otherwise.
DEMO_NAMESPACE = "demo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TXGUARD_", env_file=".env", extra="ignore", frozen=True)

    # Endpoints: empty = use the embedded stack.
    kafka_bootstrap: str = ""
    postgres_dsn: SecretStr = SecretStr("")
    dynamodb_endpoint: str = ""
    s3_endpoint: str = ""
    aws_region: str = "us-east-1"

    # Where the embedded stack keeps its state (PostgreSQL data directory, pids, keys).
    home: Path = Path(".txguard")

    # Namespace: prefixes topics and the DynamoDB table, and names the PostgreSQL schema
    # (NAMESPACE_PATTERN; public, information_schema and pg_* refused). Tests use a fresh
    # one each; production leaves it empty (schema "public").
    namespace: str = ""
    partitions: int = Field(default=4, ge=1)

    # Card tokenisation key. Production refuses to start without one; the embedded
    # demo generates one and keeps it under ``home``.
    card_token_key: SecretStr = SecretStr("")
    production: bool = False

    # The largest Kafka message txguard writes or processes, key, value and headers
    # included: the producers' message.max.bytes; consumers fetch at least this much per
    # partition and dead-letter a bigger message as a reference (topic, partition, offset,
    # size, sha256) instead of its bytes, as they do any dead letter that would not fit.
    # librdkafka's default, within the Kafka broker's default limit (1 MiB).
    max_message_bytes: int = Field(default=1_000_000, ge=64 * 1024)
    # The longest CSV line the replay reads, in bytes: a longer one is quarantined as a
    # reference (line, size, sha256), never held in memory whole.
    max_line_bytes: int = Field(default=64 * 1024, ge=1024)

    # Consumer micro-batches: at most batch_size events; a batch waits up to batch_wait_s for its
    # first event, then closes with what the consumer had already fetched (streaming.batch.take_batch).
    batch_size: int = Field(default=5000, ge=1)
    batch_wait_s: float = Field(default=0.5, gt=0)
    # Seconds between checkpoints (state to DynamoDB, producer flush, offset commit):
    # longer amortises the per-card writes, shorter replays less after a crash.
    commit_interval_s: float = Field(default=10.0, ge=0)
    # librdkafka's default (45 s) makes every group join slow on a local broker.
    session_timeout_ms: int = 6000
    # Exactly-once scores and alerts: the scorer publishes each checkpoint's outputs and its
    # consumed offsets in one Kafka transaction. "auto": on with an external Kafka, off on the
    # embedded broker (Tansu 0.6.0 shows aborted records to read_committed readers, so there
    # scores and alerts stay at-least-once).
    exactly_once: Literal["auto", "on", "off"] = "auto"

    # `txguard run` (the supervisor). On SIGTERM/SIGINT each service finishes its batch,
    # checkpoints and exits; one still running after this many seconds is killed (SIGKILL).
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    # A service that dies is restarted after a back-off (1 s, doubling, at most 30 s); the
    # restart_limit-th restart of one service within restart_window_s stops everything instead.
    restart_limit: int = Field(default=5, ge=0)
    restart_window_s: float = Field(default=600.0, gt=0)

    # Scoring.
    alert_threshold: float | None = None  # None: use the threshold calibrated at training
    # The alert budget a training sets: alerts per event-day the analysts can handle.
    # None: the labelled frauds per day of the training window.
    alerts_per_day: float | None = Field(default=None, gt=0)
    # The model registry: a directory, or an s3://bucket/prefix shared by scorers on several
    # machines. Empty: ``home``/model.
    model_path: str = ""
    # Seconds between the scorer's looks at the registry's CURRENT/SHADOW pointers (hot swap)
    # and at the learner's latest snapshot.
    model_poll_s: float = Field(default=5.0, ge=0)
    # Seconds the learner waits for a labelled event's score to reach PostgreSQL before
    # it dead-letters the label.
    label_join_timeout_s: float = Field(default=120.0, gt=0)

    # Retraining (``txguard retrain``, the ``retrainer`` service): on the history in
    # PostgreSQL, the new version registered as the shadow. Days are event-days.
    retrain_every_days: float | None = Field(default=None, gt=0)  # the schedule; None: none
    retrain_on_drift: bool = False  # a detected drift starts one
    # No retrain sooner than this after the previous one: drift fires in bursts.
    retrain_min_interval_days: float = Field(default=1.0, ge=0)
    retrain_window_days: float | None = Field(default=None, gt=0)  # train on the last N days only; None: all
    # How long labels take to arrive (the replay's --label-delay-days): a retrain uses
    # only the labels of events at least this much older than its cut-off.
    label_delay_days: float = Field(default=7.0, ge=0)

    # The dashboard (``txguard dashboard``). Its password: HTTP Basic, any user name (recorded
    # as who gave a verdict) with this as the password. Required to listen on anything but
    # loopback; once set, every request needs it, on loopback too.
    dashboard_token: SecretStr = SecretStr("")
    # How many of the latest alerts the page loads from PostgreSQL when it opens.
    dashboard_alerts: int = Field(default=100, ge=1, le=5000)

    @field_validator("namespace")
    @classmethod
    def _namespace_is_safe(cls, name: str) -> str:
        if name and not NAMESPACE_PATTERN.fullmatch(name):
            raise ValueError(f"namespace {name!r} is not allowed: use 1-41 lowercase letters, digits or _, starting "
                             "with a letter (it names topics, a PostgreSQL schema and files)")  # fmt: skip
        if name in ("public", "information_schema") or name.startswith("pg_"):
            raise ValueError(f"namespace {name!r} is reserved by PostgreSQL (public, information_schema, pg_*): "
                             "choose another name, or none for the default namespace")  # fmt: skip
        return name

    @model_validator(mode="after")
    def _an_accepted_row_fits_in_a_message(self) -> Self:
        # A row's event JSON is at most twice its line (escaped quotes and backslashes)
        # plus the fixed keys: every accepted row must be sendable.
        if 2 * self.max_line_bytes + 4096 > self.max_message_bytes:
            most = (self.max_message_bytes - 4096) // 2
            raise ValueError(f"max_line_bytes ({self.max_line_bytes:,}) must be at most (max_message_bytes - 4096) / 2 "
                             f"({most:,}): a row's event can be twice its line")  # fmt: skip
        return self

    @property
    def pg_schema(self) -> str:
        return self.namespace or "public"

    def namespaced(self, name: str) -> str:
        """``name`` inside this namespace (topics, consumer groups)."""
        return f"{self.namespace}.{name}" if self.namespace else name

    def topic(self, spec: TopicSpec) -> str:
        return self.namespaced(spec.name)

    @property
    def transactions(self) -> bool:
        """Whether the scorer publishes in Kafka transactions (``exactly_once``, resolved)."""
        return self.exactly_once == "on" or (self.exactly_once == "auto" and bool(self.kafka_bootstrap))

    @property
    def behavior_table(self) -> str:
        return f"{self.namespace}.customer_behavior" if self.namespace else "customer_behavior"

    @property
    def model_location(self) -> str:
        return self.model_path or str(self.home / "model")
