"""``txguard demo``: the main job, end to end on the embedded stack, with a summary."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from txguard import console
from txguard.app import App, ReplayRequest
from txguard.settings import DEMO_NAMESPACE, Settings
from txguard.supervisor import start_services, stop_services, wait_until_ready

REAL_FILE = Path("data/credit_card_transactions.csv")
SAMPLE_FILE = Path("data/sample_transactions.csv")
STALL_S = 60
EXAMPLE_QUERIES = """\
  SELECT * FROM alerts ORDER BY score DESC LIMIT 20;
  SELECT * FROM daily_anomaly_trend ORDER BY day;
  SELECT * FROM alert_quality;
Watch alerts live:  .venv/bin/txguard --namespace {namespace} alerts --follow
Dashboard:          .venv/bin/txguard --namespace {namespace} dashboard   (or: txguard demo --serve)
Tableau files:      .venv/bin/txguard --namespace {namespace} tableau
Stop the stack:     .venv/bin/txguard stack down"""


@dataclass(frozen=True)
class DemoOptions:
    data: Path | None = None  # None: the Kaggle file if present, else a generated sample
    customers: int = 300
    months: int = 8
    train_fraction: float = 0.3
    labels: bool = True  # False: no label ever arrives (unsupervised only: training and replay)
    reset_external: bool = False  # reset the namespace on servers configured in settings too
    serve: bool = False  # after the summary, keep the dashboard and the consumer services up until stopped
    serve_host: str = "127.0.0.1"
    serve_port: int = 8050


def data_file(options: DemoOptions) -> Path:
    if options.data:
        return options.data
    if REAL_FILE.exists():
        print(f"using the Kaggle file {REAL_FILE}")
        return REAL_FILE
    if not SAMPLE_FILE.exists():
        from producer.generator import generate

        end = date(2019, 1, 1) + timedelta(days=round(options.months * 30.4))
        print(f"no {REAL_FILE}: generating {options.customers} customers, 2019-01-01 .. {end} -> {SAMPLE_FILE}")
        SAMPLE_FILE.parent.mkdir(parents=True, exist_ok=True)
        summary = generate(SAMPLE_FILE, customers=options.customers, start=date(2019, 1, 1), end=end)
        print(f"  {summary.rows:,} rows, {summary.frauds:,} fraud, {summary.cards} cards in {summary.seconds:.1f}s")
    return SAMPLE_FILE


def time_range(path: Path) -> tuple[datetime, datetime]:
    """First and last event time, wherever they are in the file (a shuffled copy too)."""
    import pandas as pd

    column = pd.read_csv(path, usecols=["trans_date_trans_time"], dtype=str)["trans_date_trans_time"]
    times = pd.to_datetime(column, format="%Y-%m-%d %H:%M:%S", errors="coerce")  # a damaged one is rejected later
    return times.min().to_pydatetime(), times.max().to_pydatetime()


def run_demo(settings: Settings, options: DemoOptions) -> int:
    if not settings.namespace:
        # The demo's own topics, schema and table: every run starts clean and leaves
        # the default namespace to real work.
        settings = settings.model_copy(update={"namespace": DEMO_NAMESPACE})
    app = App(settings)
    print("== 1/5 embedded stack")
    print(console.endpoints_text(app.stack_up()))
    app.reset(confirm_external=options.reset_external)
    print(f"  namespace {settings.namespace!r}: topics {settings.namespaced('transactions')}, ..., "
          f"PostgreSQL schema {settings.pg_schema}, DynamoDB table {settings.behavior_table}")  # fmt: skip

    print("== 2/5 data")
    path = data_file(options)
    first, last = time_range(path)
    split = first + (last - first) * options.train_fraction
    print(f"  {path}: {first} .. {last}; training window before {split:%Y-%m-%d %H:%M}")

    print(
        "== 3/5 training (Isolation Forest, river online detector"
        + (", supervised classifier)" if options.labels else "; labels off: unsupervised only)")
    )
    t0 = time.monotonic()
    report = app.train(str(path), split, supervised=options.labels)
    print(console.training_text(report))
    print(f"  trained in {time.monotonic() - t0:.1f}s -> {settings.model_location}")

    print("== 4/5 replay through Kafka -> persist + scorer")
    procs = start_services(settings)
    serving = False
    try:
        if not wait_until_ready(settings, procs):
            print("  the consumer services did not join their groups; see their log above", file=sys.stderr)
            return 1
        t0 = time.monotonic()
        with console.progress_bar("replay", unit="B") as bar:
            request = ReplayRequest(location=str(path), start=split, labels=options.labels)
            stats = app.replay(request, stop=threading.Event(), on_progress=console.replay_progress(bar))
        print(console.replay_text(stats))
        if not wait_until_stored(app, procs, stats.accepted, labels=options.labels):
            return 1
        elapsed = time.monotonic() - t0
        reading = ("persist", "scorer", "learner") if options.labels else ("persist", "scorer")
        wait_until_consumed(app, procs, [settings.namespaced(name) for name in reading])
        serving = options.serve  # the services stay up while the dashboard serves: verdicts become labels
    finally:
        if not serving:
            stop_services(procs, settings.shutdown_timeout_s)
    print()

    print("== 5/5 summary")
    try:
        print_summary(app, stats.accepted, elapsed, alerts_budget=report.get("alerts_per_day"))
        if serving:
            serve_dashboard(app, options)
    finally:
        if serving:
            stop_services(procs, settings.shutdown_timeout_s)
    return 0


def serve_dashboard(app: App, options: DemoOptions) -> None:
    """The dashboard on the demo's namespace and stack, until Ctrl-C or SIGTERM."""
    from txguard.dashboard.server import serve

    print("\n== dashboard (persist, scorer and learner keep running: verdicts reach them as labels)")
    serve(app.settings, options.serve_host, options.serve_port, app=app,
          on_ready=lambda url: print(f"  dashboard: {url}  (Ctrl-C to stop)", flush=True))  # fmt: skip
    print("  dashboard stopped; stopping the consumer services (the stack stays up: `txguard stack down`)")


