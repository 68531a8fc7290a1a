"""TXGUARD_TEST_BACKEND: the integration suite's choice of servers. The embedded stack by default; containers only
where a Docker engine answers, otherwise refused before any test runs, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import containers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_docker(monkeypatch, tmp_path) -> str:
    """DOCKER_HOST at a socket that does not exist (testcontainers' own properties file cannot override it)."""
    socket = f"unix://{tmp_path / 'missing-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", socket)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.testcontainers.properties, no docker context
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    return socket


def test_without_a_docker_engine_the_reason_names_where_it_looked(no_docker):
    problem = containers.docker_problem()
    assert problem is not None and no_docker in problem


def test_the_containers_backend_is_refused_without_docker(no_docker, monkeypatch):
    monkeypatch.setenv(containers.BACKEND_ENV, "containers")
    problem = containers.backend_problem()
    assert problem is not None
    assert problem.startswith("TXGUARD_TEST_BACKEND=containers needs a Docker engine") and no_docker in problem
    assert "unset TXGUARD_TEST_BACKEND" in problem  # and how to run the tests all the same


@pytest.mark.parametrize("value", [None, "", "embedded"])
def test_the_embedded_default_never_asks_for_docker(no_docker, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(containers.BACKEND_ENV, raising=False)
    else:
        monkeypatch.setenv(containers.BACKEND_ENV, value)
    assert containers.chosen_backend() == "embedded"
    assert containers.backend_problem() is None


def test_an_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv(containers.BACKEND_ENV, "docker")
    assert containers.backend_problem() == (
        "TXGUARD_TEST_BACKEND='docker' is not a test backend: use one of embedded, containers"
    )


def test_pytest_stops_before_any_test_with_the_reason(no_docker, tmp_path):
    """The whole path: pytest on an integration module exits with a usage error at collection, and the reason."""
    env = {**os.environ, containers.BACKEND_ENV: "containers", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/integration/test_reset.py", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "inner")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "TXGUARD_TEST_BACKEND=containers needs a Docker engine" in output and no_docker in output
    assert "no tests ran" in output  # stopped after collection, before any fixture or test


def test_the_containers_are_the_servers_of_the_compose_file(no_docker):
    """Defined (not started: no engine here) with a fixed API version, so the Docker client asks nothing."""
    servers = containers.define("a-password", docker_client_kw={"version": "1.44"})
    servers.kafka.configure()
    assert servers.kafka.kraft_enabled and servers.kafka.env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert servers.kafka.env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    compose = (ROOT / "docker-compose.yml").read_text()
    for image in (containers.POSTGRES_IMAGE, containers.DYNAMODB_IMAGE):
        assert f"image: {image}" in compose  # the same servers as docker-compose.yml, pinned alike
    assert all(":" in c.image and not c.image.endswith(":latest") for c in servers)
    servers.postgres._configure()  # what start() passes to the container
    assert servers.postgres.env == {"POSTGRES_USER": "txguard", "POSTGRES_PASSWORD": "a-password",
                                    "POSTGRES_DB": "txguard"}  # fmt: skip
    assert "-inMemory" in servers.dynamodb._command and set(servers.dynamodb.ports) == {"8000"}
