"""The integration tests' second backend: Apache Kafka, PostgreSQL and DynamoDB Local in containers.

``TXGUARD_TEST_BACKEND=containers`` starts them with testcontainers (S3 is moto's server image) and points the
settings at them through the same ``TXGUARD_*`` variables a deployment uses. The default, ``embedded``, starts the
embedded stack and needs no Docker. Without a Docker engine the containers backend is refused before any test runs,
saying why (:func:`backend_problem`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

BACKEND_ENV = "TXGUARD_TEST_BACKEND"
BACKENDS = ("embedded", "containers")

# The images: the same servers as docker-compose.yml (Confluent's build of Apache Kafka 3.9, which
# testcontainers' KafkaContainer knows how to advertise on its mapped port), S3 from moto's server.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"
POSTGRES_IMAGE = "postgres:17"
DYNAMODB_IMAGE = "amazon/dynamodb-local:2.5.2"
S3_IMAGE = "motoserver/moto:5.1.4"

# Modules that test the embedded stack itself (its processes, files and passwords), not txguard against servers.
EMBEDDED_ONLY = ("test_auth", "test_stack_and_setup", "test_stack_lifecycle", "test_stack_restart",
                 "test_analyst_role", "test_outages")  # fmt: skip


def chosen_backend() -> str:
    return os.environ.get(BACKEND_ENV, "").strip() or "embedded"


def docker_problem() -> str | None:
    """Why no container can be started here (None: a Docker engine answers)."""
    try:
        from testcontainers.core.docker_client import DockerClient, get_docker_host
    except ImportError as exc:
        return f"testcontainers is not installed ({exc}): pip install -e '.[test]'"
    where = get_docker_host() or "the default socket, unix:///var/run/docker.sock"
    try:
        DockerClient().client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the client raises, the engine is not there
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return f"no Docker engine answers at {where} ({type(exc).__name__}{': ' + detail if detail else ''})"
    return None


def backend_problem() -> str | None:
    """Why the chosen backend cannot run (None: it can). The embedded default is never refused here."""
    backend = chosen_backend()
    if backend not in BACKENDS:
        return f"{BACKEND_ENV}={backend!r} is not a test backend: use one of {', '.join(BACKENDS)}"
    if backend == "containers" and (problem := docker_problem()):
        return (f"{BACKEND_ENV}=containers needs a Docker engine: {problem}. Start Docker (or point DOCKER_HOST at "
                f"one), or unset {BACKEND_ENV} to run against the embedded stack")  # fmt: skip
    return None


class Servers(NamedTuple):
    kafka: Any  # testcontainers' KafkaContainer
    postgres: Any  # PostgresContainer
    dynamodb: Any  # DockerContainer
    s3: Any  # DockerContainer


def define(password: str, docker_client_kw: dict[str, Any] | None = None) -> Servers:
    """The containers, not started. ``docker_client_kw`` goes to the Docker client of each (an API version there
    lets them be defined with no engine to ask)."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    client = {"docker_client_kw": docker_client_kw} if docker_client_kw else {}
    kafka = (
        KafkaContainer(KAFKA_IMAGE, **client)
        .with_kraft()
        # One broker: the transaction log must not ask for 3 replicas (the scorer's exactly-once needs it).
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")  # as in production: `txguard setup` makes them
    )
    postgres = PostgresContainer(POSTGRES_IMAGE, username="txguard", password=password, dbname="txguard",
                                 driver=None, **client)  # fmt: skip
    dynamodb = (
        DockerContainer(DYNAMODB_IMAGE, **client)
        .with_command(["-jar", "DynamoDBLocal.jar", "-inMemory", "-sharedDb"])
        .with_exposed_ports(8000)
        .waiting_for(LogMessageWaitStrategy("Initializing DynamoDB Local"))
    )
    s3 = DockerContainer(S3_IMAGE, **client).with_exposed_ports(5000).waiting_for(LogMessageWaitStrategy("Running on"))
    return Servers(kafka, postgres, dynamodb, s3)


@contextmanager
def containers_environment() -> Iterator[dict[str, str]]:
    """Start Kafka, PostgreSQL, DynamoDB Local and S3 in containers; yield the TXGUARD_* variables that point at
    them; stop every container on the way out, whatever happened."""
    servers = define(secrets.token_hex(16))
    with ExitStack() as running:
        for container in servers:
            running.callback(container.stop)  # first: a container whose start fails half-way is removed too
            container.start()
        yield {
            "TXGUARD_KAFKA_BOOTSTRAP": servers.kafka.get_bootstrap_server(),
            "TXGUARD_POSTGRES_DSN": servers.postgres.get_connection_url(),
            "TXGUARD_DYNAMODB_ENDPOINT": endpoint(servers.dynamodb, 8000),
            "TXGUARD_S3_ENDPOINT": endpoint(servers.s3, 5000),
            # DynamoDB Local and moto take any credentials; the default chain must find some.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }


def endpoint(container, port: int) -> str:  # noqa: ANN001 - a testcontainers DockerContainer
    return f"http://{container.get_container_host_ip()}:{container.get_exposed_port(port)}"
