"""txguard's persist against a peer on the same topic and the same PostgreSQL, in one run.

The peer (benchmarks/peer_quix.py) is the persist job a quix-streams user writes: its
PostgreSQL sink, defaults otherwise. Each job drains the same preloaded transactions
topic in a consumer group of its own, one after the other, into its own table of the
same schema. Rate: the rows written from the first one seen to the last, over the time
between (both jobs' start-up, and the first batch before any row shows, are left out
the same way). Result: ``benchmarks/results/peer.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from psycopg2.extensions import parse_dsn

from benchmarks.run import HERE, _next_poll, _pg_count, _stop, _train_and_preload, _txguard, _write
from schemas.topics import TRANSACTIONS
from txguard.clients import Clients
from txguard.settings import Settings

PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
PEER_TABLE = "quix_transactions"


def _exists(clients: Clients, table: str) -> bool:
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def _drain_rate(
    clients: Clients, table: str, events: int, proc: subprocess.Popen, limit_s: float, log: Path | None = None
) -> dict:
    t_first: float | None = None
    n_first = 0
    deadline = time.monotonic() + limit_s
    while True:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text().splitlines()[-20:]) if log else ""
            raise RuntimeError(f"{table}: the job exited with {proc.returncode}\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{table}: not drained in {limit_s} s")
        n = _pg_count(clients, table) if _exists(clients, table) else 0  # the peer creates it on its first batch
        now = time.perf_counter()
        if n and t_first is None:
            t_first, n_first = now, n
        if n >= events:
            break
        rate = (n - n_first) / (now - t_first) if t_first is not None and now > t_first else 0.0
        time.sleep(_next_poll(events - n, rate) if rate else 0.1)
    assert t_first is not None
    seconds = now - t_first
    per_s = round((n - n_first) / seconds) if seconds else None
    return {"rows": n, "seconds": round(seconds, 2), "events_per_s": per_s}


def bench_peer(settings: Settings, path: Path, limit: int, limit_s: float = 1800) -> dict:
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} is missing: make bench creates it (benchmarks/peer-requirements.txt)")
    events, _ = _train_and_preload(settings, path, limit=limit, train=False)
    clients = Clients(settings)

    persist = subprocess.Popen(_txguard(settings, "consume", "persist"))
    try:
        ours = _drain_rate(clients, "transactions", events, persist, limit_s)
    finally:
        _stop([persist])

    # The same connection parameters as txguard's (a passfile, where the DSN names one: libpq reads it
    # when the password is empty); the sink hands what it does not know to psycopg2.connect.
    pg: dict = {"password": "", **parse_dsn(clients.endpoints.postgres_dsn)}
    pg["port"] = int(pg["port"])
    log = settings.home / "logs" / "quix-peer.log"
    with open(log, "wb") as out:
        argv = [str(PEER_PYTHON), str(HERE / "peer_quix.py"), clients.endpoints.kafka_bootstrap,
                settings.topic(TRANSACTIONS), settings.namespaced("quix-persist"), settings.pg_schema, PEER_TABLE,
                str(settings.home / "quix-state")]  # fmt: skip
        env = {**os.environ, "PEER_PG": json.dumps(pg)}
        peer = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        theirs = _drain_rate(clients, PEER_TABLE, events, peer, limit_s, log)
    finally:
        _stop([peer])
    result = {
        "events": events,
        "txguard_persist": ours,
        "quix_streams_peer": {**theirs, "version": _peer_version()},
        "txguard_vs_peer_ratio": round(ours["events_per_s"] / theirs["events_per_s"], 3),
        "note": "same topic, same PostgreSQL, one after the other; peer = quix-streams Application + PostgreSQLSink "
                "with its defaults (benchmarks/peer_quix.py)",
    }  # fmt: skip
    _write("peer", result)
    return result


def _peer_version() -> str:
    out = subprocess.run([str(PEER_PYTHON), "-c", "import quixstreams; print(quixstreams.__version__)"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()
