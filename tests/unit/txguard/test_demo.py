"""The demo's summary: what was stored, then every detector's figures from ``txguard evaluate``."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.txguard.test_evaluate import RESULT
from txguard.demo import print_summary
from txguard.settings import Settings


class FakeApp:
    """What the summary asks of the application, without servers."""

    def __init__(self, home: Path):
        self.settings = Settings(home=home, namespace="demo")
        self.clients = SimpleNamespace(endpoints=SimpleNamespace(postgres_dsn="postgresql://u:secret@h:1/txguard"))
        self.evaluated: dict = {}
        self.reported: dict = {}

    def counts(self) -> dict[str, int]:
        return {"transactions": 1200, "scores": 1000, "labels": 900, "alerts": 40}

    def behavior_items(self) -> int:
        return 42

    def evaluate(self, **options) -> dict:
        self.evaluated = options
        return copy.deepcopy(RESULT)

    def report(self, out: Path, title: str, budget: float | None = None) -> Path:
        self.reported = {"out": out, "budget": budget}
        return out / "report.html"


def test_the_summary_prints_every_detector_and_the_alerts_against_the_budget(capsys, tmp_path):
    app = FakeApp(tmp_path)
    print_summary(app, sent=1000, elapsed=2.0, alerts_budget=5.0)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert app.evaluated == {"curves_png": tmp_path / "demo_curves.png", "alerts_budget": 5.0}
    assert "1,000 events in 2.0s = 500 events/s" in out and "42 customer_behavior items" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert rows["score"][2:] == ["900", "30", "0.935", "0.250", "0.500", "0.600", "4.000", "0.400"]
    assert rows["iforest_score"][1:] == ["900", "30", "0.900", "0.200", "0.250", "0.300", "4.000", "0.300"]
    assert "alerts per event-day: mean 4.0, min 1, max 9 over 10 days (budget 5: 0.80x)" in out
    assert "card precision@5 per day: 0.400" in out
    assert "secret" not in out
    assert app.reported == {"out": tmp_path / "demo_report", "budget": 5.0}
    assert f"report:              {tmp_path / 'demo_report' / 'report.html'}" in out


class _Running:
    def poll(self) -> None:
        return None


def test_the_demo_waits_until_every_group_has_read_everything(tmp_path, monkeypatch, capsys):
    from txguard import clients, demo

    lags = iter([{"learner": 500, "scorer": 0}, {"learner": 200}, {"learner": 200}, {"learner": 0}])
    monkeypatch.setattr(clients, "unconsumed", lambda _clients, idle_s: next(lags))  # the broker's answer
    monkeypatch.setattr(demo.time, "sleep", lambda _s: None)
    demo.wait_until_consumed(FakeApp(tmp_path), [_Running()])
    assert next(lags, "read") == "read"  # asked until the lag was 0, and no further
    assert "not yet consumed" not in capsys.readouterr().err


def test_the_demo_waits_for_a_group_that_has_not_committed_yet(tmp_path, monkeypatch, capsys):
    """The broker counts a group's lag from its commits: before its first one a group is absent,
    not done (the learner still waiting for its labels' scores)."""
    from txguard import clients, demo

    lags = iter([{"persist": 0, "scorer": 0}, {"persist": 0, "scorer": 0}, {"persist": 0, "scorer": 0, "learner": 0}])
    monkeypatch.setattr(clients, "unconsumed", lambda _clients, idle_s: next(lags))
    monkeypatch.setattr(demo.time, "sleep", lambda _s: None)
    demo.wait_until_consumed(FakeApp(tmp_path), [_Running()], ["persist", "scorer", "learner"])
    assert next(lags, "read") == "read"  # asked until the learner had committed, and no further
    assert "not yet consumed" not in capsys.readouterr().err


def test_a_learner_that_stops_reading_is_reported_not_waited_for_forever(tmp_path, monkeypatch, capsys):
    from txguard import clients, demo

    monkeypatch.setattr(clients, "unconsumed", lambda _clients, idle_s: {"learner": 300})
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(demo.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(demo.time, "sleep", lambda _s: None)
    demo.wait_until_consumed(FakeApp(tmp_path), [_Running()])
    assert "300 events not yet consumed" in capsys.readouterr().err


def test_with_an_external_kafka_the_demo_does_not_wait_for_its_groups(tmp_path, monkeypatch):
    from txguard import clients, demo

    monkeypatch.setattr(clients, "unconsumed", lambda *_a, **_k: pytest.fail("asked an external Kafka"))
    app = FakeApp(tmp_path)
    app.settings = Settings(home=tmp_path, namespace="demo", kafka_bootstrap="kafka.example:9092")
    demo.wait_until_consumed(app, [_Running()])
