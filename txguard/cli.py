"""``txguard``: the command line. Each command is a thin shell over the packages."""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from schemas.topics import ALERTS, DLQ, LABELS, SCORES, TRANSACTIONS
from txguard.settings import Settings

log = logging.getLogger("txguard")


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


# --- settings and shared helpers ---------------------------------------------------------


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, explicit flags over it."""
    overrides = {
        key: value
        for key in ("kafka_bootstrap", "postgres_dsn", "dynamodb_endpoint", "namespace", "partitions", "home")
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def card_key(settings: Settings) -> bytes:
    """The tokenisation key: from settings; in local mode generated once and kept."""
    key = settings.card_token_key.get_secret_value()
    if key:
        return key.encode()
    if settings.production:
        raise CliError("TXGUARD_CARD_TOKEN_KEY is not set: production mode will not invent a key")
    path = settings.home / "card_token.key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def clients_for(settings: Settings):
    from txguard.clients import Clients

    return Clients(settings)


def open_source(location: str, clients=None):
    from producer.source import CsvSource

    s3 = clients.s3() if location.startswith("s3://") and clients is not None else None
    return CsvSource(location, s3_client=s3)


def _progress_printer(label: str):
    from producer.progress import progress_line

    def show(stats, source) -> None:
        print(f"\r{label} {progress_line(stats)}   ", end="", file=sys.stderr, flush=True)

    return show


# --- commands ----------------------------------------------------------------------------


def cmd_stack(args: argparse.Namespace) -> int:
    from txguard import stack

    settings = settings_from(args)
    if args.action == "up":
        ports = {k: v for k, v in (("kafka", args.kafka_port), ("postgres", args.postgres_port),
                                   ("moto", args.moto_port)) if v}  # fmt: skip
        ep = stack.up(settings, ports)
        _print_endpoints(ep)
    elif args.action == "down":
        stopped = stack.down(settings)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for name, entry in stack.status(settings).items():
            where = entry.get("bootstrap") or entry.get("dsn") or entry.get("endpoint") or "-"
            print(f"{name:9} {'running' if entry['running'] else 'stopped':8} {where}")
        external = {"kafka": settings.kafka_bootstrap, "postgres": bool(settings.postgres_dsn.get_secret_value()),
                    "dynamodb": settings.dynamodb_endpoint}  # fmt: skip
        for name, value in external.items():
            if value:
                print(f"{name:9} external (from settings)")
    return 0


def without_password(dsn: str) -> str:
    """A DSN fit to print: the password, if any, replaced."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def _print_endpoints(ep) -> None:
    print(f"Kafka bootstrap servers: {ep.kafka_bootstrap}")
    print(f"PostgreSQL DSN:          {without_password(ep.postgres_dsn)}")
    print(f"DynamoDB endpoint:       {ep.dynamodb_endpoint}")
    print(f"S3 endpoint:             {ep.s3_endpoint}")


