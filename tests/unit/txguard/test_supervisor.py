"""The supervisor's policy for a dying service, with the child processes faked (the
integration test signals real ones)."""

from __future__ import annotations

import itertools
import signal
import threading

import pytest

from txguard import supervisor as sup
from txguard.settings import Settings


class FakeChild:
    """A child process: it exits with ``code`` after ``polls_alive`` polls, or runs until terminated."""

    pids = itertools.count(1000)

    def __init__(self, name: str, code: int | None, polls_alive: int = 1):
        self.name, self.pid, self.code, self.polls_alive = name, next(self.pids), code, polls_alive
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.code is not None:
            self.polls_alive -= 1
            if self.polls_alive < 0:
                self.returncode = self.code
        return self.returncode

    def terminate(self) -> None:
        if self.returncode is None:
            self.returncode = -signal.SIGTERM

    def kill(self) -> None:
        self.returncode = -signal.SIGKILL

    def wait(self) -> int | None:
        return self.returncode


class FakeStarts:
    """Stands in for ``start_service``: each service's children, exiting with ``codes[name]`` (None: run on)."""

    def __init__(self, codes: dict[str, int]):
        self.codes = codes
        self.children: dict[str, list[FakeChild]] = {}

    def __call__(self, settings: Settings, name: str) -> FakeChild:
        child = FakeChild(name, self.codes.get(name))
        self.children.setdefault(name, []).append(child)
        return child


@pytest.fixture
def starts(monkeypatch) -> FakeStarts:
    fake = FakeStarts({})
    monkeypatch.setattr(sup, "start_service", fake)
    monkeypatch.setattr(sup, "RESTART_BACKOFF_S", 0.01)
    monkeypatch.setattr(sup.Supervisor, "poll_s", 0.01)
    return fake


def supervisor(tmp_path, limit: int = 3) -> sup.Supervisor:
    return sup.Supervisor(Settings(home=tmp_path, restart_limit=limit, restart_window_s=600, shutdown_timeout_s=5))


def test_a_dying_service_is_restarted_with_doubling_back_off_then_everything_stops(starts, tmp_path, caplog):
    starts.codes["scorer"] = 1
    caplog.set_level("WARNING", logger=sup.__name__)
    assert supervisor(tmp_path, limit=3).run() == 1
    assert len(starts.children["scorer"]) == 4  # the first start and 3 restarts, then it gave up
    assert [len(starts.children[n]) for n in ("persist", "learner")] == [1, 1], "only the dead one restarts"
    assert all(starts.children[n][0].returncode == -signal.SIGTERM for n in ("persist", "learner"))
    delays = [r.message.split("restarting in ")[1].split("s ")[0] for r in caplog.records if "restarting" in r.message]
    assert delays == ["0.01", "0.02", "0.04"]
    assert "after 3 restarts in 600s: stopping every service" in caplog.text


def test_a_configuration_error_is_not_restarted(starts, tmp_path, caplog):
    starts.codes["scorer"] = sup.CONFIGURATION_ERROR
    assert supervisor(tmp_path).run() == 1
    assert len(starts.children["scorer"]) == 1
    assert "a restart cannot help" in caplog.text


def test_a_stop_signal_stops_every_service_and_exits_0(starts, tmp_path):
    s = supervisor(tmp_path)
    s.stop.set()  # as the SIGTERM handler does
    assert s.run() == 0
    assert all(c.returncode == -signal.SIGTERM for children in starts.children.values() for c in children)


class StubbornChild(FakeChild):
    """Ignores SIGTERM (a service stuck in a call)."""

    def terminate(self) -> None:
        pass


def test_a_service_that_does_not_stop_in_time_is_killed():
    stubborn, good = StubbornChild("scorer", None), FakeChild("persist", None)
    assert sup.stop_services([stubborn, good], timeout=0.05) == [stubborn]
    assert (stubborn.returncode, good.returncode) == (-signal.SIGKILL, -signal.SIGTERM)


def test_a_second_signal_kills_without_waiting_for_the_timeout():
    hurry = threading.Event()
    hurry.set()
    stubborn = StubbornChild("scorer", None)
    assert sup.stop_services([stubborn], timeout=3600, hurry=hurry) == [stubborn]
