"""``txguard run`` as a supervisor, signalled as systemd, Kubernetes or ``kill`` would.

The supervisor and its services are real processes on the embedded stack. SIGTERM stops
every service gracefully and the supervisor exits 0; a service killed with ``kill -9``
is restarted; a supervisor killed with SIGKILL leaves no service behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.registry import save
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.source import CsvSource
from tests.conftest import FIXTURES
from tests.integration.conftest import wait_for
from txguard.app import App
from txguard.supervisor import SERVICES, ready_marker

pytestmark = pytest.mark.integration

SHUTDOWN_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def model_dir(clients, tmp_path_factory) -> Path:
    """A registry with a current model: the scorer and the learner need one to start."""
    protector = CardProtector(App(clients.settings).card_key())
    model, _ = train(load_history(CsvSource(str(FIXTURES / "kaggle_rows2301_2900.csv")), protector))
    path = tmp_path_factory.mktemp("model")
    save(model, path)
    return path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> dict[str, int]:
    """The running ``txguard consume`` children of ``pid``, by service name."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if ppid == pid and b"consume" in argv and alive(int(entry.name)):
            found[argv[argv.index(b"consume") + 1].decode()] = int(entry.name)
    return found


class RunningSupervisor:
    """``txguard run`` in a process; every process it started is killed at the end, by pid."""

    def __init__(self, settings, model_dir: Path, log: Path, env: dict[str, str] | None = None):
        env = {**os.environ, "TXGUARD_MODEL_PATH": str(model_dir), "TXGUARD_BATCH_WAIT_S": "0.2",
               "TXGUARD_COMMIT_INTERVAL_S": "1", "TXGUARD_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
               **(env or {})}  # fmt: skip
        self.settings, self.log_path = settings, log
        self.log = open(log, "ab")  # noqa: SIM115 - closed in close()
        argv = [sys.executable, "-m", "txguard.cli", "--home", str(settings.home), "--namespace",
                settings.namespace, "run"]  # fmt: skip
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.seen: set[int] = set()  # every child pid ever seen, for the cleanup

    def services(self) -> dict[str, int]:
        found = children(self.proc.pid)
        self.seen |= set(found.values())
        return found

    def wait_until_ready(self) -> dict[str, int]:
        def ready() -> bool:
            return set(self.services()) == set(SERVICES) and all(
                ready_marker(self.settings, n).exists() for n in SERVICES
            )

        wait_for(ready, 120, "the services to join")
        return self.services()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        for pid in [self.proc.pid, *self.seen]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


@pytest.fixture
def supervisor(clients, model_dir, tmp_path) -> Iterator[RunningSupervisor]:
    running = RunningSupervisor(clients.settings, model_dir, tmp_path / "run.log")
    try:
        yield running
    finally:
        running.close()


def test_a_killed_service_is_restarted_and_sigterm_stops_every_service_gracefully(supervisor):
    pids = supervisor.wait_until_ready()
    # persist yields shared cores to the scorer; the others run at the supervisor's niceness.
    niceness = {name: os.getpriority(os.PRIO_PROCESS, pid) - os.nice(0) for name, pid in pids.items()}
    assert niceness == {name: supervisor.settings.persist_niceness if name == "persist" else 0 for name in pids}
    assert supervisor.settings.persist_niceness > 0

    os.kill(pids["scorer"], signal.SIGKILL)
    wait_for(lambda: supervisor.services().get("scorer", pids["scorer"]) != pids["scorer"], 60, "a new scorer")
    wait_for(lambda: ready_marker(supervisor.settings, "scorer").exists(), 60, "the new scorer to join")
    assert f"scorer ({pids['scorer']}) was killed by SIGKILL: restarting in 1s" in supervisor.output()
    assert {n: p for n, p in supervisor.services().items() if n != "scorer"} == {
        n: p for n, p in pids.items() if n != "scorer"
    }, "only the dead service restarts"
    services = supervisor.services()

    supervisor.proc.send_signal(signal.SIGTERM)
    # Exit code 0 means every service stopped by itself within the shutdown timeout (a kill gives 1).
    assert supervisor.proc.wait(SHUTDOWN_TIMEOUT_S + 30) == 0
    assert not [pid for pid in services.values() if alive(pid)]
    output = supervisor.output()
    for name in SERVICES:
        assert f"{name}: stopped after" in output, f"{name} did not finish its last checkpoint"
        assert not ready_marker(supervisor.settings, name).exists()


def test_services_stop_by_themselves_when_the_supervisor_is_killed(supervisor):
    pids = supervisor.wait_until_ready()

    supervisor.proc.send_signal(signal.SIGKILL)
    supervisor.proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in pids.values()), 60, "the orphaned services to exit")
    output = supervisor.output()
    for name in SERVICES:
        assert f"{name}: stopped after" in output, f"{name} did not stop gracefully"
