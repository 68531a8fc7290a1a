"""The Dockerfile, read without a Docker engine: it builds a wheel of the project's own files and installs it, runs
as a user without privileges, and has a health check that works (run here against a small HTTP server)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = DockerfileParser(str(ROOT / "Dockerfile"))


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
    argv = json.loads(command)  # exec form: no shell in the way
    assert argv[:2] == ["python", "-c"]
    return argv


def test_the_health_check_asks_the_services_healthz_on_the_metrics_port():
    script = healthcheck_argv()[2]
    assert "/healthz" in script and "TXGUARD_METRICS_PORT" in script
    assert "TXGUARD_METRICS_PORT" in DOCKERFILE.envs
    assert [value.split()[0] for value in values(RUNTIME, "EXPOSE")] == [DOCKERFILE.envs["TXGUARD_METRICS_PORT"]]


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_health_check_passes_on_200_and_fails_otherwise(health_server, monkeypatch, status, healthy):
    monkeypatch.setattr(Health, "status", status)
    argv = healthcheck_argv()
    env = {"TXGUARD_METRICS_PORT": str(health_server.server_address[1]), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) is healthy, done.stderr


def test_the_health_check_fails_when_nothing_listens():
    argv = healthcheck_argv()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    port = server.server_address[1]
    server.server_close()  # a port nothing listens on now
    done = subprocess.run([sys.executable, *argv[1:]], env={"TXGUARD_METRICS_PORT": str(port)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "Connection refused" in done.stderr


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", ".txguard", "data"} <= set(ignored)
