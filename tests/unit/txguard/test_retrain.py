"""Retraining from the application layer and the CLI, without servers: settings, the registry's cut-off."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from consumers.retrainer import RetrainerService
from model.registry import ModelRegistry
from model.train import train
from producer.cards import CardProtector
from producer.history import load_history
from producer.source import CsvSource
from txguard.app import App, AppError
from txguard.cli import main, parser, settings_from
from txguard.settings import Settings


@pytest.fixture
def model(kaggle_csv):
    return train(load_history(CsvSource(str(kaggle_csv)), CardProtector(b"unit-test-key-0123456789")))[0]


def test_the_schedule_resumes_from_the_latest_cut_off_in_the_registry(tmp_path, model):
    app = App(Settings(home=tmp_path, retrain_every_days=3))
    assert app.trained_until() is None
    registry = ModelRegistry(app.settings.model_location)
    registry.save(model)  # trained from a file: its last event is its cut-off
    assert app.trained_until() == datetime.fromisoformat(model.metadata["training_data"]["end"])
    model.metadata["training_data"]["until"] = "2019-08-01T00:00:00"  # a retrain records the cut-off it was given
    registry.save(model, promote=False, shadow=True)
    assert app.trained_until() == datetime(2019, 8, 1)

    service = app.retrainer()
    assert isinstance(service, RetrainerService) and service.trained_until == datetime(2019, 8, 1)
    assert service.policy.every == timedelta(days=3) and not service.policy.on_drift
    assert service.policy.min_interval == timedelta(days=1)
    assert service.topics == ["transactions", "drift"]


def test_a_retrainer_with_no_schedule_and_no_drift_is_refused_in_one_line(capsys, tmp_path):
    with pytest.raises(AppError, match="--every-days N and/or --on-drift"):
        App(Settings(home=tmp_path)).retrainer()
    assert main(["--home", str(tmp_path), "consume", "retrainer"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("txguard: error: the retrainer needs") and "Traceback" not in err


def test_consume_retrainer_flags_override_the_settings():
    args = parser().parse_args(["consume", "retrainer", "--every-days", "7", "--on-drift", "--min-interval-days",
                                "0.5"])  # fmt: skip
    s = settings_from(args)
    assert (s.retrain_every_days, s.retrain_on_drift, s.retrain_min_interval_days) == (7.0, True, 0.5)
    untouched = settings_from(parser().parse_args(["consume", "retrainer"]))
    assert (untouched.retrain_every_days, untouched.retrain_on_drift) == (None, False)
    assert parser().parse_args(["retrain", "--until", "2019-07-01"]).until == datetime(2019, 7, 1)
