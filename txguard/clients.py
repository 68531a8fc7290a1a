"""Client construction from settings, and idempotent setup of topics, tables and views."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import date
from functools import partial
from importlib import resources

import boto3
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg2 import sql

from schemas.analyst import ANALYST_ROLE, ANALYST_VIEWS
from schemas.behavior import table_definition
from schemas.topics import ALL_TOPICS
from streaming.producer import ReportingProducer
from txguard.connections import PostgresConnector, aws_client_options, check_kafka, kafka_config
from txguard.settings import DEMO_NAMESPACE, SERVICE_NAMES, Settings
from txguard.stack import Endpoints, endpoints

log = logging.getLogger(__name__)

# The comment a reset puts on its PostgreSQL schema: a teardown drops no schema without it.
SCRATCH_MARK = "txguard scratch namespace: txguard demo deletes and recreates it"
# The demo's and the benchmarks' own namespaces: theirs even unmarked (made before the mark).
SCRATCH_NAMESPACES = (DEMO_NAMESPACE, "bench")


# The topics made on the embedded broker, which keeps them in memory: `stack up` makes them again.
TOPICS_RECORD = "kafka-topics.json"


class TeardownRefused(Exception):
    """A teardown that could delete data that is not the demo's: nothing was deleted."""


class Clients:
    """Factories for every external client, all from one settings object."""

    def __init__(self, settings: Settings, ep: Endpoints | None = None):
        self.settings = settings
        self.endpoints = ep or endpoints(settings)
        self.pg_connect = PostgresConnector(settings, self.endpoints.postgres_dsn)
        self._kafka_answered = False

    # Kafka: every client gets kafka_config's connection settings (TLS, SASL, TXGUARD_KAFKA_CONFIG)
    # over txguard's tuning, and the caller's overrides over both.
    def kafka_config(self) -> dict:
        """The connection properties every Kafka client of these settings shares."""
        return kafka_config(self.settings, self.endpoints.kafka_bootstrap)

    def check_kafka(self) -> None:
        """Fail with one line (:class:`txguard.connections.KafkaUnavailable`) unless the brokers answer
        with these credentials; once per Clients, before its first Kafka client."""
        if not self._kafka_answered:
            check_kafka(self.kafka_config(), self.settings.kafka_connect_timeout_s)
            self._kafka_answered = True

    def producer(self, **overrides) -> ReportingProducer:
        self.check_kafka()
        conf = {
            # Same key -> same partition as Kafka's Java clients (murmur2), so other
            # producers of the same topic agree on where a card lives.
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 200_000,
            "queue.buffering.max.kbytes": 64 * 1024,  # bounds the producer's memory
            # One limit for every message txguard writes; the dead-letter writer and the
            # consumer loop read it back from the producer (streaming.producer.message_limit).
            "message.max.bytes": self.settings.max_message_bytes,
        }
        return ReportingProducer({**conf, **self.kafka_config(), **overrides})

    def consumer(self, group: str, **overrides) -> Consumer:
        self.check_kafka()
        # Fetch at least one message of the largest size any txguard producer writes; the
        # loop dead-letters a bigger one (from another producer) as a reference.
        partition_fetch = max(8 << 20, self.settings.max_message_bytes)
        fetch = max(64 << 20, self.settings.max_message_bytes)
        conf = {
            "group.id": self.settings.namespaced(group),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # never the outputs of an aborted scorer transaction
            "session.timeout.ms": self.settings.session_timeout_ms,
            "heartbeat.interval.ms": max(self.settings.session_timeout_ms // 6, 100),
            # Eager rebalancing: every partition is revoked and reassigned from its committed
            # offset, so a checkpoint that fails on revocation cannot strand processed events.
            "partition.assignment.strategy": "range",
            "fetch.max.bytes": fetch,
            "max.partition.fetch.bytes": partition_fetch,
            "receive.message.max.bytes": max(100_000_000, fetch + (1 << 20)),  # librdkafka: >= fetch + 512
        }
        return Consumer({**conf, **self.kafka_config(), **overrides})

    def admin(self) -> AdminClient:
        self.check_kafka()
        return AdminClient(self.kafka_config())

    # PostgreSQL: pg_connect (TLS and RDS IAM from settings) opens every connection.
    def pg(self):
        """A connection whose search_path is the namespace's schema."""
        conn = self.pg_connect()
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.settings.pg_schema)))
        conn.commit()
        return conn

    # AWS: the default credential chain, the settings' region, adaptive retries.
    def _aws(self, service: str, endpoint: str, *, validate: bool = True):
        return boto3.client(service, **aws_client_options(self.settings, endpoint, validate=validate))

    def dynamodb(self, *, validate: bool = True):
        """``validate=False`` for the scorer's card writes: botocore's request validation is a good
        part of each PutItem's client CPU, and the items come from schemas.behavior's codec."""
        return self.dynamodb_maker(validate=validate)()

    def dynamodb_maker(self, *, validate: bool = True) -> partial:
        """What makes :meth:`dynamodb`'s client, picklable: for a child process to make its own."""
        options = aws_client_options(self.settings, self.endpoints.dynamodb_endpoint, validate=validate)
        return partial(boto3.client, "dynamodb", **options)

    def s3(self):
        return self._aws("s3", self.endpoints.s3_endpoint)


