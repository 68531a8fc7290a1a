"""Integration tests run against real servers: the embedded stack by default.

TXGUARD_TEST_BACKEND=containers runs them against Apache Kafka, PostgreSQL and DynamoDB
Local started in containers by testcontainers (tests/integration/containers.py); without a
Docker engine that backend is refused before any test runs. Or set TXGUARD_KAFKA_BOOTSTRAP /
TXGUARD_POSTGRES_DSN / TXGUARD_DYNAMODB_ENDPOINT to run them against external servers
(nothing embedded starts for those).
Every test module gets a fresh namespace: its own topics, PostgreSQL schema and table.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.topics import DLQ
from streaming.loop import run
from tests.integration import containers
from txguard import stack
from txguard.clients import Clients, setup
from txguard.settings import Settings

pytestmark = pytest.mark.integration

# Set in our environment while the stack starts; test_auth checks that no server has it.
ENV_CANARY = "TXGUARD_TEST_ENV_CANARY"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before any test runs: refuse a test backend that cannot run here, saying why; on containers,
    skip the modules that test the embedded stack itself."""
    here = Path(__file__).parent
    if not any(item.path.is_relative_to(here) for item in items):
        return  # no integration test selected: no server needed
    if problem := containers.backend_problem():
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
    if containers.chosen_backend() == "containers":
        skip = pytest.mark.skip(reason="tests the embedded stack itself; TXGUARD_TEST_BACKEND=containers")
        for item in items:
            if item.module is not None and item.module.__name__.rpartition(".")[2] in containers.EMBEDDED_ONLY:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def stack_home() -> Iterator[Path]:
    if containers.chosen_backend() == "containers":
        yield from containers_home()
    else:
        yield from embedded_home()


def containers_home() -> Iterator[Path]:
    """The servers in containers, given to every Settings (and every txguard subprocess) by environment."""
    home = Path(tempfile.mkdtemp(prefix="txguard-it-"))
    try:
        with containers.containers_environment() as environment, pytest.MonkeyPatch.context() as env:
            for name, value in environment.items():
                env.setenv(name, value)
            yield home
            gc.collect()  # let the tests' Kafka clients go before their broker does
    finally:
        shutil.rmtree(home, ignore_errors=True)


def embedded_home() -> Iterator[Path]:
    # A directory of its own, not under pytest's base temp: another pytest run resets
    # that to 0700, and the PostgreSQL server user could then no longer reach its data.
    home = Path(tempfile.mkdtemp(prefix="txguard-it-"))
    # Ours, so ours to open: as root, PostgreSQL's user can then keep its data under it (a
    # private home would send the data to stack.SERVER_ROOT, outside what teardown removes).
    home.chmod(0o755)
    base = Settings(home=home)
    ports = {name: stack.free_port() for name in stack.DEFAULT_PORTS}  # dynalite too, where Node.js is
    try:
        os.environ[ENV_CANARY] = "a secret of the parent process"
        try:
            stack.up(base, ports)
        finally:
            del os.environ[ENV_CANARY]
        yield home
    finally:
        gc.collect()  # let the tests' Kafka clients go before their broker does
        stack.down(base)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(stack_home: Path) -> Settings:
    return Settings(home=stack_home, namespace=f"t{uuid.uuid4().hex[:10]}", partitions=3,
                    batch_size=500, batch_wait_s=0.2, session_timeout_ms=6000, commit_interval_s=1.0)  # fmt: skip


@pytest.fixture(scope="module")
def clients(settings: Settings) -> Clients:
    c = Clients(settings)
    setup(c)
    return c


@pytest.fixture
def fresh_clients(settings: Settings) -> Clients:
    """A namespace of its own for one test (module fixtures share theirs)."""
    c = Clients(settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}"}))
    setup(c)
    return c


class ServiceThreads:
    """Consumer services on the real loop, each in a thread, stopped at teardown."""

    def __init__(self):
        self.threads: list[tuple[threading.Thread, threading.Event]] = []

    def start(self, service, clients: Clients, on_assign: Callable[[list], None] | None = None) -> None:
        stop = threading.Event()
        settings = clients.settings
        # The loop flushes the producer the service writes with, before committing.
        producer = getattr(service, "producer", None) or clients.producer()
        t = threading.Thread(
            target=run,
            args=(service, clients.consumer(service.name), producer, settings.topic(DLQ)),
            kwargs={
                "batch_size": settings.batch_size,
                "batch_wait_s": settings.batch_wait_s,
                "stop": stop,
                "commit_interval_s": settings.commit_interval_s,
                "on_assign": on_assign,
            },
            daemon=True,
        )
        t.start()
        self.threads.append((t, stop))

    def stop(self) -> None:
        for _, stop in self.threads:
            stop.set()
        for t, _ in self.threads:
            t.join(30)


@pytest.fixture(scope="module")
def services() -> Iterator[ServiceThreads]:
    s = ServiceThreads()
    yield s
    s.stop()


def read_topic(clients: Clients, topic: str) -> list:
    """Every record of a topic, read with kafka-python: a second, independent client."""
    from kafka import KafkaConsumer

    from txguard.connections import kafka_python_config

    consumer = KafkaConsumer(
        topic, **kafka_python_config(clients.settings, clients.endpoints.kafka_bootstrap), auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=3000, group_id=None,
    )  # fmt: skip
    try:
        return list(consumer)
    finally:
        consumer.close()


def pg_query(clients: Clients, text: str) -> list[tuple]:
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute(text)
            return cur.fetchall()
    finally:
        conn.close()


def pg_count(clients: Clients, table: str) -> int:
    return pg_query(clients, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - fixed table names


def wait_for(condition: Callable[[], bool], timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
