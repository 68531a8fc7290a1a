"""The consumer services as child processes: start, wait until they hold partitions, stop.

Each service runs in its own process so they use both cores and fail independently.
Settings go down as flags, but the DSN (it may hold a password) through the
environment, where ``ps`` does not show it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from txguard.settings import SERVICE_NAMES, Settings

SERVICES = SERVICE_NAMES[:3]  # what `txguard run` and the demo always start


def ready_marker(settings: Settings, service: str) -> Path:
    """A file that exists while the service holds partitions: lets scripts wait for it."""
    run_dir = settings.home / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir / f"{settings.namespace or 'default'}.{service}.ready"


def settings_argv(settings: Settings) -> list[str]:
    """The global flags that give a child process the same settings (no secrets)."""
    argv = ["--home", str(settings.home), "--partitions", str(settings.partitions)]
    if settings.namespace:
        argv += ["--namespace", settings.namespace]
    if settings.kafka_bootstrap:
        argv += ["--kafka-bootstrap", settings.kafka_bootstrap]
    if settings.dynamodb_endpoint:
        argv += ["--dynamodb-endpoint", settings.dynamodb_endpoint]
    return argv


def start_services(settings: Settings, services: Sequence[str] = SERVICES) -> list[subprocess.Popen]:
    env = dict(os.environ)
    if settings.postgres_dsn.get_secret_value():
        env["TXGUARD_POSTGRES_DSN"] = settings.postgres_dsn.get_secret_value()
    argv = [sys.executable, "-m", "txguard.cli", *settings_argv(settings)]
    for name in services:
        ready_marker(settings, name).unlink(missing_ok=True)
    return [subprocess.Popen([*argv, "consume", name], env=env) for name in services]


def wait_until_ready(settings: Settings, procs: list[subprocess.Popen], services: Sequence[str] = SERVICES,
                     timeout_s: float = 60) -> bool:  # fmt: skip
    """True once every service holds partitions; False if one exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not all(ready_marker(settings, n).exists() for n in services):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.2)
    return True


def stop_services(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
