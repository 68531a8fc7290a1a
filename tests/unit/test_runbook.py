"""deploy/README.md, the runbook: every txguard command it gives parses with the CLI, every TXGUARD_* variable it
names is a setting, its Python snippets compile and import, and the README links to it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from txguard.cli import parser
from txguard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "deploy" / "README.md").read_text()
# Placeholders the runbook writes in capitals or <angle brackets>, and a value of the right type for each.
PLACEHOLDERS = {"N": "1", "T": "2019-07-01", "VERSION": "v1", "FILE": "data/history.csv"}


def commands() -> list[str]:
    """Each `txguard ...` of the runbook's inline code, a line break inside one read as a space."""
    found = {" ".join(text.split()) for text in re.findall(r"`(txguard [^`]+)`", RUNBOOK)}
    for block in re.findall(r"```bash\n(.*?)```", RUNBOOK, flags=re.S):
        found |= {line.split("#")[0].strip() for line in block.splitlines() if line.startswith("txguard ")}
    return sorted(found)


def argv_of(command: str) -> list[str]:
    command = re.sub(r"<previous version>", "v1", command)
    command = re.sub(r"<[^>]+>", "2019-07-01", command)  # the runbook's other <...> are times
    command = re.sub(r"\[[^\]]*\]", "", command)  # [OPTIONAL] parts: the command without them
    words = [word.split("\\|")[0] for word in command.split()[1:]]  # FILE\|s3://...: one of the two
    return [PLACEHOLDERS.get(word, word) for word in words]


def test_the_runbook_gives_commands():
    assert len(commands()) >= 20


@pytest.mark.parametrize("command", commands())
def test_every_command_is_a_real_txguard_command(command, capsys):
    try:
        args = parser().parse_args(argv_of(command))
    except SystemExit:
        pytest.fail(f"`{command}` is refused by the CLI: {capsys.readouterr().err.strip()}")
    assert callable(args.func)


def test_every_variable_it_names_is_a_setting():
    named = set(re.findall(r"\bTXGUARD_[A-Z0-9_]+\b", RUNBOOK))
    assert {"TXGUARD_KAFKA_BOOTSTRAP", "TXGUARD_CARD_TOKEN_KEY", "TXGUARD_PARTITIONS"} <= named
    unknown = sorted(name for name in named
                     if name.removeprefix("TXGUARD_").lower() not in Settings.model_fields)  # fmt: skip
    assert not unknown, f"not Settings fields: {unknown}"


def test_its_python_snippets_compile_and_their_imports_resolve():
    blocks = re.findall(r"```python\n(.*?)```", RUNBOOK, flags=re.S)
    assert blocks
    for block in blocks:
        compile(block, "deploy/README.md", "exec")
        imports = "\n".join(line for line in block.splitlines() if line.startswith(("import ", "from ")))
        exec(compile(imports, "deploy/README.md", "exec"), {})  # noqa: S102 - the runbook's own import lines


def test_the_readme_links_the_runbook():
    assert "(deploy/README.md)" in (ROOT / "README.md").read_text()


def test_the_settings_example_is_an_env_file_the_settings_accept(monkeypatch, tmp_path):
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", RUNBOOK, flags=re.S) if "TXGUARD_KAFKA_BOOTSTRAP=" in b]
    lines = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    variables = dict(line.split("=", 1) for line in lines)
    assert all(re.fullmatch(r"TXGUARD_[A-Z0-9_]+", name) for name in variables)
    assert not [value for value in variables.values() if " #" in value], "docker --env-file keeps an inline comment"
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in list(os.environ):
        if name.startswith("TXGUARD_"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.production and settings.partitions == 12 and settings.metrics_port == 9400
    assert settings.topic_replication_factor == -1  # an external Kafka: the broker's default replication
