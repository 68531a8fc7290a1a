"""Bad command-line input gives one clear line and exit code 2, never a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest

from model.features import FEATURE_NAMES
from model.online_classifier import OnlineClassifier
from model.registry import ModelRegistry
from txguard.cli import main


def test_missing_file_is_one_clear_line(capsys, tmp_path):
    assert main(["--home", str(tmp_path), "replay", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"txguard: error: no such file: {tmp_path / 'missing.csv'}"


def test_wrong_columns_are_named(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("trans_date_trans_time,cc_num,amount\n2019-01-01 00:00:18,2703186189652095,4.97\n")
    assert main(["--home", str(tmp_path), "replay", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("txguard: error:") and "missing columns: merchant, category, amt" in err
    assert "unknown columns: amount" in err and "Traceback" not in err


def test_no_stack_running_says_what_to_do(capsys, tmp_path, kaggle_csv, monkeypatch):
    for name in ("TXGUARD_KAFKA_BOOTSTRAP", "TXGUARD_POSTGRES_DSN", "TXGUARD_DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--home", str(tmp_path), "replay", str(kaggle_csv)]) == 2
    assert "run `txguard stack up`" in capsys.readouterr().err


def test_bad_option_values_are_rejected_by_the_parser(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "txguard.cli", "replay", "x.csv", "--start", "yesterday"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a date/time" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["consume", "nothing"], ["stack", "sideways"]])
def test_unknown_choices_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_printed_dsns_hide_the_password():
    from txguard.console import without_password

    assert without_password("postgresql://txguard:s3cr%40t@db:5432/txguard?sslmode=require") == (
        "postgresql://txguard:***@db:5432/txguard?sslmode=require"
    )
    assert without_password("postgresql://postgres@127.0.0.1:15432/txguard") == (
        "postgresql://postgres@127.0.0.1:15432/txguard"
    )


@pytest.mark.parametrize(
    ("dsn", "printed"),
    [
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # a raw @ in the password: all of it hidden
        ("postgresql://:s3cret@db/x", "postgresql://:***@db/x"),
        (
            "postgresql://u@db/x?sslmode=require&password=s3cret&application_name=a",
            "postgresql://u@db/x?sslmode=require&password=***&application_name=a",
        ),
        ("postgres://u@db/x?PASSWORD=s3cret", "(not shown: the DSN does not parse)"),  # libpq refuses it too
        ("postgresql://u@db/x?sslpassword=s3cret", "postgresql://u@db/x?sslpassword=***"),
        (
            "postgresql://txguard@127.0.0.1:15432/txguard?passfile=/home/me/.txguard/postgres.pgpass",
            "postgresql://txguard@127.0.0.1:15432/txguard?passfile=/home/me/.txguard/postgres.pgpass",
        ),
        ("host=db user=u password=s3cret dbname=x", "user=u password=*** dbname=x host=db"),  # rebuilt by libpq
        ("host=db password = 's3 c\\'ret' dbname=x", "password=*** dbname=x host=db"),
        ("password=s3cret", "password=***"),
        ("host=db sslpassword=s3cret", "host=db sslpassword=***"),
        ("host=db user=u dbname=x", "host=db user=u dbname=x"),
    ],
)
def test_printed_dsns_hide_the_password_in_every_form(dsn, printed):
    from txguard.console import without_password

    assert without_password(dsn) == printed


def test_model_commands_list_promote_and_shadow_versions(capsys, tmp_path, kaggle_csv):
    home = ["--home", str(tmp_path)]
    assert main([*home, "model", "list"]) == 0
    assert "no models yet" in capsys.readouterr().out
    assert main([*home, "train", str(kaggle_csv)]) == 0
    assert main([*home, "train", str(kaggle_csv), "--shadow"]) == 0
    out = capsys.readouterr().out
    first, second = [line.split()[2] for line in out.splitlines() if line.startswith("registered model")]
    assert main([*home, "model", "list"]) == 0
    *versions, learned = capsys.readouterr().out.splitlines()[1:]
    roles = {line.split()[0]: line.split()[1] for line in versions}
    assert roles == {first: "current", second: "shadow"}
    assert learned.startswith("online classifier: none yet")
    assert main([*home, "model", "promote", second]) == 0
    assert main([*home, "model", "shadow", first]) == 0
    capsys.readouterr()
    classifier = OnlineClassifier(min_frauds=1, min_labels=2, min_auc=0.0)
    classifier.learn_many(np.zeros((3, len(FEATURE_NAMES))), np.array([True, False, False]), "2019-07-08T10:00:00")
    ModelRegistry(tmp_path / "model").publish_learned(classifier.snapshot())
    assert main([*home, "model", "list"]) == 0
    *versions, learned = capsys.readouterr().out.splitlines()[1:]
    roles = {line.split()[0]: line.split()[1] for line in versions}
    assert roles == {first: "shadow", second: "current"}
    assert learned == ("online classifier: online-1, 3 labels (1 frauds) up to 2019-07-08T10:00:00; in the ensemble")
    assert main([*home, "model", "promote", "no-such-version"]) == 2
    assert "no model version 'no-such-version'" in capsys.readouterr().err


def test_model_show_prints_the_data_hash_each_detector_held_out_and_the_calibration(capsys, tmp_path, kaggle_csv):
    home = ["--home", str(tmp_path)]
    assert main([*home, "model", "show"]) == 2
    assert "no models yet" in capsys.readouterr().err
    assert main([*home, "train", str(kaggle_csv)]) == 0
    trained = capsys.readouterr().out
    assert "held out (from the label cut-off" in trained
    assert main([*home, "model", "list"]) == 0
    header, line = capsys.readouterr().out.splitlines()[:2]  # then the learner's snapshot
    assert header.split()[-6:] == ["ROC-AUC", "PR-AUC", "prec", "recall", "Brier", "P@thr"]
    version, data = line.split()[0], line.split()[6]
    assert main([*home, "model", "show", version]) == 0
    shown = capsys.readouterr().out
    assert f"data sha256:   {data}" in shown  # list shows the start of the hash
    assert "scikit-learn" in shown and "held out:" in shown
    for detector in ("iforest", "online", "ensemble"):
        assert any(row.split()[:1] == [detector] for row in shown.splitlines())
    assert "calibration" in shown


def test_the_alert_budget_comes_from_the_flag_or_the_setting(capsys, tmp_path, kaggle_csv, monkeypatch):
    home = ["--home", str(tmp_path)]
    assert main([*home, "train", str(kaggle_csv), "--alerts-per-day", "42"]) == 0
    monkeypatch.setenv("TXGUARD_ALERTS_PER_DAY", "7.5")
    assert main([*home, "train", str(kaggle_csv), "--shadow"]) == 0
    budgets = [
        json.loads(p.read_text())["alerts_per_day"] for p in sorted((tmp_path / "model").glob("versions/*/model.json"))
    ]
    assert sorted(budgets) == [7.5, 42.0]


def test_stack_status_shows_each_endpoint_with_only_the_dsn_masked(capsys, tmp_path, monkeypatch):
    from txguard import stack

    monkeypatch.setattr(stack, "status", lambda _settings: {  # the running servers: a boundary here
        "kafka": {"running": True, "bootstrap": "127.0.0.1:19092"},
        "postgres": {"running": True, "dsn": "postgresql://txguard:s3cret@127.0.0.1:15432/txguard"},
        "moto": {"running": False, "endpoint": "http://127.0.0.1:15000"}})  # fmt: skip
    assert main(["--home", str(tmp_path), "stack", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["kafka", "running", "127.0.0.1:19092"]
    assert lines[1].split() == ["postgres", "running", "postgresql://txguard:***@127.0.0.1:15432/txguard"]
    assert lines[2].split() == ["moto", "stopped", "http://127.0.0.1:15000"]
    assert lines[3] == "DynamoDB: moto, in memory: its tables are lost at `stack down`"  # no dynalite running
