"""``txguard demo``: the main job, end to end on the embedded stack, with a summary."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from txguard.settings import Settings

REAL_FILE = Path("data/credit_card_transactions.csv")
SAMPLE_FILE = Path("data/sample_transactions.csv")


def _data_file(args: argparse.Namespace) -> Path:
    if args.data:
        return Path(args.data)
    if REAL_FILE.exists():
        print(f"using the Kaggle file {REAL_FILE}")
        return REAL_FILE
    if not SAMPLE_FILE.exists():
        from producer.generator import generate

        end = date(2019, 1, 1) + timedelta(days=round(args.months * 30.4))
        print(f"no {REAL_FILE}: generating {args.customers} customers, 2019-01-01 .. {end} -> {SAMPLE_FILE}")
        SAMPLE_FILE.parent.mkdir(parents=True, exist_ok=True)
        summary = generate(SAMPLE_FILE, customers=args.customers, start=date(2019, 1, 1), end=end)
        print(f"  {summary.rows:,} rows, {summary.frauds:,} fraud, {summary.cards} cards in {summary.seconds:.1f}s")
    return SAMPLE_FILE


def _time_range(path: Path) -> tuple[datetime, datetime]:
    """First and last event time: the files are in time order."""
    import csv

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = header.index("trans_date_trans_time")
        first = datetime.fromisoformat(next(reader)[col])
    with open(path, "rb") as f:
        f.seek(max(f.seek(0, 2) - 4096, 0))
        last_line = f.read().decode().strip().splitlines()[-1]
    last = datetime.fromisoformat(next(csv.reader([last_line]))[col])
    return first, last


def _counts(clients) -> dict[str, int]:
    conn = clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM scores),"
                " (SELECT count(*) FROM labels), (SELECT count(*) FROM scores WHERE flagged)"
            )
            t, s, lab, a = cur.fetchone()
        conn.commit()
        return {"transactions": t, "scores": s, "labels": lab, "alerts": a}
    finally:
        conn.close()


DEMO_NAMESPACE = "demo"
STALL_S = 60
EXAMPLE_QUERIES = """\
  SELECT * FROM alerts ORDER BY score DESC LIMIT 20;
  SELECT * FROM daily_activity ORDER BY day;
  SELECT * FROM alert_quality;
Watch alerts live:  .venv/bin/txguard --namespace {namespace} alerts --follow
Stop the stack:     .venv/bin/txguard stack down"""


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from txguard import cli, stack
    from txguard.clients import Clients, setup, teardown

    if not settings.namespace:
        # The demo's own topics, schema and table: every run starts clean and leaves
        # the default namespace to real work.
        settings = settings.model_copy(update={"namespace": DEMO_NAMESPACE})
        args.namespace = DEMO_NAMESPACE
    print("== 1/5 embedded stack")
    ep = stack.up(settings)
    cli._print_endpoints(ep)
    clients = Clients(settings, ep)
    teardown(clients)
    setup(clients)
    print(
        f"  namespace {settings.namespace!r}: topics {settings.topic('transactions')}, ..., "
        f"PostgreSQL schema {settings.pg_schema}, DynamoDB table {settings.behavior_table}"
    )

    print("== 2/5 data")
    path = _data_file(args)
    first, last = _time_range(path)
    split = first + (last - first) * args.train_fraction
    print(f"  {path}: {first} .. {last}; training window before {split:%Y-%m-%d %H:%M}")

    print("== 3/5 training (Isolation Forest + river online detector)")
    t0 = time.monotonic()
    report = cli.train_model(settings, str(path), split, clients)
    cli._print_training(report)
    print(f"  trained in {time.monotonic() - t0:.1f}s -> {settings.model_dir}")

    print("== 4/5 replay through Kafka -> persist + scorer")
    for name in ("persist", "scorer"):
        cli.ready_marker(settings, name).unlink(missing_ok=True)
    procs = cli.start_services(args)
    deadline = time.monotonic() + 60
    while not all(cli.ready_marker(settings, n).exists() for n in ("persist", "scorer")):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            cli.stop_services(procs)
            print("  the consumer services did not join their groups; see their log above", file=sys.stderr)
            return 1
        time.sleep(0.2)
    replay_args = argparse.Namespace(
        speed=None, rate=None, start=split, end=None, limit=None, resume=False, labels="on",
        label_delay_days=7.0, quarantine=None,
    )  # fmt: skip
    t0 = time.monotonic()
    try:
        stats = cli.replay_file(settings, str(path), replay_args, threading.Event())
        cli._print_replay(stats)
        sent = stats.accepted
        target = {k: sent for k in ("transactions", "scores", "labels")}
        last_counts, last_change = None, time.monotonic()
        while True:
            done = _counts(clients)
            elapsed = time.monotonic() - t0
            print(f"\r  {elapsed:6.1f}s  persisted {done['transactions']:>9,}  scored {done['scores']:>9,}  "
                  f"labels {done['labels']:>9,}  alerts {done['alerts']:>6,}  "
                  f"{done['scores'] / max(elapsed, 1e-9):>8,.0f} events/s", end="", flush=True)  # fmt: skip
            if all(done[k] >= target[k] for k in target):
                break
            if done != last_counts:
                last_counts, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                print(f"\n  no progress for {STALL_S}s: some events did not arrive; see `txguard dlq`",
                      file=sys.stderr)  # fmt: skip
                return 1
            if any(p.poll() is not None for p in procs):
                print("\n  a consumer service exited early; see its log above", file=sys.stderr)
                return 1
            time.sleep(1.0)
        elapsed = time.monotonic() - t0
    finally:
        cli.stop_services(procs)
    print()

    print("== 5/5 summary")
    _summary(clients, settings, sent, elapsed)
    return 0


def _summary(clients, settings: Settings, sent: int, elapsed: float) -> None:
    counts = _counts(clients)
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT true_positives, false_positives, missed_frauds, precision, recall FROM alert_quality")
        tp, fp, fn, precision, recall = cur.fetchone()
    conn.close()
    ddb = clients.dynamodb()
    items = sum(page["Count"] for page in ddb.get_paginator("scan").paginate(
        TableName=settings.behavior_table, Select="COUNT"))  # fmt: skip
    print(f"  end to end:          {sent:,} events in {elapsed:.1f}s = {sent / elapsed:,.0f} events/s")
    print(f"  PostgreSQL:          {counts['transactions']:,} transactions, {counts['scores']:,} scores, "
          f"{counts['labels']:,} labels")  # fmt: skip
    print(f"  DynamoDB:            {items:,} customer_behavior items (one per card)")
    print(f"  alerts:              {counts['alerts']:,} ({tp} fraud, {fp} not fraud; {fn} frauds missed)")
    print(f"  precision / recall:  {precision or 0:.3f} / {recall or 0:.3f} against is_fraud")
    from txguard.cli import without_password

    dsn = without_password(clients.endpoints.postgres_dsn)
    if settings.pg_schema != "public":
        dsn += ("&" if "?" in dsn else "?") + f"options=-csearch_path%3D{settings.pg_schema}"
    from txguard.report import render

    conn = clients.pg()
    try:
        chart = render(conn, settings.home / "demo_report.png", title="txguard demo")
    finally:
        conn.close()
    print(f"  chart:               {chart}")
    print("\nQuery the results:")
    print(f"  psql '{dsn}'")
    print(EXAMPLE_QUERIES.format(namespace=settings.namespace))
