"""`stack down` signals only the servers it started, not whatever holds their pid now."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from txguard import stack
from txguard.settings import Settings

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def spawn():
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([*SLEEP, *args], start_new_session=True)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while stack._command_line(proc.pid) != [*SLEEP, *args] and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child shows its own command line (it may still be the parent's copy)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def record(home, state: dict) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "stack.json").write_text(json.dumps(state))
    return Settings(home=home)


def test_a_pid_now_held_by_another_program_is_left_alone(tmp_path, spawn, caplog):
    stranger = spawn()  # got the pid of a broker recorded before a reboot
    impostor = spawn("moto.server", "-p", "15001")  # moto, but not on the recorded port
    settings = record(tmp_path, {
        "kafka": {"pid": stranger.pid, "bootstrap": "127.0.0.1:19092"},
        "moto": {"pid": impostor.pid, "endpoint": "http://127.0.0.1:1500"},
    })  # fmt: skip
    assert stack.down(settings) == []
    time.sleep(0.2)
    assert stranger.poll() is None and impostor.poll() is None
    assert "kafka: pid" in caplog.text and "is no longer the server this stack started" in caplog.text
    assert not (tmp_path / "stack.json").exists()  # the stale record is gone


def test_the_servers_it_started_are_stopped(tmp_path, spawn):
    broker = spawn("broker", "--listener-url", "tcp://127.0.0.1:19092")
    moto = spawn("moto.server", "-H", "127.0.0.1", "-p", "15000")
    settings = record(tmp_path, {
        "kafka": {"pid": broker.pid, "bootstrap": "127.0.0.1:19092"},
        "moto": {"pid": moto.pid, "endpoint": "http://127.0.0.1:15000"},
    })  # fmt: skip
    assert stack.down(settings) == ["kafka", "moto"]
    assert broker.wait(5) is not None and moto.wait(5) is not None


def test_moto_behind_its_guard_is_recognised_by_the_guard_script_and_port(tmp_path, spawn):
    """How the stack starts moto since the guard: `python -I .../moto_guard.py 127.0.0.1 PORT`."""
    guarded = spawn("-I", str(tmp_path / "txguard" / "moto_guard.py"), "127.0.0.1", "15000")
    other_port = spawn("-I", str(tmp_path / "txguard" / "moto_guard.py"), "127.0.0.1", "15001")
    settings = record(tmp_path, {
        "moto": {"pid": other_port.pid, "endpoint": "http://127.0.0.1:15000"},
    })  # fmt: skip
    assert stack.down(settings) == []
    assert other_port.poll() is None
    settings = record(tmp_path, {"moto": {"pid": guarded.pid, "endpoint": "http://127.0.0.1:15000"}})
    assert stack.down(settings) == ["moto"]
    assert guarded.wait(5) is not None


def test_a_postgres_pid_is_checked_against_its_data_directory(tmp_path, spawn):
    other = spawn("-D", str(tmp_path / "elsewhere"))
    assert not stack._still_ours("postgres", {"pid": other.pid, "datadir": str(tmp_path / "postgres")})
    ours = spawn("-D", str(tmp_path / "postgres"), "-p", "15432")
    assert stack._still_ours("postgres", {"pid": ours.pid, "datadir": str(tmp_path / "postgres")})
