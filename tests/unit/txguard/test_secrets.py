"""Secrets stay out of what is printed and out of every command line."""

from __future__ import annotations

import subprocess

import pytest
from psycopg2.extensions import parse_dsn

from txguard import supervisor
from txguard.cli import main, parser, settings_from
from txguard.console import with_search_path, without_password
from txguard.settings import Settings

SECRET = "s3cr@t p&ss=wörd"


@pytest.mark.parametrize(
    ("dsn", "printed"),
    [
        ("postgresql://txguard:s3cr%40t@db:5432/txguard?sslmode=require",
         "postgresql://txguard:***@db:5432/txguard?sslmode=require"),
        ("postgres://u@db/x?password=abc&sslmode=require", "postgres://u@db/x?password=***&sslmode=require"),
        ("postgresql://u:abc@db/x?sslpassword=def&application_name=a%20b",
         "postgresql://u:***@db/x?sslpassword=***&application_name=a%20b"),
        ("host=db user=u password=abc dbname=x", "user=u password=*** dbname=x host=db"),  # in libpq's order
        ("host=db user=u password='a b' dbname=x", "user=u password=*** dbname=x host=db"),  # in libpq's order
        ("postgresql://postgres@127.0.0.1:15432/txguard", "postgresql://postgres@127.0.0.1:15432/txguard"),
        ("host=127.0.0.1 port=15432 dbname=txguard", "host=127.0.0.1 port=15432 dbname=txguard"),
        ("postgresql://u:abc@db/x?oops", "(not shown: the DSN does not parse)"),
    ],
)  # fmt: skip
def test_printed_dsns_hide_every_password(dsn, printed):
    assert without_password(dsn) == printed


@pytest.mark.parametrize("form", ["url", "url-query", "keyword"])
def test_no_form_of_password_survives(form):
    from urllib.parse import quote

    from psycopg2.extensions import make_dsn

    dsn = {
        "url": f"postgresql://u:{quote(SECRET, safe='')}@db:5432/x",
        "url-query": f"postgresql://u@db/x?password={quote(SECRET, safe='')}",
        "keyword": make_dsn(host="db", user="u", password=SECRET, dbname="x"),
    }[form]
    assert parse_dsn(dsn)["password"] == SECRET
    printed = without_password(dsn)
    assert parse_dsn(printed)["password"] == "***" and "s3cr" not in printed and "w%C3%B6rd" not in printed


def test_the_psql_hint_keeps_the_dsn_form():
    assert with_search_path("postgresql://u:***@db/x", "demo") == "postgresql://u:***@db/x?options=-csearch_path%3Ddemo"
    assert parse_dsn(with_search_path("host=db password=*** dbname=x", "demo"))["options"] == "-csearch_path=demo"


def test_a_dsn_on_the_command_line_is_refused(capsys, tmp_path):
    assert main(["--home", str(tmp_path), "--postgres-dsn", "postgresql://u:hunter2@db/x", "stack", "status"]) == 2
    err = capsys.readouterr().err
    assert "--postgres-dsn is not accepted" in err and "TXGUARD_POSTGRES_DSN" in err and "hunter2" not in err


def test_the_dsn_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TXGUARD_POSTGRES_DSN", raising=False)
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text("postgresql://u:hunter2@db/x\n")
    settings = settings_from(parser().parse_args(["--postgres-dsn-file", str(dsn_file), "setup"]))
    assert settings.postgres_dsn.get_secret_value() == "postgresql://u:hunter2@db/x"
    monkeypatch.setenv("TXGUARD_POSTGRES_DSN", "postgresql://u:env@db/x")
    assert settings_from(parser().parse_args(["setup"])).postgres_dsn.get_secret_value() == "postgresql://u:env@db/x"


def test_services_get_the_dsn_through_the_environment_not_argv(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, env: started.append((argv, env)))
    settings = Settings(home=tmp_path, namespace="ns", postgres_dsn="postgresql://u:hunter2@db/x",
                        kafka_bootstrap="k:9092")  # fmt: skip
    supervisor.start_services(settings)
    assert len(started) == 3
    for argv, env in started:
        assert not any("hunter2" in arg for arg in argv)
        assert env["TXGUARD_POSTGRES_DSN"] == "postgresql://u:hunter2@db/x"
