"""Metrics settings (one port per service), JSON logs, and a metrics port in use refused in one line."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from streaming.metrics import LoopMetrics, serve
from txguard.app import App, AppError
from txguard.cli import main, parser, settings_from
from txguard.logs import formatter
from txguard.settings import SERVICE_NAMES, Settings
from txguard.supervisor import settings_argv


def test_each_service_has_its_own_port_from_the_base(tmp_path):
    app = App(Settings(home=tmp_path, metrics_port=9400, metrics_host="0.0.0.0"))
    assert [app.metrics_address(name) for name in SERVICE_NAMES] == [
        ("0.0.0.0", 9400), ("0.0.0.0", 9401), ("0.0.0.0", 9402), ("0.0.0.0", 9403)
    ]  # fmt: skip
    assert App(Settings(home=tmp_path)).metrics_address("scorer") is None  # off by default
    assert Settings().metrics_host == "127.0.0.1"


def test_the_metrics_port_reaches_the_children_of_txguard_run(tmp_path, monkeypatch):
    monkeypatch.delenv("TXGUARD_METRICS_PORT", raising=False)
    settings = settings_from(parser().parse_args(["--home", str(tmp_path), "--metrics-port", "9400", "run"]))
    assert settings.metrics_port == 9400
    argv = settings_argv(settings)
    assert argv[argv.index("--metrics-port") + 1] == "9400"
    assert "--metrics-port" not in settings_argv(Settings(home=tmp_path))


def test_a_metrics_port_in_use_is_refused_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = App(Settings(home=tmp_path, metrics_port=port))
        refused = rf"persist: cannot serve metrics on 127.0.0.1:{port} .*TXGUARD_METRICS_PORT"
        with pytest.raises(AppError, match=refused):
            app._serve_metrics("persist", LoopMetrics("persist"))


def logger_to(stream: io.StringIO, log_format: str) -> logging.Logger:
    """A logger writing to ``stream`` with the formatter configure_logging installs (pytest owns the root's)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))  # type: ignore[arg-type]
    log = logging.getLogger(f"txguard.test.{log_format}")
    log.handlers, log.propagate, log.level = [handler], False, logging.INFO
    return log


def test_json_logs_are_one_object_per_line():
    stream = io.StringIO()
    log = logger_to(stream, "json")
    log.warning("scorer: %d alerts", 3)
    try:
        raise ValueError("bad\nsecond line")
    except ValueError:
        log.exception("failed")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "WARNING", "logger": "txguard.test.json", "message": "scorer: 3 alerts"
    }  # fmt: skip
    assert first["time"].endswith("+00:00") and isinstance(first["pid"], int)
    assert second["message"] == "failed" and "ValueError: bad\nsecond line" in second["exc_info"]


def test_text_logs_stay_the_default():
    stream = io.StringIO()
    logger_to(stream, "text").info("hello")
    assert stream.getvalue().rstrip().endswith("INFO txguard.test.text: hello")
    assert Settings().log_format == "text"
    with pytest.raises(ValueError):
        Settings(log_format="yaml")  # type: ignore[arg-type]


def test_txguard_health_asks_the_services_that_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TXGUARD_METRICS_PORT", raising=False)
    persist = LoopMetrics("persist")
    server = serve(persist, "127.0.0.1", 0)  # persist's port: the base port + 0
    argv = ["--home", str(tmp_path), "--metrics-port", str(server.server_port)]
    try:
        assert main([*argv, "health"]) == 0
        assert capsys.readouterr().out.startswith("persist: 200 ok: persist: loop heartbeat")
        assert main([*argv, "health", "--ready"]) == 1  # no partitions yet
        assert "persist: 503 not ok: persist: holds no partitions" in capsys.readouterr().out
        persist.partitions = 2
        assert main([*argv, "health", "persist", "--ready"]) == 0
        assert main([*argv, "health", "scorer"]) == 1  # asked for by name, and nothing answers
        assert "scorer: - no answer" in capsys.readouterr().out
    finally:
        server.shutdown()
        server.server_close()
    assert main([*argv, "health"]) == 1
    assert "no service answers" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "health"]) == 2  # no port set: one line saying so
    assert "TXGUARD_METRICS_PORT" in capsys.readouterr().err
