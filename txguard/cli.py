"""``txguard``: the command line. It parses arguments, calls :class:`txguard.app.App`, and prints."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from txguard import console
from txguard.app import App, AppError, ReplayRequest
from txguard.settings import SERVICE_NAMES, Settings

log = logging.getLogger("txguard")


# Settings a flag may override (each command has some of them).
SETTING_FLAGS = ("kafka_bootstrap", "dynamodb_endpoint", "namespace", "partitions", "home",
                 "retrain_every_days", "retrain_on_drift", "retrain_min_interval_days", "alerts_per_day",
                 "metrics_port")  # fmt: skip


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first, explicit flags over it; a bad value is one line (an AppError)."""
    from pydantic import ValidationError

    overrides = {key: value for key in SETTING_FLAGS if (value := getattr(args, key, None)) is not None}
    if getattr(args, "postgres_dsn", None) is not None:
        raise AppError("--postgres-dsn is not accepted: a command line is visible to every user (ps), password "
                       "included. Set TXGUARD_POSTGRES_DSN, or use --postgres-dsn-file FILE")  # fmt: skip
    if getattr(args, "postgres_dsn_file", None) is not None:
        try:
            overrides["postgres_dsn"] = args.postgres_dsn_file.read_text().strip()
        except OSError as exc:
            raise AppError(f"--postgres-dsn-file: cannot read {args.postgres_dsn_file} ({exc.strerror})") from None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise AppError(settings_problems(exc)) from None


def settings_problems(exc) -> str:  # noqa: ANN001 - pydantic.ValidationError
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(message if not where or where in message else f"{where}: {message}")
    return "; ".join(problems)


def app_from(args: argparse.Namespace) -> App:
    return App(settings_from(args))


# --- commands ----------------------------------------------------------------------------