def cmd_setup(args: argparse.Namespace) -> int:
    from txguard.clients import setup

    done = setup(clients_for(settings_from(args)))
    for what, items in done.items():
        print(f"{what}: {', '.join(items) if items else 'already in place'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from producer.generator import generate

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = generate(out, customers=args.customers, start=args.start, end=args.end, seed=args.seed,
                       progress=lambda n: print(f"\rgenerated {n:,} rows", end="", file=sys.stderr))  # fmt: skip
    print(f"\n{summary.rows:,} rows ({summary.frauds:,} fraud, {summary.cards} cards) -> {out} "
          f"in {summary.seconds:.1f}s")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    clients = clients_for(settings) if args.path.startswith("s3://") else None
    report = train_model(settings, args.path, args.until, clients=clients)
    _print_training(report)
    return 0


def train_model(settings: Settings, location: str, until: datetime | None, clients=None) -> dict:
    from model.registry import save
    from model.train import train
    from producer.cards import CardProtector
    from producer.history import load_history

    history = load_history(open_source(location, clients), CardProtector(card_key(settings)), until)
    if history.empty:
        raise CliError(f"no valid rows before {until} in {location} to train on")
    model, report = train(history, source=location)
    save(model, settings.model_dir)
    return report


def _print_training(report: dict) -> None:
    q = report.get("training_quality", {})
    td = report["training_data"]
    print(f"trained on {td['rows']:,} rows ({td['start']} .. {td['end']}); threshold {report['threshold']:.4f}")
    if q:
        print(f"  in-sample: ROC-AUC {q.get('roc_auc', float('nan')):.3f}  PR-AUC {q.get('pr_auc', float('nan')):.3f}"
              f"  precision {q['precision']:.3f}  recall {q['recall']:.3f} at the alert threshold")  # fmt: skip


def cmd_replay(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    stats = replay_file(settings, args.path, args)
    _print_replay(stats)
    return 1 if stats.delivery_errors else 0


def replay_file(settings: Settings, location: str, args: argparse.Namespace, stop: threading.Event | None = None):
    from producer.cards import CardProtector
    from producer.checkpoint import ReplayCheckpoint
    from producer.replay import ReplayOptions, Topics, replay

    if not location.startswith("s3://"):
        open_source(location).check_header()
    clients = clients_for(settings)
    checkpoint = settings.home / f"replay.{settings.namespace or 'default'}.checkpoint.json"
    resume_after, resume_labels = 0, []
    if getattr(args, "resume", False) and (saved := ReplayCheckpoint.load(checkpoint, location)):
        resume_after, resume_labels = saved.line, saved.pending_labels
        print(f"resuming {location} after line {resume_after:,} ({len(resume_labels):,} labels pending)",
              file=sys.stderr)  # fmt: skip
    options = ReplayOptions(
        speed=args.speed, rate=args.rate, start=args.start, end=args.end, limit=args.limit,
        labels=args.labels == "on", label_delay=timedelta(days=args.label_delay_days),
        resume_after_line=resume_after, resume_labels=resume_labels,
        quarantine=Path(args.quarantine) if args.quarantine else settings.home / "quarantine.jsonl",
        checkpoint=checkpoint,
    )  # fmt: skip
    topics = Topics(settings.topic(TRANSACTIONS), settings.topic(LABELS), settings.topic(DLQ))
    source = open_source(location, clients)
    producer = clients.producer()
    if stop is None:
        from streaming.signals import install_signal_handlers

        stop = threading.Event()
        install_signal_handlers(stop)  # Ctrl-C: finish the row, flush, checkpoint, exit
    return replay(source, producer, topics, CardProtector(card_key(settings)), options, stop=stop,
                  on_progress=_progress_printer("replay"))  # fmt: skip


def _print_replay(stats) -> None:
    print(file=sys.stderr)
    print(f"sent {stats.accepted:,} events, {stats.labels:,} labels; rejected {stats.rejected_rows:,} rows; "
          f"skipped {stats.skipped:,}; {stats.rows_per_s:,.0f} rows/s")  # fmt: skip
    for reason, n in stats.rejected.most_common():
        print(f"  {n:>9,} rows: {reason}")
    if stats.delivery_errors:
        print(f"  {stats.delivery_errors:,} deliveries FAILED: see the log; rerun with --resume")


def build_service(settings: Settings, which: str):
    """The service object and the producer its loop flushes."""
    clients = clients_for(settings)
    producer = clients.producer()
    if which == "persist":
        from consumers.persist import PersistService
        from consumers.postgres import PostgresSink

        topics = {spec.name: settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS)}
        return PersistService(topics, PostgresSink(clients.pg)), clients, producer
    from consumers.card_state import BehaviorStore
    from consumers.scorer import ScorerService
    from model.registry import ModelRegistry

    registry = ModelRegistry(settings.model_dir)
    service = ScorerService(
        settings.topic(TRANSACTIONS), settings.topic(SCORES), settings.topic(ALERTS),
        BehaviorStore(clients.dynamodb(), settings.behavior_table), registry.load(), producer,
        threshold=settings.alert_threshold,
        online_checkpoint=registry.online_checkpoint(settings.namespace),
    )  # fmt: skip
    return service, clients, producer


def cmd_consume(args: argparse.Namespace) -> int:
    from streaming.loop import run
    from streaming.signals import install_signal_handlers

    settings = settings_from(args)
    service, clients, producer = build_service(settings, args.service)
    stop = threading.Event()
    install_signal_handlers(stop)
    log.info("%s: consuming %s", service.name, ", ".join(service.topics))
    ready = ready_marker(settings, service.name)
    stats = run(service, clients.consumer(service.name), producer, settings.topic(DLQ),
                batch_size=settings.batch_size, batch_wait_s=settings.batch_wait_s, stop=stop,
                commit_interval_s=settings.commit_interval_s, on_assign=lambda _partitions: ready.touch())  # fmt: skip
    ready.unlink(missing_ok=True)  # the loop closed the service (the scorer saved its online detector)
    log.info("%s: stopped after %d messages in %d batches (%d dead-lettered)",
             service.name, stats.messages, stats.batches, stats.dead_lettered)  # fmt: skip
    return 0


def ready_marker(settings: Settings, service: str) -> Path:
    """A file that exists while the service holds partitions: lets scripts wait for it."""
    run_dir = settings.home / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir / f"{settings.namespace or 'default'}.{service}.ready"


def start_services(args: argparse.Namespace, services=("persist", "scorer")) -> list[subprocess.Popen]:
    """Each service in its own process: they use both cores and fail independently.

    Settings go down as flags, but the DSN (it may hold a password) through the
    environment, where ``ps`` does not show it.
    """
    env = dict(os.environ)
    if getattr(args, "postgres_dsn", None):
        env["TXGUARD_POSTGRES_DSN"] = args.postgres_dsn
    argv = [sys.executable, "-m", "txguard.cli", *_settings_argv(args)]
    return [subprocess.Popen([*argv, "consume", name], env=env) for name in services]


def stop_services(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def _settings_argv(args: argparse.Namespace) -> list[str]:
    argv = []
    for key in ("home", "namespace", "partitions", "kafka_bootstrap", "dynamodb_endpoint"):
        value = getattr(args, key, None)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def cmd_run(args: argparse.Namespace) -> int:
    procs = start_services(args)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_services(procs)
    return max((p.returncode or 0) for p in procs)


def cmd_alerts(args: argparse.Namespace) -> int:
    import orjson

    from streaming.message import value_of
    from streaming.reader import read_to_end

    settings = settings_from(args)
    clients = clients_for(settings)
    group = f"alerts-viewer-{os.getpid()}"
    consumer = clients.consumer(group, **{"auto.offset.reset": "latest" if args.follow else "earliest",
                                          "enable.partition.eof": True})  # fmt: skip
    shown = 0
    print(f"{'time':19}  {'card':19} {'amount':>10}  {'category':14} {'score':>5}  reason")
    try:
        for msg in read_to_end(consumer, settings.topic(ALERTS), follow=args.follow):
            a = orjson.loads(value_of(msg))
            print(f"{a['event_time'][:19]:19}  {a['card_masked']:19} {a['amt']:>10,.2f}  {a['category']:14} "
                  f"{a['score']:5.3f}  {a['reason']}", flush=True)  # fmt: skip
            shown += 1
            if args.limit and shown >= args.limit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """Count the dead-lettered messages by reason and list the latest ones."""
    from collections import Counter

    from producer.cards import redact
    from schemas.events import DeadLetter
    from streaming.reader import read_to_end

    settings = settings_from(args)
    consumer = clients_for(settings).consumer(
        f"dlq-viewer-{os.getpid()}", **{"enable.partition.eof": True, "auto.offset.reset": "earliest"}
    )
    counts: Counter[str] = Counter()
    latest: list[tuple[str, str]] = []
    try:
        for msg in read_to_end(consumer, settings.topic(DLQ)):
            record = DeadLetter.from_headers(msg.headers())  # type: ignore[arg-type]  # values are bytes
            counts[record.kind] += 1
            latest = (latest + [(record.where, redact(record.reason))])[-args.list :]
    finally:
        consumer.close()
    print(f"{sum(counts.values()):,} dead-lettered messages in {settings.topic(DLQ)}")
    for reason, n in counts.most_common():
        print(f"  {n:>8,}  {reason}")
    if latest and args.list:
        print("latest:")
        for where, error in latest:
            print(f"  {where}  {error[:160]}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from txguard.report import render

    settings = settings_from(args)
    out = Path(args.out) if args.out else settings.home / f"report.{settings.namespace or 'default'}.png"
    conn = clients_for(settings).pg()
    try:
        print(f"chart: {render(conn, out, title=f'txguard ({settings.pg_schema})')}")
    finally:
        conn.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from txguard.demo import run_demo

    return run_demo(args, settings_from(args))


# --- argument parsing --------------------------------------------------------------------


def _datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date/time (YYYY-MM-DD[ HH:MM:SS]): {text!r}") from exc


def _date(text: str) -> date:
    return _datetime(text).date()


def add_replay_options(p: argparse.ArgumentParser) -> None:
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, help="replay at X times event time (default: as fast as possible)")
    pace.add_argument("--rate", type=float, help="replay at N events per second")
    p.add_argument("--start", type=_datetime, help="first event time to send")
    p.add_argument("--end", type=_datetime, help="send events before this time")
    p.add_argument("--limit", type=int, help="send at most N events")
    p.add_argument("--resume", action="store_true", help="continue after the last acknowledged row")
    p.add_argument("--labels", choices=("on", "off"), default="on", help="publish delayed is_fraud labels")
    p.add_argument("--label-delay-days", type=float, default=7.0, help="event-time delay of labels (days)")
    p.add_argument("--quarantine", help="JSON-lines file for rejected rows (default <home>/quarantine.jsonl)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="txguard", description="Streaming card-fraud detection on Kafka.")
    ap.add_argument("--home", type=Path, help="local state directory (default .txguard)")
    ap.add_argument("--namespace", help="prefix for topics, the DynamoDB table and the PostgreSQL schema")
    ap.add_argument("--partitions", type=int, help="partitions per topic at setup")
    ap.add_argument("--kafka-bootstrap", help="external Kafka bootstrap servers")
    ap.add_argument("--postgres-dsn", help="external PostgreSQL DSN")
    ap.add_argument("--dynamodb-endpoint", help="external DynamoDB endpoint URL")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="the embedded local stack")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--kafka-port", type=int)
    p.add_argument("--postgres-port", type=int)
    p.add_argument("--moto-port", type=int)
    p.set_defaults(func=cmd_stack)

    sub.add_parser("setup", help="create topics, tables, views (idempotent)").set_defaults(func=cmd_setup)

    p = sub.add_parser("generate", help="write a synthetic file in the Kaggle layout")
    p.add_argument("out")
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--start", type=_date, default=date(2019, 1, 1))
    p.add_argument("--end", type=_date, default=date(2020, 6, 21))
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train the ensemble on a historical window of a file")
    p.add_argument("path")
    p.add_argument("--until", type=_datetime, help="train on events before this time")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("replay", help="replay a CSV (path or s3://bucket/key) into Kafka")
    p.add_argument("path")
    add_replay_options(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("consume", help="run one consumer service")
    p.add_argument("service", choices=("persist", "scorer"))
    p.set_defaults(func=cmd_consume)

    sub.add_parser("run", help="run all consumer services").set_defaults(func=cmd_run)

    p = sub.add_parser("alerts", help="print alerts")
    p.add_argument("--follow", action="store_true", help="wait for new alerts (Ctrl-C to stop)")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("dlq", help="count dead-lettered messages by reason, list the latest")
    p.add_argument("--list", type=int, default=10, help="how many of the latest to show")
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("report", help="chart the scored history (PNG)")
    p.add_argument("--out", help="PNG path (default <home>/report.<namespace>.png)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded stack, with a summary")
    p.add_argument("--data", help="CSV to use (default data/credit_card_transactions.csv if present, else generated)")
    p.add_argument("--customers", type=int, default=300, help="customers in the generated sample")
    p.add_argument("--months", type=int, default=8, help="months of generated history")
    p.add_argument("--train-fraction", type=float, default=0.3, help="share of the timeline used for training")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from producer.source import SourceError
    from txguard.stack import StackError

    try:
        return args.func(args)
    except (CliError, SourceError, StackError, FileNotFoundError) as exc:
        print(f"txguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
