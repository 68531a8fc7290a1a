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
from txguard.kafka_properties import extra_kafka_properties

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

    # Kafka connection security (Amazon MSK, any Kafka), for every producer, consumer and admin
    # client txguard creates (txguard.connections.kafka_config).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # PLAIN and SCRAM-SHA-256/512 log in with the user name and password; AWS_MSK_IAM signs
    # OAUTHBEARER tokens with the default AWS credential chain for aws_region.
    kafka_sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"] = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_ca_location: str = ""  # PEM file of the CAs to trust; empty: the system's
    kafka_ssl_certificate_location: str = ""  # client certificate (mutual TLS)
    kafka_ssl_key_location: str = ""
    kafka_ssl_key_password: SecretStr = SecretStr("")
    # Any other librdkafka property, over txguard's own: a JSON object, or the path of a .json or
    # Java .properties file. Secret: it may hold a password.
    kafka_config: SecretStr = SecretStr("")
    # Seconds a process waits at start for the brokers to answer; then it stops with one line
    # (a refused password stops it at once).
    kafka_connect_timeout_s: float = Field(default=15.0, gt=0)

    # PostgreSQL connection security, over the DSN's own: libpq's sslmode and CA file, and RDS IAM
    # authentication (a token from boto3 generate_db_auth_token as the password, for the DSN's
    # host, port and user; TLS is then required).
    postgres_sslmode: Literal["", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = ""
    postgres_sslrootcert: str = ""
    postgres_iam_auth: bool = False

    # Where the embedded stack keeps its state (PostgreSQL data directory, pids, keys).
    home: Path = Path(".txguard")

    # Namespace: prefixes topics and the DynamoDB table, and names the PostgreSQL schema
    # (NAMESPACE_PATTERN; public, information_schema and pg_* refused). Tests use a fresh
    # one each; production leaves it empty (schema "public").
    namespace: str = ""
    partitions: int = Field(default=4, ge=1)
    # Replicas of each topic `txguard setup` creates. None: the broker's default.replication.factor
    # on an external Kafka (Amazon MSK: 3, with min.insync.replicas 2, which a topic of one replica
    # cannot meet: the idempotent producers' writes would be refused), 1 on the embedded broker.
    replication_factor: int | None = Field(default=None, ge=1)

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
    # The longest the scorer's fetch waits at the broker for data (the other services keep
    # librdkafka's 500 ms). Kafka answers as soon as data arrives, so this only paces idle
    # fetches; the embedded broker answers late (at 500 ms, ~100 ms late at the median).
    fetch_wait_max_ms: int = Field(default=20, ge=1, le=500)
    # Exactly-once scores and alerts: the scorer publishes each checkpoint's outputs and its
    # consumed offsets in one Kafka transaction. "auto": on with an external Kafka, off on the
    # embedded broker (Tansu 0.6.0 shows aborted records to read_committed readers, so there
    # scores and alerts stay at-least-once).
    exactly_once: Literal["auto", "on", "off"] = "auto"
    # Added to persist's niceness: on cores it shares with the scorer, the scorer goes first (an
    # alert is waited for; the scored history may trail by seconds). 0: equal shares.
    persist_niceness: int = Field(default=5, ge=0, le=19)

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

    # Metrics and health (Prometheus /metrics, /healthz, /readyz) of each consumer service.
    # The base port: a service listens on metrics_port + its index in SERVICE_NAMES (persist +0,
    # scorer +1, learner +2, retrainer +3), so the services of one `txguard run` never collide and
    # a service has the same port however it was started. 0: no endpoint.
    metrics_port: int = Field(default=0, ge=0, le=65535 - len(SERVICE_NAMES))
    # Loopback by default: anyone who reaches the port reads the metrics (no secret is in them).
    metrics_host: str = "127.0.0.1"
    # /healthz fails once the consumer loop has not come round for this long (a poll, a batch, a
    # checkpoint, or a retry while a sink is down all count).
    health_stale_s: float = Field(default=120.0, gt=0)
    # Log lines as text, or as one JSON object per line (for a log shipper).
    log_format: Literal["text", "json"] = "text"

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

    @model_validator(mode="after")
    def _connection_security_is_complete(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        mechanism = self.kafka_sasl_mechanism
        if sasl and not mechanism:
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_mechanism "
                             "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM)")  # fmt: skip
        if mechanism and not sasl:
            raise ValueError(f"kafka_sasl_mechanism {mechanism} needs kafka_security_protocol SASL_SSL "
                             "(or SASL_PLAINTEXT on a trusted network)")  # fmt: skip
        if mechanism == "AWS_MSK_IAM" and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError("kafka_sasl_mechanism AWS_MSK_IAM needs kafka_security_protocol SASL_SSL")
        if mechanism not in ("", "AWS_MSK_IAM") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(f"kafka_sasl_mechanism {mechanism} needs kafka_sasl_username and kafka_sasl_password")
        if self.postgres_iam_auth and not self.postgres_dsn.get_secret_value():
            raise ValueError("postgres_iam_auth needs postgres_dsn (the RDS host, port, user and database)")
        if self.postgres_iam_auth:
            from psycopg2.extensions import parse_dsn

            try:
                dsn = parse_dsn(self.postgres_dsn.get_secret_value())
            except Exception:  # noqa: BLE001 - psycopg2's ProgrammingError; its text may quote the DSN
                raise ValueError("postgres_dsn does not parse") from None
            if not (dsn.get("host") and dsn.get("user")):
                raise ValueError("postgres_iam_auth needs the RDS host and user in postgres_dsn (the token is theirs)")
        if self.postgres_iam_auth and self.postgres_sslmode in ("disable", "allow"):
            raise ValueError(f"postgres_iam_auth needs TLS: postgres_sslmode {self.postgres_sslmode} is refused")
        extra_kafka_properties(self.kafka_config.get_secret_value())  # a bad one: one line at start
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
    def topic_replication_factor(self) -> int:
        """Replicas for the topics setup creates; -1 asks the broker for its default (Kafka 2.4+)."""
        if self.replication_factor is not None:
            return self.replication_factor
        return -1 if self.kafka_bootstrap else 1

    @property
    def behavior_table(self) -> str:
        return f"{self.namespace}.customer_behavior" if self.namespace else "customer_behavior"

    @property
    def model_location(self) -> str:
        return self.model_path or str(self.home / "model")