def cmd_stack(args: argparse.Namespace) -> int:
    from txguard import stack

    settings = settings_from(args)
    if args.action == "up":
        ports = {k: v for k, v in (("kafka", args.kafka_port), ("postgres", args.postgres_port),
                                   ("moto", args.moto_port), ("dynalite", args.dynalite_port)) if v}  # fmt: skip
        print(console.endpoints_text(App(settings).stack_up(ports)))
    elif args.action == "down":
        if not settings.kafka_bootstrap and stack.status(settings)["kafka"]["running"]:
            from txguard.clients import unconsumed

            # The embedded broker keeps its events in memory: say what stopping it loses.
            lag = unconsumed(App(settings).clients)
            for group, count in lag.items():
                print(f"{group}: {count} event(s) not yet consumed")
            if any(lag.values()) and not args.force:
                print("txguard: refusing to stop: the embedded Kafka keeps events in memory, and those not yet "
                      "consumed would be lost. Let the services catch up (txguard run), or stop with --force",
                      file=sys.stderr)  # fmt: skip
                return 1
        stopped = stack.down(settings)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for name, entry in stack.status(settings).items():
            where = (
                console.without_password(entry["dsn"])
                if entry.get("dsn")
                else entry.get("bootstrap") or entry.get("endpoint") or "-"
            )
            print(f"{name:9} {'running' if entry['running'] else 'stopped':8} {where}")
        print(f"DynamoDB: {stack.dynamodb_in_use(settings)}")
        external = {"kafka": settings.kafka_bootstrap, "postgres": bool(settings.postgres_dsn.get_secret_value()),
                    "dynamodb": settings.dynamodb_endpoint}  # fmt: skip
        for name, value in external.items():
            if value:
                print(f"{name:9} external (from settings)")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    for what, items in app_from(args).setup().items():
        print(f"{what}: {', '.join(items) if items else 'already in place'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from producer.generator import generate

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with console.progress_bar("generate") as bar:
        summary = generate(out, customers=args.customers, start=args.start, end=args.end, seed=args.seed,
                           progress=lambda n: bar.update(n - bar.n))  # fmt: skip
    print(f"{summary.rows:,} rows ({summary.frauds:,} fraud, {summary.cards} cards) -> {out} "
          f"in {summary.seconds:.1f}s")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    report = app_from(args).train(args.path, args.until, shadow=args.shadow, supervised=args.labels == "on")
    print(console.training_text(report))
    print(f"registered model {report['version']}" + (" as the shadow" if args.shadow else ""))
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    report = app_from(args).retrain(args.until, since=args.since)
    print(console.training_text(report))
    supervised = report["supervised"]
    print(f"  labels used: {supervised['labelled_rows']:,} ({supervised['labelled_frauds']:,} fraud), of events "
          f"before {supervised['label_cutoff']}")  # fmt: skip
    print(f"registered model {report['version']} as the shadow: compare it with `txguard evaluate`, then "
          f"`txguard model promote {report['version']}`")  # fmt: skip
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    app = app_from(args)
    if args.action == "list":
        print(console.models_text(app.models()))
        print(console.learned_text(app.learned()))
    elif args.action == "show":
        print(console.model_text(app.model_metadata(args.version)))
    elif args.action == "promote":
        app.promote(args.version)
        print(f"model {args.version} is current: running scorers take it up within "
              f"{app.settings.model_poll_s:g}s of their next checkpoint")  # fmt: skip
    else:
        app.set_shadow(None if args.version == "none" else args.version)
        print(f"shadow model: {args.version}")
    return 0


def replay_request(args: argparse.Namespace) -> ReplayRequest:
    return ReplayRequest(
        location=args.path, speed=args.speed, rate=args.rate, start=args.start, end=args.end, limit=args.limit,
        resume=args.resume, labels=args.labels == "on", label_delay=timedelta(days=args.label_delay_days),
        quarantine=Path(args.quarantine) if args.quarantine else None,
    )  # fmt: skip


def cmd_replay(args: argparse.Namespace) -> int:
    with console.progress_bar("replay", unit="B") as bar:
        stats = app_from(args).replay(replay_request(args), on_progress=console.replay_progress(bar))
    print(console.replay_text(stats))
    return 1 if stats.delivery_errors else 0


def cmd_consume(args: argparse.Namespace) -> int:
    import os

    from streaming.signals import exit_when_stop_overruns, stop_event, stop_with_parent
    from txguard.supervisor import SUPERVISOR_PID_ENV, ready_marker

    stop = stop_event()
    if supervisor_pid := os.environ.get(SUPERVISOR_PID_ENV):
        stop_with_parent(stop, int(supervisor_pid))  # no orphan, even if the supervisor is killed
    settings = settings_from(args)
    if args.service == "persist":
        os.nice(settings.persist_niceness)
    exit_when_stop_overruns(stop, settings.shutdown_timeout_s)
    ready = ready_marker(settings, args.service)
    try:
        stats = App(settings).consume(args.service, stop, on_assign=ready.touch)
    finally:
        ready.unlink(missing_ok=True)
    log.info("%s: stopped after %d messages in %d batches (%d dead-lettered)",
             args.service, stats.messages, stats.batches, stats.dead_lettered)  # fmt: skip
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Supervise the consumer services until SIGTERM/SIGINT (see :mod:`txguard.supervisor`)."""
    from txguard.supervisor import SERVICES, Supervisor

    settings = settings_from(args)
    retraining = settings.retrain_every_days is not None or settings.retrain_on_drift
    supervisor = Supervisor(settings, (*SERVICES, "retrainer") if retraining else SERVICES)
    supervisor.install_signal_handlers()
    return supervisor.run()


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when the service (or every service answering on this host) is healthy / ready; 1 otherwise."""
    answers = app_from(args).health(args.service, ready=args.ready)
    for answer in answers:
        print(f"{answer.service}: {answer.status or '-'} {answer.text}")
    if not answers:
        print("no service answers on this host's metrics ports", file=sys.stderr)
    return 0 if answers and all(a.ok for a in answers) else 1


def cmd_alerts(args: argparse.Namespace) -> int:
    alerts = app_from(args).alerts(follow=args.follow)  # with --follow, positioned at the end by now
    print(console.ALERT_HEADER, flush=True)
    try:
        for shown, alert in enumerate(alerts, start=1):
            print(console.alert_line(alert), flush=True)
            if args.limit and shown >= args.limit:
                break
    except KeyboardInterrupt:
        pass
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """Count the dead-lettered messages by reason and list the latest ones."""
    from producer.cards import redact
    from schemas.topics import DLQ

    app = app_from(args)
    print(console.dead_letters_text(app.dead_letters(args.list), app.settings.topic(DLQ), redact))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report: {app_from(args).report(Path(args.out) if args.out else None)}")
    return 0


def cmd_tableau(args: argparse.Namespace) -> int:
    with console.progress_bar("extract") as bar:

        def progress(p) -> None:  # noqa: ANN001 - txguard.tableau.ExportProgress
            if bar.desc != f"extract {p.view}":  # rows are counted per view
                bar.reset()
                bar.set_description(f"extract {p.view}", refresh=False)
            bar.update(p.rows - bar.n)

        export = app_from(args).tableau(Path(args.out) if args.out else None, since=args.since, on_progress=progress)
    print(console.tableau_text(export))
    return 0


def cmd_rebuild_behavior(args: argparse.Namespace) -> int:
    with console.progress_bar("rebuild-behavior") as bar:

        def progress(stats) -> None:  # noqa: ANN001 - consumers.rebuild.RebuildStats
            bar.update(stats.rows - bar.n)
            bar.set_postfix_str(f"{stats.cards:,} cards", refresh=False)

        stats = app_from(args).rebuild_behavior(on_progress=progress)
    print(f"rebuild-behavior: {stats.cards:,} cards from {stats.rows:,} transactions in {stats.elapsed_s:.1f} s, "
          f"{stats.deleted:,} items of cards not in PostgreSQL deleted")  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from txguard.evaluate import format_report

    result = app_from(args).evaluate(args.since, args.until, Path(args.png) if args.png else None, args.k,
                                     labels_from=args.labels_from)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(format_report(result))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the live dashboard until Ctrl-C or SIGTERM."""
    from txguard.dashboard.server import serve

    serve(settings_from(args), args.host, args.port, on_ready=print_dashboard_url)
    return 0


def print_dashboard_url(url: str) -> None:
    print(f"dashboard: {url}  (Ctrl-C to stop)", flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from txguard.demo import DemoOptions, run_demo

    options = DemoOptions(data=Path(args.data) if args.data else None, customers=args.customers,
                          months=args.months, train_fraction=args.train_fraction,
                          labels=args.labels == "on", reset_external=args.reset_external,
                          serve=args.serve, serve_host=args.host, serve_port=args.port)  # fmt: skip
    return run_demo(settings_from(args), options)


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
    # Refused with a pointer to these two: a DSN in argv shows its password in the process list.
    ap.add_argument("--postgres-dsn", help=argparse.SUPPRESS)
    ap.add_argument("--postgres-dsn-file", type=Path, metavar="FILE",
                    help="file holding an external PostgreSQL DSN (or set TXGUARD_POSTGRES_DSN)")  # fmt: skip
    ap.add_argument("--dynamodb-endpoint", help="external DynamoDB endpoint URL")
    ap.add_argument("--metrics-port", type=int, metavar="PORT",
                    help="serve each consumer service's /metrics, /healthz and /readyz on PORT + its index (persist "
                    "+0, scorer +1, learner +2, retrainer +3; TXGUARD_METRICS_PORT; default 0: none)")  # fmt: skip
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="the embedded local stack")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--kafka-port", type=int)
    p.add_argument("--postgres-port", type=int)
    p.add_argument("--moto-port", type=int)
    p.add_argument("--dynalite-port", type=int)
    p.add_argument("--force", action="store_true", help="down: stop even if events not yet consumed would be lost")
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
    p.add_argument("--shadow", action="store_true", help="register as the shadow (candidate), not the current model")
    p.add_argument("--labels", choices=("on", "off"), default="on",
                   help="off: ignore is_fraud, train the unsupervised detectors only")  # fmt: skip
    p.add_argument("--alerts-per-day", type=float,
                   help="the alert budget (TXGUARD_ALERTS_PER_DAY; default: the labelled frauds per day)")  # fmt: skip
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("retrain", help="train on the history in PostgreSQL; register it as the shadow model")
    p.add_argument("--until", type=_datetime, help="train on events before this time (default: all stored)")
    p.add_argument("--since", type=_datetime, help="first event time to train on (default: the start, or "
                   "TXGUARD_RETRAIN_WINDOW_DAYS before --until)")  # fmt: skip
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("model", help="the model registry: list versions, promote one, set the shadow")
    model_sub = p.add_subparsers(dest="action", required=True)
    model_sub.add_parser("list", help="versions: role, training window, rows, data hash, held-out metrics")
    model_sub.add_parser("show", help="one version's metadata: each detector held out, calibration").add_argument(
        "version", nargs="?", help="default: the current one"
    )
    model_sub.add_parser("promote", help="make VERSION the current model").add_argument("version")
    model_sub.add_parser("shadow", help="score VERSION alongside the current one ('none': stop)").add_argument(
        "version"
    )
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("replay", help="replay a CSV (path or s3://bucket/key) into Kafka")
    p.add_argument("path")
    add_replay_options(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("consume", help="run one consumer service")
    p.add_argument("service", choices=SERVICE_NAMES)
    retrain = p.add_argument_group("retrainer", "when to retrain (event time; default from TXGUARD_RETRAIN_*)")
    retrain.add_argument("--every-days", dest="retrain_every_days", type=float,
                         help="retrain every N event-days of the stream")  # fmt: skip
    retrain.add_argument("--on-drift", dest="retrain_on_drift", action="store_true", default=None,
                         help="retrain when a scorer detects drift")  # fmt: skip
    retrain.add_argument("--min-interval-days", dest="retrain_min_interval_days", type=float,
                         help="never retrain sooner than this after the previous retrain (default 1)")  # fmt: skip
    p.set_defaults(func=cmd_consume)

    sub.add_parser("run", help="run all consumer services (the retrainer too when TXGUARD_RETRAIN_* ask for it)"
                   ).set_defaults(func=cmd_run)  # fmt: skip

    p = sub.add_parser("health", help="ask the consumer services on this host for /healthz (exit 0: healthy); "
                       "for a container's health check")  # fmt: skip
    p.add_argument("service", nargs="?", choices=SERVICE_NAMES, help="default: every service that answers")
    p.add_argument("--ready", action="store_true", help="ask /readyz: holds partitions, sinks reachable")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("alerts", help="print alerts")
    p.add_argument("--follow", action="store_true", help="wait for new alerts (Ctrl-C to stop)")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("dlq", help="count dead-lettered messages by reason, list the latest")
    p.add_argument("--list", type=int, default=10, help="how many of the latest to show")
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("report", help="the analyst's charts: one self-contained HTML file, with the PNGs beside it")
    p.add_argument(
        "--out", metavar="DIR", help="directory for report.html and the PNGs (default <home>/report.<namespace>)"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("tableau", help="Tableau files: a .tds per analyst view (Desktop/Server over PostgreSQL) "
                       "and a .hyper extract of the views (Tableau Public)")  # fmt: skip
    p.add_argument("--out", help="directory to write to (default <home>/tableau)")
    p.add_argument("--since", type=_date, help="extract events from this day on only (default: all)")
    p.set_defaults(func=cmd_tableau)

    p = sub.add_parser("rebuild-behavior", help="recompute every card's DynamoDB aggregates from PostgreSQL's "
                       "transactions, in event-time order (stop the scorers first)")  # fmt: skip
    p.set_defaults(func=cmd_rebuild_behavior)

    p = sub.add_parser("evaluate", help="detection quality from PostgreSQL scores and labels")
    p.add_argument("--since", type=_datetime, help="first event time to include")
    p.add_argument("--until", type=_datetime, help="include events before this time")
    p.add_argument("--k", type=int, default=5, help="cards per day for card precision@k")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--png", help="draw the ROC and PR curves of every detector to this PNG")
    p.add_argument("--labels-from", metavar="CSV",
                   help="judge against this file's is_fraud, not the labels received (after --labels off)")  # fmt: skip
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded stack, with a summary")
    p.add_argument("--data", help="CSV to use (default data/credit_card_transactions.csv if present, else generated)")
    p.add_argument("--customers", type=int, default=300, help="customers in the generated sample")
    p.add_argument("--months", type=int, default=8, help="months of generated history")
    p.add_argument("--train-fraction", type=float, default=0.3, help="share of the timeline used for training")
    p.add_argument("--labels", choices=("on", "off"), default="on",
                   help="off: no labels in training nor replay (the unsupervised detectors alone)")  # fmt: skip
    p.add_argument("--reset-external", action="store_true",
                   help="the demo deletes and recreates its namespace (topics, schema, table): allow that on the "
                   "external servers configured in settings too")  # fmt: skip
    p.add_argument(
        "--serve",
        action="store_true",
        help="after the summary, keep the dashboard and the consumer services up until Ctrl-C",
    )
    add_dashboard_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dashboard", help="the live dashboard: alerts, lag, charts, verdicts (a web page)")
    add_dashboard_options(p)
    p.set_defaults(func=cmd_dashboard)
    return ap


def add_dashboard_options(p: argparse.ArgumentParser) -> None:
    from txguard.dashboard import DEFAULT_HOST, DEFAULT_PORT  # constants only: the web stack is not loaded

    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"dashboard interface (default {DEFAULT_HOST}; any other needs TXGUARD_DASHBOARD_TOKEN)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from txguard.logs import configure_logging

    try:
        log_format = settings_from(args).log_format
    except AppError:
        log_format = "text"  # the command reports the bad setting itself
    configure_logging(args.verbose, log_format)
    from producer.source import SourceError
    from txguard.connections import KafkaUnavailable
    from txguard.stack import StackError

    try:
        return args.func(args)
    except (AppError, SourceError, StackError, FileNotFoundError) as exc:
        print(f"txguard: error: {exc}", file=sys.stderr)
        return 2
    except KafkaUnavailable as exc:  # 2 (do not restart) for refused credentials, 1 for no answer
        print(f"txguard: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