def setup(clients: Clients) -> dict[str, list[str]]:
    """Create topics, apply migrations, create the DynamoDB table, grant the analysts' role
    its views. Safe to run again."""
    return {
        "topics": create_topics(clients),
        "migrations": migrate(clients),
        "analyst_grants": grant_analyst(clients),  # after the migrations: a view added later gets its grant
        "tables": create_behavior_table(clients),
    }


def create_topics(clients: Clients) -> list[str]:
    settings = clients.settings
    admin = clients.admin()
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [NewTopic(settings.topic(t), settings.partitions, settings.topic_replication_factor) for t in ALL_TOPICS]
    created = _create(admin, [t for t in wanted if t.topic not in existing])
    if not settings.kafka_bootstrap:
        _record_topics(settings, {t.topic: settings.partitions for t in wanted})
    return created


def _record_topics(settings: Settings, topics: dict[str, int]) -> None:
    path = settings.home / TOPICS_RECORD
    recorded = json.loads(path.read_text()) if path.exists() else {}
    if {**recorded, **topics} != recorded:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({**recorded, **topics}, indent=2, sort_keys=True))
        tmp.replace(path)


def restore_topics(clients: Clients) -> list[str]:
    """Make again the topics recorded under ``home`` (every namespace set up on the embedded
    broker) that the broker lacks: Tansu keeps them in memory, so a `stack down` loses them."""
    path = clients.settings.home / TOPICS_RECORD
    if clients.settings.kafka_bootstrap or not path.exists():
        return []
    admin = clients.admin()
    existing = set(admin.list_topics(timeout=10).topics)
    return _create(admin, [NewTopic(name, n, 1) for name, n in json.loads(path.read_text()).items()
                           if name not in existing])  # fmt: skip


def _create(admin: AdminClient, topics: list[NewTopic]) -> list[str]:
    """Create ``topics``; one that another process created meanwhile is fine. Returns those created here."""
    created = []
    for topic, future in (admin.create_topics(topics) if topics else {}).items():
        try:
            future.result(timeout=15)
            created.append(topic)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created