def wait_until_stored(app: App, procs: list, sent: int, labels: bool = True) -> bool:
    """Show progress until every event, score and label (if sent) is in PostgreSQL; False on a stall."""
    last_counts, last_change = None, time.monotonic()
    with console.progress_bar("  scored", total=sent, unit="events") as bar:
        while True:
            done = app.counts()
            bar.update(done["scores"] - bar.n)
            bar.set_postfix_str(f"persisted {done['transactions']:,}, labels {done['labels']:,}, "
                                f"alerts {done['alerts']:,}")  # fmt: skip
            if all(done[k] >= sent for k in ("transactions", "scores", "labels")[: 3 if labels else 2]):
                return True
            if done != last_counts:
                last_counts, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                bar.write(
                    f"  no progress for {STALL_S}s: some events did not arrive; see `txguard dlq`", file=sys.stderr
                )
                return False
            if any(p.poll() is not None for p in procs):
                bar.write("  a consumer service exited early; see its log above", file=sys.stderr)
                return False
            time.sleep(1.0)


def wait_until_consumed(app: App, procs: list, groups: Sequence[str] = ()) -> None:
    """Until every service's group has read everything: the learner trails persist and the scorer,
    and the embedded broker keeps events in memory only (`txguard stack down` refuses to lose any).

    ``groups``: the groups that must have committed before the wait ends. The broker counts what a
    group has left from its committed offsets, so a group yet to make its first checkpoint (the
    learner still waiting for its labels' scores) would otherwise look as if it had nothing left.
    """
    from txguard.clients import unconsumed

    if app.settings.kafka_bootstrap:
        return  # a Kafka of its own keeps what is unread, and its other groups are not the demo's

    def left_and_silent() -> tuple[int, list[str]]:
        lag = unconsumed(app.clients, idle_s=1.0)
        return sum(lag.values()), [g for g in groups if g not in lag]

    left, silent = left_and_silent()
    if not left and not silent:
        return
    last_change = time.monotonic()
    with console.progress_bar("  every service reads the rest", total=left, unit="events") as bar:
        while left or silent:
            if any(p.poll() is not None for p in procs) or time.monotonic() - last_change > STALL_S:
                bar.write(f"  {left:,} events not yet consumed{', nothing committed by ' if silent else ''}"
                          f"{', '.join(silent)} (`txguard stack down` will say by which service)",
                          file=sys.stderr)  # fmt: skip
                return
            time.sleep(1.0)
            now, silent_now = left_and_silent()
            if (now, silent_now) != (left, silent):
                bar.update(max(left - now, 0))
                left, silent, last_change = now, silent_now, time.monotonic()


def print_summary(app: App, sent: int, elapsed: float, alerts_budget: float | None = None) -> None:
    """Throughput and what was stored, then ``txguard evaluate``'s report: every detector on the replayed period."""
    from txguard.evaluate import format_report

    settings = app.settings
    counts = app.counts()
    print(f"  end to end:          {sent:,} events in {elapsed:.1f}s = {sent / elapsed:,.0f} events/s")
    print(f"  PostgreSQL:          {counts['transactions']:,} transactions, {counts['scores']:,} scores, "
          f"{counts['labels']:,} labels")  # fmt: skip
    print(f"  DynamoDB:            {app.behavior_items():,} customer_behavior items (one per card)")
    result = app.evaluate(curves_png=settings.home / "demo_curves.png", alerts_budget=alerts_budget)
    print()
    print("\n".join(f"  {line}" if line else "" for line in format_report(result).splitlines()))
    print()
    dsn = console.without_password(app.clients.endpoints.postgres_dsn)
    if settings.pg_schema != "public":
        dsn = console.with_search_path(dsn, settings.pg_schema)
    report = app.report(settings.home / "demo_report", title="txguard demo", budget=alerts_budget)
    print(f"  report:              {report}  (open it in a browser: it needs no network)")
    print("\nQuery the results:")
    print(f"  psql '{dsn}'")
    print(EXAMPLE_QUERIES.format(namespace=settings.namespace))
