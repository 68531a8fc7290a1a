"""Whether the embedded stack can run dynalite, and the one-line reason when not (then moto serves DynamoDB)."""

from pathlib import Path

import pytest

from txguard import stack


def test_without_node_on_the_path_the_reason_says_so(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert stack.dynalite_missing() == "no Node.js on the PATH"


def test_without_npm_ci_the_reason_names_make_install(monkeypatch, tmp_path):
    if stack.shutil.which("node") is None:
        pytest.skip("no Node.js here: the reason is then the missing Node.js, tested above")
    monkeypatch.setattr(stack, "DYNALITE_CLI", tmp_path / "node_modules" / "dynalite" / "cli.js")
    reason = stack.dynalite_missing()
    assert reason is not None and "make install" in reason and "\n" not in reason


def test_the_lockfile_pins_the_dynalite_that_package_json_names():
    import json

    top = Path(stack.__file__).resolve().parents[1]
    wanted = json.loads((top / "package.json").read_text())["dependencies"]["dynalite"]
    locked = json.loads((top / "package-lock.json").read_text())["packages"]["node_modules/dynalite"]["version"]
    assert locked == wanted
