"""The Dockerfile, read without a Docker engine: it builds a wheel of the project's own files and installs it, runs
as a user without privileges, and has a health check that works (run here against a small HTTP server)."""

from __future__ import annotations

import json
import random
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from txguard.cli import parser
from txguard.settings import SERVICE_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = DockerfileParser(str(ROOT / "Dockerfile"))
PORT_ENV = "TXGUARD_METRICS_PORT"  # the services' metrics base port, which `txguard health` asks


def stages() -> list[list[dict]]:
    """The Dockerfile's instructions, one list per stage (each starts at its FROM)."""
    found: list[list[dict]] = []
    for instruction in DOCKERFILE.structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if instruction["instruction"] != "COMMENT":
            assert found, "an instruction before the first FROM"
            found[-1].append(instruction)
    return found


def values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


BUILD, RUNTIME = stages()[0], stages()[-1]


def test_the_build_stage_makes_a_wheel_of_every_package():
    assert len(stages()) == 2 and values(BUILD, "FROM")[0].endswith(" AS build")
    copied = {source for value in values(BUILD, "COPY") for source in shlex.split(value)[:-1]}
    patterns = [pattern.removesuffix("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    packages = {d.name for d in ROOT.iterdir() if (d / "__init__.py").exists() and d.name in patterns}
    assert packages == set(patterns), "every package pyproject includes is a directory of the repository"
    assert packages | {"pyproject.toml", PYPROJECT["project"]["readme"]} <= copied, "the wheel would miss a package"
    (wheel,) = [run for run in values(BUILD, "RUN") if "pip wheel" in run]
    assert "--no-deps" in wheel and "--wheel-dir /dist" in wheel


def test_the_runtime_stage_installs_the_wheel_not_the_sources():
    assert values(RUNTIME, "COPY") == ["--from=build /dist /dist"]  # nothing else from the build context
    installs = [run for run in values(RUNTIME, "RUN") if "pip install" in run]
    assert installs == ["pip install --no-cache-dir /dist/*.whl && rm -rf /dist"]


def test_it_runs_as_a_user_without_privileges_owning_its_home():
    users = values(RUNTIME, "USER")
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    user = users[-1]
    assert any("useradd" in run and user in shlex.split(run) for run in values(RUNTIME, "RUN"))
    home = DOCKERFILE.envs["TXGUARD_HOME"]
    assert any(f"chown {user}:{user} {home}" in run for run in values(RUNTIME, "RUN")), "a volume there is writable"
    order = [i["instruction"] for i in RUNTIME]
    assert order.index("USER") < order.index("ENTRYPOINT")


def test_the_entrypoint_is_the_projects_console_script():
    assert [json.loads(value) for value in values(RUNTIME, "ENTRYPOINT")] == [list(PYPROJECT["project"]["scripts"])]


def healthcheck_argv() -> list[str]:
    (check,) = values(RUNTIME, "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert all(option.startswith("--") for option in options.split())
    return json.loads(command)  # exec form: no shell in the way


def test_the_health_check_is_txguards_own_on_the_metrics_ports():
    argv = healthcheck_argv()
    assert argv[0] == "txguard" and parser().parse_args(argv[1:]).command == "health"
    assert PORT_ENV.removeprefix("TXGUARD_").lower() in Settings.model_fields
    base = int(DOCKERFILE.envs[PORT_ENV])
    exposed = [int(port) for value in values(RUNTIME, "EXPOSE") for port in value.split()]
    assert exposed == [base + offset for offset in range(len(SERVICE_NAMES))]


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass


def serve_on_some_service_port() -> tuple[ThreadingHTTPServer, int]:
    """A /healthz server on the scorer's port (base + 1) of a base whose other ports nothing listens on."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        try:
            server = ThreadingHTTPServer(("127.0.0.1", base + 1), Health)
        except OSError:
            continue
        if not any(port_taken(base + offset) for offset in range(len(SERVICE_NAMES)) if offset != 1):
            return server, base
        server.server_close()
    raise AssertionError("no free run of ports")


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def scorer_health() -> Iterator[int]:
    server, base = serve_on_some_service_port()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def health_check(base_port: int | None, cwd: Path) -> subprocess.CompletedProcess:
    """The image's health check command, as Docker runs it (a new process, the image's environment)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **({PORT_ENV: str(base_port)} if base_port else {})}
    argv = [sys.executable, "-m", "txguard.cli", *healthcheck_argv()[1:]]  # `txguard` is txguard.cli:main
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_health_check_passes_on_200_and_fails_otherwise(scorer_health, monkeypatch, tmp_path, status, healthy):
    monkeypatch.setattr(Health, "status", status)
    done = health_check(scorer_health, tmp_path)
    assert (done.returncode == 0) is healthy, done.stdout + done.stderr
    assert f"scorer: {status}" in done.stdout


def test_the_health_check_fails_when_no_service_answers(tmp_path):
    server, base = serve_on_some_service_port()
    server.server_close()  # now nothing listens on any of the ports
    done = health_check(base, tmp_path)
    assert done.returncode == 1 and "no service answers" in done.stderr


def test_the_health_check_fails_without_a_metrics_port(tmp_path):
    done = health_check(None, tmp_path)
    assert done.returncode != 0 and "TXGUARD_METRICS_PORT" in done.stderr


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", ".txguard", "data"} <= set(ignored)