def unconsumed(clients: Clients, idle_s: float = 3.0, cap: int = 100_000) -> dict[str, int]:
    """Per consumer group on the broker: the events after its committed offsets, not yet consumed.

    Counted by reading them (up to ``cap`` a group, then "at least"): Tansu's watermarks are
    not usable (0.6: the high watermark counts record batches, ListOffsets answers -1001).
    """
    admin = clients.admin()
    groups = sorted(g.group_id for g in admin.list_consumer_groups(request_timeout=10).result(timeout=15).valid)
    lag = {}
    for group in groups:
        request = [ConsumerGroupTopicPartitions(group)]
        offsets = admin.list_consumer_group_offsets(request, request_timeout=10)[group].result(timeout=15)
        committed = {(tp.topic, tp.partition): tp.offset for tp in offsets.topic_partitions or []}
        # Every partition of the topics it reads: one it never committed on is unread from the start.
        metadata = admin.list_topics(timeout=10).topics
        start = [TopicPartition(topic, p, committed.get((topic, p), -1) if committed.get((topic, p), -1) >= 0
                                else OFFSET_BEGINNING)
                 for topic in sorted({t for t, _ in committed}) if topic in metadata
                 for p in sorted(metadata[topic].partitions)]  # fmt: skip
        if not start:
            continue
        # A reader of its own, outside any group (it never subscribes, so never joins or commits).
        reader = clients.consumer(f"txguard-count-{uuid.uuid4().hex[:8]}")
        try:
            reader.assign(start)
            count, last = 0, time.monotonic()
            while count < cap and time.monotonic() - last < idle_s:
                batch = [m for m in reader.consume(10_000, timeout=0.5) if m.error() is None]
                if batch:
                    count, last = count + len(batch), time.monotonic()
            lag[group] = count
        finally:
            reader.close()
    return lag


def migrate(clients: Clients, upto: int | None = None) -> list[str]:
    """Apply ``schemas/sql/NNN_*.sql`` in order, once each, recorded in ``schema_migrations``.

    ``upto``: stop after that version (the benchmarks measure a schema before a migration).
    """
    schema = clients.settings.pg_schema
    files = sorted(
        (p for p in resources.files("schemas").joinpath("sql").iterdir() if p.name.endswith(".sql")),
        key=lambda p: p.name,
    )
    applied = []
    conn = clients.pg_connect()
    try:
        with conn, conn.cursor() as cur:
            # One migrator at a time, even when several services start together.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"txguard-migrate-{schema}",))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for path in files:
                version = int(path.name.split("_", 1)[0])
                if version in done or (upto is not None and version > upto):
                    continue
                cur.execute(path.read_text())
                cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
                applied.append(path.name)
    finally:
        conn.close()
    return applied


def grant_analyst(clients: Clients) -> list[str]:
    """Let the read-only role ``txguard_analyst``, where it exists, read the namespace's analyst
    views (and nothing else); returns the views it could not read before.

    The embedded stack creates the role; on an external server (RDS) a DBA does, once, and
    the next ``txguard setup`` grants. The views run with their owner's rights, so the role
    needs no right on the tables behind them.
    """
    schema = clients.settings.pg_schema
    conn = clients.pg_connect()
    granted = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,))
            if cur.fetchone() is None:
                log.info("no role %s on this PostgreSQL: no analyst grants (README, Tableau: a DBA creates it)",
                         ANALYST_ROLE)  # fmt: skip
                return []
            role, namespace = sql.Identifier(ANALYST_ROLE), sql.Identifier(schema)
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(namespace, role))
            for view in ANALYST_VIEWS:
                cur.execute("SELECT has_table_privilege(%s, format('%%I.%%I', %s::text, %s::text), 'SELECT')",
                            (ANALYST_ROLE, schema, view))  # fmt: skip
                if cur.fetchone()[0]:
                    continue
                cur.execute(sql.SQL("GRANT SELECT ON {}.{} TO {}").format(namespace, sql.Identifier(view), role))
                granted.append(view)
    finally:
        conn.close()
    return granted


