"""The consumer services as child processes: start, supervise, stop.

Each service runs in its own process so they use both cores and fail independently.
Settings go down as flags, but the DSN and the connection security settings (they may
hold passwords) through the environment, where ``ps`` does not show them.

:class:`Supervisor` (``txguard run``):

- SIGTERM or SIGINT: every service gets SIGTERM, finishes its batch, checkpoints and
  exits; one still running after ``shutdown_timeout_s`` is killed (SIGKILL). Exit 0
  when all stopped in time, 1 when one had to be killed. A second signal kills at once.
- A service that dies (any exit the supervisor did not ask for) is reported and
  restarted after a back-off: 1 s, doubling with each restart of that service in the
  last ``restart_window_s``, at most 30 s. Its ``restart_limit``-th restart within the
  window, or an exit with code 2 (its configuration is wrong: a restart cannot help),
  stops every service instead, and the supervisor exits 1.
- No orphans: each child stops itself when its parent dies, even by SIGKILL
  (``PR_SET_PDEATHSIG`` on Linux, see :func:`streaming.signals.stop_with_parent`), and
  exits hard if its graceful stop overruns the shutdown timeout.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from txguard.settings import SERVICE_NAMES, Settings

log = logging.getLogger(__name__)

SERVICES = SERVICE_NAMES[:3]  # what `txguard run` and the demo always start
# Set in a child's environment: the pid whose death stops it (cmd_consume reads it).
SUPERVISOR_PID_ENV = "TXGUARD_SUPERVISOR_PID"
RESTART_BACKOFF_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
CONFIGURATION_ERROR = 2  # the CLI's exit code for a bad setting or a refused start


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
    if settings.metrics_port:
        argv += ["--metrics-port", str(settings.metrics_port)]
    return argv


# Settings a child gets through its environment: secrets, and the connection settings around them.
CONNECTION_SETTINGS = (
    "postgres_dsn", "postgres_sslmode", "postgres_sslrootcert", "postgres_iam_auth", "aws_region", "s3_endpoint",
    "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password",
    "kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location", "kafka_ssl_key_password",
    "kafka_config", "kafka_connect_timeout_s",
)  # fmt: skip


def connection_env(settings: Settings) -> dict[str, str]:
    """``TXGUARD_*`` variables that give a child exactly these settings' connections, whatever set
    them (environment, ``.env``, a flag or code): the environment, unlike argv, is not shown by ``ps``."""
    env = {}
    for name in CONNECTION_SETTINGS:
        value = getattr(settings, name)
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"TXGUARD_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def start_service(settings: Settings, name: str) -> subprocess.Popen:
    """``txguard consume NAME`` as a child that stops when this process dies.

    Call it from a thread that lives as long as the child: Linux signals the child when
    the thread that started it ends (``PR_SET_PDEATHSIG``).
    """
    env = {**os.environ, SUPERVISOR_PID_ENV: str(os.getpid()), **connection_env(settings)}
    ready_marker(settings, name).unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "txguard.cli", *settings_argv(settings), "consume", name], env=env)


def start_services(settings: Settings, services: Sequence[str] = SERVICES) -> list[subprocess.Popen]:
    return [start_service(settings, name) for name in services]


def wait_until_ready(settings: Settings, procs: list[subprocess.Popen], services: Sequence[str] = SERVICES,
                     timeout_s: float = 60) -> bool:  # fmt: skip
    """True once every service holds partitions; False if one exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not all(ready_marker(settings, n).exists() for n in services):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.2)
    return True


def stop_services(procs: Sequence[subprocess.Popen], timeout: float = 30,
                  hurry: threading.Event | None = None) -> list[subprocess.Popen]:  # fmt: skip
    """SIGTERM to each running service, SIGKILL to those still running after ``timeout``
    seconds (or once ``hurry`` is set). Returns the killed ones."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if hurry is not None and hurry.is_set():
            break
        time.sleep(0.1)
    killed = [p for p in procs if p.poll() is None]
    for p in killed:
        p.kill()
        p.wait()
    return killed


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class Supervisor:
    """Runs services as child processes until stopped; see the module docstring for the policy."""

    poll_s = 0.5  # how often the children are looked at

    def __init__(self, settings: Settings, services: Sequence[str] = SERVICES):
        self.settings = settings
        self.services = tuple(services)
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, deque[float]] = {name: deque() for name in self.services}
        self.restart_at: dict[str, float] = {}  # services waiting out their back-off
        self.stop = threading.Event()
        self.hurry = threading.Event()  # a second stop signal: kill at once

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            if self.stop.is_set():
                self.hurry.set()
            self.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def run(self) -> int:
        """Start every service, supervise until ``stop``, stop them all; the exit code."""
        for name in self.services:
            self.procs[name] = start_service(self.settings, name)
        log.info("supervisor %d: started %s", os.getpid(),
                 ", ".join(f"{n} ({p.pid})" for n, p in self.procs.items()))  # fmt: skip
        announced = False
        code = 0
        while not self.stop.wait(self.poll_s):
            failure = self._check_children()
            if failure:
                log.error("%s: stopping every service", failure)
                code = 1
                break
            if not announced and not self.restart_at and self._all_ready():
                log.info("supervisor %d: every service holds its partitions", os.getpid())
                announced = True
        else:
            log.info("supervisor %d: stop signal, stopping the services (at most %gs)", os.getpid(),
                     self.settings.shutdown_timeout_s)  # fmt: skip
        killed = stop_services(list(self.procs.values()), self.settings.shutdown_timeout_s, self.hurry)
        for name, p in self.procs.items():
            if p in killed:
                log.error("%s (%d) did not stop in time: killed", name, p.pid)
        return 1 if killed else code

    def _all_ready(self) -> bool:
        return all(ready_marker(self.settings, n).exists() for n in self.services)

    def _check_children(self) -> str | None:
        """Restart what is due, schedule a restart of what died; a reason to stop everything, or None."""
        now = time.monotonic()
        for name, due in list(self.restart_at.items()):
            if now >= due:
                del self.restart_at[name]
                self.procs[name] = start_service(self.settings, name)
                log.info("%s: restarted (pid %d)", name, self.procs[name].pid)
        for name, p in self.procs.items():
            if name in self.restart_at or p.poll() is None:
                continue
            what = f"{name} ({p.pid}) {describe_exit(p.returncode)}"
            if p.returncode == CONFIGURATION_ERROR:
                return f"{what}: its configuration is wrong, a restart cannot help"
            recent = self.restarts[name]
            while recent and now - recent[0] > self.settings.restart_window_s:
                recent.popleft()
            if len(recent) >= self.settings.restart_limit:
                return f"{what}, after {len(recent)} restarts in {self.settings.restart_window_s:g}s"
            delay = min(RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_S * 2 ** len(recent))
            recent.append(now)
            self.restart_at[name] = now + delay
            log.warning("%s: restarting in %gs (restart %d of at most %d in %gs)", what, delay, len(recent),
                        self.settings.restart_limit, self.settings.restart_window_s)  # fmt: skip
        return None