def refresh_analyst_views(connect, upto: date | None = None,  # noqa: ANN001 - () -> psycopg2 connection
                          rebuild: bool = False) -> date | None:  # fmt: skip
    """Roll up the days completed since the last refresh, for the analyst's aggregate views
    (schemas/sql/014; ``rebuild``: all of them again, 4 s on 1.3M events). The views are current
    without it, and fast with it. Returns the watermark: the rollup holds the event days before
    it (``upto``, by default the last complete day)."""
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT refresh_analyst_rollup(%s, %s)", (upto, rebuild))
            return cur.fetchone()[0]
    finally:
        conn.close()


def create_behavior_table(clients: Clients) -> list[str]:
    ddb = clients.dynamodb()
    name = clients.settings.behavior_table
    try:
        ddb.create_table(**table_definition(name))
    except ddb.exceptions.ResourceInUseException:
        return []
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return [name]


def external_endpoints(settings: Settings) -> list[str]:
    """The servers that come from settings rather than the embedded stack."""
    configured = (("Kafka", settings.kafka_bootstrap), ("PostgreSQL", settings.postgres_dsn.get_secret_value()),
                  ("DynamoDB", settings.dynamodb_endpoint))  # fmt: skip
    return [name for name, value in configured if value]


def reset(clients: Clients, *, confirm_external: bool = False) -> dict[str, list[str]]:
    """Delete and recreate a scratch namespace (the demo's): :func:`teardown`, then :func:`setup`,
    and mark the new schema as scratch so the next reset may drop it."""
    teardown(clients, confirm_external=confirm_external)
    created = setup(clients)
    conn = clients.pg_connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(sql.Identifier(clients.settings.pg_schema),
                                                                     sql.Literal(SCRATCH_MARK)))  # fmt: skip
    finally:
        conn.close()
    return created


def teardown(clients: Clients, *, confirm_external: bool = False) -> None:
    """Delete the namespace's topics, PostgreSQL schema and DynamoDB table (demo resets).

    Refused before anything is deleted: for the default namespace; when an endpoint is
    external (configured in settings) unless ``confirm_external``; and when the schema
    exists but was not made by :func:`reset` (no scratch mark), unless it is one of
    ``SCRATCH_NAMESPACES``.
    """
    settings = clients.settings
    if not settings.namespace:
        raise TeardownRefused("refusing to tear down the default namespace")
    external = external_endpoints(settings)
    if external and not confirm_external:
        raise TeardownRefused(
            f"refusing to reset namespace {settings.namespace!r} on the external {', '.join(external)} from the "
            "settings: it deletes that namespace's topics, schema and table there. Confirm with "
            "`txguard demo --reset-external`, or unset the TXGUARD_* endpoints to use the embedded stack"
        )
    _check_scratch_schema(clients)
    admin = clients.admin()
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [settings.topic(t) for t in ALL_TOPICS if settings.topic(t) in existing]
    for future in (admin.delete_topics(doomed) if doomed else {}).values():
        future.result(timeout=15)
    groups = [settings.namespaced(g) for g in SERVICE_NAMES]
    for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
        try:
            future.result()
        except KafkaException:
            pass  # never created, or the broker keeps no group state
    conn = clients.pg_connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.pg_schema)))
    finally:
        conn.close()
    ddb = clients.dynamodb()
    try:
        ddb.delete_table(TableName=settings.behavior_table)
        ddb.get_waiter("table_not_exists").wait(TableName=settings.behavior_table)
    except ddb.exceptions.ResourceNotFoundException:
        pass


def _check_scratch_schema(clients: Clients) -> None:
    """Raise :class:`TeardownRefused` if the namespace's schema exists and is not a scratch one."""
    schema = clients.settings.pg_schema
    conn = clients.pg_connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (schema,))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is not None and row[0] != SCRATCH_MARK and schema not in SCRATCH_NAMESPACES:
        raise TeardownRefused(
            f"refusing to drop PostgreSQL schema {schema!r}: `txguard demo` did not create it (it has no scratch "
            "mark), so it may hold data that is not the demo's. Run the demo in another namespace, or drop the "
            "schema yourself if it is scratch"
        )
