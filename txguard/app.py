"""The application layer: every part of txguard built from one :class:`Settings`.

The CLI parses arguments into typed options, calls :class:`App` and prints; the demo
and the benchmarks use the same methods. Nothing here prints: progress goes to
callbacks, notices to the log.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.events import AlertEvent, DeadLetter
from schemas.topics import ALERTS, DLQ, DRIFT, LABELS, SCORES, TRANSACTIONS
from txguard.settings import SERVICE_NAMES, Settings

if TYPE_CHECKING:  # imported lazily at run time: they pull in the clients' libraries
    from consumers.rebuild import RebuildStats
    from consumers.retrainer import RetrainerService
    from model.registry import ModelRegistry
    from producer.cards import CardProtector
    from producer.progress import ReplayStats
    from producer.source import CsvSource
    from streaming.service import Service
    from streaming.stats import LoopStats
    from txguard.clients import Clients
    from txguard.stack import Endpoints
    from txguard.tableau import ExportProgress, PostgresTarget

log = logging.getLogger(__name__)


class AppError(Exception):
    """A problem with what the user asked for: the CLI prints it as one line."""


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay and how: the replay command's options, typed."""

    location: str
    speed: float | None = None
    rate: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int | None = None
    resume: bool = False
    labels: bool = True
    label_delay: timedelta = timedelta(days=7)
    quarantine: Path | None = None


@dataclass(frozen=True)
class TableauExport:
    """What ``txguard tableau`` wrote: the data sources, the extract and its rows per view."""

    data_sources: list[Path]
    extract: Path
    rows: dict[str, int]
    target: PostgresTarget


@dataclass
class DeadLetterSummary:
    total: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    latest: list[DeadLetter] = field(default_factory=list)


def create_private_file(path: Path, text: str) -> None:
    """Write ``path`` once, mode 0600 from its creation, in a directory created 0700.

    The text goes to a temporary file opened with O_EXCL and mode 0600, then is linked to
    ``path``: there is no moment when ``path`` exists with other permissions or half
    written, and if another process created ``path`` meanwhile, its file is kept.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: every process uses its file
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class HealthAnswer:
    """What a service's /healthz or /readyz answered (status None: nothing answered)."""

    service: str
    url: str
    status: int | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def model_versions(scorer: Any) -> dict[str, str]:
    """A scorer's model versions, for the ``txguard_model_version`` info metric ("" when none)."""
    shadow, learned = scorer.shadow, scorer.learned
    return {"version": scorer.model.version, "shadow": shadow.version if shadow is not None else "",
            "learned": learned.version if learned is not None else ""}  # fmt: skip


class App:
    """Builds clients, services, the replay and training from settings."""

    def __init__(self, settings: Settings, endpoints: Endpoints | None = None):
        self.settings = settings
        self._endpoints = endpoints

    @cached_property
    def clients(self) -> Clients:
        from txguard.clients import Clients

        return Clients(self.settings, self._endpoints)

    # --- the embedded stack and set-up ---------------------------------------------------

    def stack_up(self, ports: dict[str, int] | None = None) -> Endpoints:
        from txguard import stack
        from txguard.clients import restore_topics

        self._endpoints = stack.up(self.settings, ports)
        self.__dict__.pop("clients", None)  # clients built before now used the old endpoints
        restore_topics(self.clients)  # the embedded broker keeps topics in memory: make them again
        return self._endpoints

    def setup(self) -> dict[str, list[str]]:
        """Topics, PostgreSQL migrations, the DynamoDB table: whatever is missing."""
        from txguard.clients import setup

        return setup(self.clients)

    def reset(self, confirm_external: bool = False) -> dict[str, list[str]]:
        """Delete and recreate the namespace's topics, schema and table (demo runs): only a
        scratch namespace, and on external servers only with ``confirm_external``."""
        from txguard.clients import TeardownRefused, reset

        try:
            return reset(self.clients, confirm_external=confirm_external)
        except TeardownRefused as exc:
            raise AppError(str(exc)) from None

    # --- card data -----------------------------------------------------------------------

    def card_key(self) -> bytes:
        """The tokenisation key: from settings; in local mode generated once and kept."""
        key = self.settings.card_token_key.get_secret_value()
        if key:
            return key.encode()
        if self.settings.production:
            raise AppError("TXGUARD_CARD_TOKEN_KEY is not set: production mode will not invent a key")
        path = self.settings.home / "card_token.key"
        if not path.exists():
            create_private_file(path, secrets.token_hex(32))
        elif path.stat().st_mode & 0o077:
            log.warning("%s was readable by others: made private (0600)", path)
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def protector(self) -> CardProtector:
        from producer.cards import CardProtector

        return CardProtector(self.card_key())

    def source(self, location: str) -> CsvSource:
        from producer.source import CsvSource

        s3 = self.clients.s3() if location.startswith("s3://") else None
        return CsvSource(location, s3_client=s3, max_line_bytes=self.settings.max_line_bytes)

    # --- training ------------------------------------------------------------------------

    def registry(self) -> ModelRegistry:
        from model.registry import ModelRegistry

        return ModelRegistry.at(self.settings.model_location, s3_client=lambda: self.clients.s3())

    def train(self, location: str, until: datetime | None, shadow: bool = False,
              supervised: bool = True) -> dict[str, Any]:  # fmt: skip
        """Train the ensemble on the rows of ``location`` before ``until``; register it as a new version.

        It becomes the current version (the first one always does), or with ``shadow`` the
        candidate scored alongside the current one until promoted. ``supervised=False``
        trains the unsupervised detectors only, as if no label had ever arrived.
        """
        from model.train import train
        from producer.history import load_history

        history = load_history(self.source(location), self.protector(), until)
        if history.empty:
            raise AppError(f"no valid rows before {until} in {location} to train on")
        model, report = train(history, source=location, supervised=supervised,
                              alerts_per_day=self.settings.alerts_per_day)  # fmt: skip
        report["version"] = self.registry().save(model, shadow=shadow)
        return report

    def retrain(
        self, until: datetime | None = None, *, since: datetime | None = None, reason: str = "manual"
    ) -> dict[str, Any]:
        """Train on the history in PostgreSQL before ``until``; register it as the shadow version.

        ``until`` defaults to just after the latest stored transaction, ``since`` to
        ``retrain_window_days`` before ``until`` (no setting: all the history). Only the
        labels that had arrived by the cut-off are used: stored ones, of events at least
        ``label_delay_days`` before ``until`` (a replay releases the labels still pending
        at the end of its file, so later ones may be stored already). The new version
        scores beside the current one until promoted (``txguard model promote``).
        """
        from model.train import train
        from txguard.history import latest_event_time, load_labelled_history

        s = self.settings
        conn = self.clients.pg()
        try:
            if until is None:
                latest = latest_event_time(conn)
                if latest is None:
                    raise AppError(f"no transactions in PostgreSQL ({s.pg_schema}) to train on")
                until = latest + timedelta(microseconds=1)  # timestamps are stored to the microsecond
            if since is None and s.retrain_window_days is not None:
                since = until - timedelta(days=s.retrain_window_days)
            history = load_labelled_history(conn, since=since, until=until)
        finally:
            conn.close()
        if history.empty:
            raise AppError(f"no transactions in PostgreSQL ({s.pg_schema}) between {since or 'the start'} and "
                           f"{until} to train on")  # fmt: skip
        label_cutoff = until - timedelta(days=s.label_delay_days)
        model, report = train(history, label_cutoff=label_cutoff, source=f"postgresql:{s.pg_schema}",
                              alerts_per_day=s.alerts_per_day)  # fmt: skip
        report["training_data"]["until"] = until.isoformat()
        report["retrain"] = {"reason": reason}
        report["version"] = self.registry().save(model, promote=False, shadow=True)
        return report

    def trained_until(self) -> datetime | None:
        """The latest event time any registered model was trained up to: where a retrain schedule resumes."""
        ends = [m["trained_until"] for m in self.models() if m.get("trained_until")]
        return max(datetime.fromisoformat(str(end)) for end in ends) if ends else None

    def models(self) -> list[dict[str, Any]]:
        """Every registered model version with its role, training window and held-out metrics."""
        return self.registry().list()

    def model_metadata(self, version: str | None = None) -> dict[str, Any]:
        """The metadata of ``version`` (default: the current one)."""
        registry = self.registry()
        version = version or registry.current_version()
        if version is None:
            raise AppError("no models yet: run `txguard train`")
        try:
            return registry.metadata(version)
        except KeyError as exc:
            raise AppError(str(exc.args[0])) from exc

    def learned(self) -> dict[str, Any] | None:
        """What the learner's latest snapshot has learned, or None before its first."""
        snapshot = self.registry().load_learned(self.settings.namespace)
        return snapshot.describe() if snapshot is not None else None

    def promote(self, version: str) -> None:
        """Make ``version`` the current model: running scorers take it up at their next poll."""
        try:
            self.registry().promote(version)
        except KeyError as exc:
            raise AppError(str(exc.args[0])) from exc

    def set_shadow(self, version: str | None) -> None:
        """Score ``version`` alongside the current model (None: stop shadowing)."""
        try:
            self.registry().set_shadow(version)
        except (KeyError, ValueError) as exc:
            raise AppError(str(exc.args[0])) from exc

    # --- replay --------------------------------------------------------------------------

    def replay_checkpoint_path(self) -> Path:
        return self.settings.home / f"replay.{self.settings.namespace or 'default'}.checkpoint.json"

    def replay(
        self,
        request: ReplayRequest,
        stop: threading.Event | None = None,
        on_progress: Callable[[ReplayStats], None] | None = None,
    ) -> ReplayStats:
        """Publish the valid rows of ``request.location``; reject the others with a reason."""
        from producer.checkpoint import ReplayCheckpoint
        from producer.replay import ReplayOptions, Topics, replay
        from streaming.signals import stop_event

        if not request.location.startswith("s3://"):
            self.source(request.location).check_header()  # fail before anything is sent
        checkpoint = self.replay_checkpoint_path()
        saved = ReplayCheckpoint.load(checkpoint, request.location) if request.resume else None
        if saved:
            log.info("resuming %s after line %d (%d labels pending)", request.location, saved.line,
                     len(saved.pending_labels))  # fmt: skip
        options = ReplayOptions(
            speed=request.speed, rate=request.rate, start=request.start, end=request.end, limit=request.limit,
            labels=request.labels, label_delay=request.label_delay,
            resume_after_line=saved.line if saved else 0, resume_labels=saved.pending_labels if saved else [],
            resume_after_key=saved.event_ms if saved else None, spill_dir=self.settings.home / "tmp",
            quarantine=request.quarantine or self.settings.home / "quarantine.jsonl", checkpoint=checkpoint,
        )  # fmt: skip
        topics = Topics(self.settings.topic(TRANSACTIONS), self.settings.topic(LABELS), self.settings.topic(DLQ))
        progress = (lambda stats, _source: on_progress(stats)) if on_progress else None
        return replay(self.source(request.location), self.clients.producer(), topics, self.protector(), options,
                      stop=stop or stop_event(), on_progress=progress)  # fmt: skip

    # --- services ------------------------------------------------------------------------

    def service(self, name: str) -> tuple[Service, Any]:
        """The service ``name`` and the producer its loop flushes."""
        if name == "retrainer":  # built first: a retrainer with nothing to act on is refused before any client
            return self.retrainer(), self.clients.producer()
        if name == "scorer":
            return self._scorer()
        producer = self.clients.producer()
        if name == "persist":
            from consumers.persist import PersistService
            from consumers.postgres import PostgresSink

            topics = {spec.name: self.settings.topic(spec) for spec in (TRANSACTIONS, SCORES, LABELS, DRIFT)}
            return PersistService(topics, PostgresSink(self.clients.pg)), producer
        if name == "learner":
            return self._learner(producer), producer
        raise AppError(f"no service {name!r}: one of {', '.join(SERVICE_NAMES)}")

    def _scorer(self) -> tuple[Service, Any]:
        from consumers.card_state import BehaviorStore, CardWriter
        from consumers.scorer import ScorerService
        from streaming.reader import topic_partitions

        # Scores and alerts leave at most 5 ms after their batch (librdkafka waits 20 ms for
        # more by default here): a batch's outputs are produced at once anyway.
        options: dict[str, Any] = {"linger.ms": 5}
        if self.settings.transactions:
            options["transactional.id"] = self._transactional_id("scorer")
            log.info("scorer: exactly-once, scores and alerts in Kafka transactions (%s)", options["transactional.id"])
        producer = self.clients.producer(**options)
        registry = self.registry()
        scorer = ScorerService(
            self.settings.topic(TRANSACTIONS), self.settings.topic(SCORES), self.settings.topic(ALERTS),
            BehaviorStore(self.clients.dynamodb(validate=False), self.settings.behavior_table),
            registry.load_current(), producer,
            threshold=self.settings.alert_threshold,
            online_checkpoint=registry.online_checkpoint(self.settings.namespace),
            shadow=registry.load_shadow(), registry=registry, model_poll_s=self.settings.model_poll_s,
            namespace=self.settings.namespace,
            drift_topic=self.settings.topic(DRIFT),
            partition_count=len(topic_partitions(producer, self.settings.topic(TRANSACTIONS))),
            card_writer=CardWriter(self.clients.dynamodb_maker(validate=False), self.settings.behavior_table),
        )  # fmt: skip
        return scorer, producer

    def _transactional_id(self, service: str) -> str:
        """A transactional.id for this process that its restart takes over (fencing the dead one's
        open transaction at once) and no live process shares: host, group and the first free slot
        on this host, held by a lock for the life of the process."""
        import fcntl
        import socket

        group = self.settings.namespaced(service)
        for slot in range(1024):
            lock = self.settings.home / "run" / f"{group}.slot{slot}.lock"
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._slot_lock = handle  # held, and the slot with it, until the process exits
            return f"{group}.{socket.gethostname()}.{slot}"
        raise AppError(f"more than 1024 {service} processes of {group} on this host")

    def _learner(self, producer: Any) -> Service:
        """The namespace's one learner: a second one would fork the online classifier, so it is refused."""
        import fcntl

        from consumers.learner import LearnerService
        from consumers.postgres import ScoredFeatures

        registry = self.registry()
        # One machine's guard: with an s3:// registry, run the learner on one machine only.
        lock = self.settings.home / "run" / f"learner.{self.settings.namespace or 'default'}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        self._learner_lock = open(lock, "w")  # held (and the lock with it) for the life of the process
        try:
            fcntl.flock(self._learner_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._learner_lock.close()
            raise AppError(f"another learner runs for this namespace (it holds {lock})") from None
        s = self.settings
        return LearnerService(s.topic(LABELS), ScoredFeatures(self.clients.pg), registry, producer, s.topic(DLQ),
                              namespace=s.namespace, join_timeout_s=s.label_join_timeout_s)  # fmt: skip

    def retrainer(self) -> RetrainerService:
        """The retrainer, from the ``retrain_*`` settings: it retrains with :meth:`retrain`."""
        from consumers.postgres import PostgresSink
        from consumers.retrainer import RetrainerService, RetrainPolicy

        s = self.settings
        policy = RetrainPolicy(
            every=timedelta(days=s.retrain_every_days) if s.retrain_every_days is not None else None,
            on_drift=s.retrain_on_drift,
            min_interval=timedelta(days=s.retrain_min_interval_days),
        )
        if not policy.active:
            raise AppError("the retrainer needs a schedule or drift to act on: --every-days N and/or --on-drift "
                           "(TXGUARD_RETRAIN_EVERY_DAYS, TXGUARD_RETRAIN_ON_DRIFT)")  # fmt: skip
        trained_until = self.trained_until()
        log.info("retrainer: every %s, on drift %s, at most once per %s of events; latest training cut-off %s",
                 policy.every or "-", "yes" if policy.on_drift else "no", policy.min_interval,
                 trained_until or "none")  # fmt: skip
        return RetrainerService(
            s.topic(TRANSACTIONS), s.topic(DRIFT),
            lambda until, why: str(self.retrain(until, reason=why)["version"]), policy,
            trained_until=trained_until, is_transient=lambda exc: isinstance(exc, PostgresSink.TRANSIENT),
        )  # fmt: skip

    def consume(self, name: str, stop: threading.Event, on_assign: Callable[[], None] | None = None) -> LoopStats:
        """Run one service on the consumer loop until ``stop`` is set (its metrics served, if set)."""
        from streaming.loop import run
        from streaming.metrics import LoopMetrics

        s = self.settings
        metrics = LoopMetrics(name, stale_after_s=s.health_stale_s)
        server = self._serve_metrics(name, metrics)  # before the service: a port in use fails at once
        try:
            service, producer = self.service(name)
            if name == "scorer":
                metrics.describe = partial(model_versions, service)
            log.info("%s: consuming %s", service.name, ", ".join(service.topics))
            # The scorer is on the alert's path: it fetches what arrives at once. The others
            # take fuller batches (persist: fewer PostgreSQL commits).
            prompt = {"fetch.wait.max.ms": s.fetch_wait_max_ms} if name == "scorer" else {}
            consumer = self.clients.consumer(service.name, **prompt)
            return run(service, consumer, producer, s.topic(DLQ), batch_size=s.batch_size,
                       batch_wait_s=s.batch_wait_s, stop=stop, commit_interval_s=s.commit_interval_s,
                       on_assign=(lambda _partitions: on_assign()) if on_assign else None,
                       metrics=metrics)  # fmt: skip
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    def metrics_address(self, name: str) -> tuple[str, int] | None:
        """Where service ``name`` serves its metrics and health: (host, port), or None when off."""
        s = self.settings
        return (s.metrics_host, s.metrics_port + SERVICE_NAMES.index(name)) if s.metrics_port else None

    def _serve_metrics(self, name: str, metrics: Any) -> Any:
        from streaming.metrics import serve

        address = self.metrics_address(name) if name in SERVICE_NAMES else None
        if address is None:
            return None
        try:
            return serve(metrics, *address)
        except OSError as exc:
            raise AppError(f"{name}: cannot serve metrics on {address[0]}:{address[1]} ({exc.strerror or exc}); "
                           "set TXGUARD_METRICS_PORT to a free base port, or 0 for none") from None  # fmt: skip

    def health(self, service: str | None = None, ready: bool = False) -> list[HealthAnswer]:
        """Ask the services of this host for /healthz (or /readyz): ``service``, or every one whose
        port answers (a container runs one). Nothing answering is an empty list."""
        import urllib.error
        import urllib.request

        answers = []
        for name in [service] if service else SERVICE_NAMES:
            address = self.metrics_address(name)
            if address is None:
                raise AppError("no metrics port: set TXGUARD_METRICS_PORT (or --metrics-port) as the services have it")
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address[0], address[0])
            url = f"http://{f'[{host}]' if ':' in host else host}:{address[1]}/{'readyz' if ready else 'healthz'}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # http, on our own port
                    answers.append(HealthAnswer(name, url, response.status, response.read().decode().strip()))
            except urllib.error.HTTPError as exc:
                answers.append(HealthAnswer(name, url, exc.code, exc.read().decode().strip()))
            except OSError as exc:  # nothing listens there
                if service:
                    answers.append(HealthAnswer(name, url, None, f"no answer ({exc})"))
        return answers

    # --- reading the topics --------------------------------------------------------------

    def alerts(self, follow: bool = False) -> Iterator[AlertEvent]:
        """The alerts on the topic; ``follow``: those published after this call returns, until closed."""
        from streaming.reader import assign_at_end, read_new, read_to_end

        topic = self.settings.topic(ALERTS)
        consumer = self.clients.consumer(f"alerts-viewer-{os.getpid()}", **{"enable.partition.eof": True})
        if not follow:
            return self._alert_events(consumer, read_to_end(consumer, topic))
        try:
            assign_at_end(consumer, topic)  # now, not at the first next(): the caller may say it is following
        except BaseException:
            consumer.close()
            raise
        return self._alert_events(consumer, read_new(consumer))

    @staticmethod
    def _alert_events(consumer: Any, messages: Iterator[Any]) -> Iterator[AlertEvent]:
        from streaming.message import value_of

        try:
            for msg in messages:
                yield AlertEvent.model_validate_json(value_of(msg))
        finally:
            consumer.close()

    def dead_letters(self, keep_latest: int = 10) -> DeadLetterSummary:
        """Every dead letter on the topic, counted by kind, and the latest few."""
        from streaming.reader import read_to_end

        consumer = self.clients.consumer(f"dlq-viewer-{os.getpid()}",
                                         **{"enable.partition.eof": True, "auto.offset.reset": "earliest"})  # fmt: skip
        summary = DeadLetterSummary()
        latest: deque[DeadLetter] = deque(maxlen=keep_latest)
        try:
            for msg in read_to_end(consumer, self.settings.topic(DLQ)):
                record = DeadLetter.from_headers(msg.headers())  # type: ignore[arg-type]  # values are bytes
                summary.total += 1
                summary.by_kind[record.kind] += 1
                latest.append(record)
        finally:
            consumer.close()
        summary.latest = list(latest)
        return summary

    # --- PostgreSQL ----------------------------------------------------------------------

    def report(self, out: Path | None = None, title: str | None = None, budget: float | None = None) -> Path:
        """The analyst's report: ``out/report.html``, self-contained, and each chart's PNG beside it.

        ``out`` defaults to ``<home>/report.<namespace>``; ``budget`` (alerts per day) to the
        current model's, else the ``alerts_per_day`` setting. Returns the HTML file's path.
        """
        from txguard.report import ReportContext, write_report

        out = out or self.settings.home / f"report.{self.settings.namespace or 'default'}"
        try:
            model = self.model_metadata()
        except AppError:
            model = {}  # no model yet: the report shows what PostgreSQL holds
        context = ReportContext(
            title=title or f"txguard report ({self.settings.pg_schema})",
            schema=self.settings.pg_schema,
            budget=budget or model.get("alerts_per_day") or self.settings.alerts_per_day,
            model_version=model.get("version"),
        )
        self.refresh_analyst_views()
        conn = self.clients.pg()
        try:
            return write_report(conn, out, context)
        finally:
            conn.close()

    def evaluate(self, since: datetime | None = None, until: datetime | None = None, curves_png: Path | None = None,
                 k: int = 5, labels_from: str | None = None, alerts_budget: float | None = None,
                 ) -> dict[str, Any]:  # fmt: skip
        """Detection quality from the stored scores and labels (see :mod:`txguard.evaluate`).

        ``labels_from``: judge against the ``is_fraud`` column of that CSV instead of the
        labels received (a run with labels off has none). ``alerts_budget``: the intended
        alerts per event-day, compared with the mean.
        """
        import pandas as pd

        from txguard.evaluate import evaluate

        labels = None
        if labels_from is not None:
            try:
                labels = pd.read_csv(labels_from, usecols=["trans_num", "is_fraud"], dtype={"trans_num": str})
            except (OSError, ValueError) as exc:
                raise AppError(f"{labels_from}: cannot read trans_num and is_fraud ({exc})") from exc
            labels = labels.drop_duplicates("trans_num")
        conn = self.clients.pg()
        try:
            return evaluate(conn, since=since, until=until, curves_png=curves_png, k=k, labels=labels,
                            alerts_budget=alerts_budget)  # fmt: skip
        finally:
            conn.close()

    def refresh_analyst_views(self, upto: date | None = None, rebuild: bool = False) -> date | None:
        """Roll up the event days completed since the last refresh for the aggregate views: they are
        current without it, but read every later event live. Run it before charting, and every few
        minutes while charts refresh (cheap: only new days are read; ``rebuild`` reads them all).
        Returns the watermark (rolled up before that day)."""
        from txguard.clients import refresh_analyst_views

        return refresh_analyst_views(self.clients.pg, upto, rebuild)

    def tableau(self, out: Path | None = None, since: date | None = None,
                on_progress: Callable[[ExportProgress], None] | None = None) -> TableauExport:  # fmt: skip
        """Tableau files in ``out`` (default ``<home>/tableau``): a .tds per analyst view for Desktop /
        Server (PostgreSQL connector, role txguard_analyst, no password) and ``txguard.hyper``, an
        extract of the views for Tableau Public. ``since`` limits the event-level views to events
        from that day on."""
        from txguard.tableau import PostgresTarget, write_hyper, write_tds

        out = out or self.settings.home / "tableau"
        try:
            target = PostgresTarget.from_dsn(self.clients.endpoints.postgres_dsn, self.settings.pg_schema)
        except ValueError as exc:
            raise AppError(str(exc)) from None
        data_sources = write_tds(out, target)
        self.refresh_analyst_views()
        hyper = out / "txguard.hyper"
        conn = self.clients.pg()
        try:
            rows = write_hyper(conn, self.settings.pg_schema, hyper, since=since, on_progress=on_progress,
                               log_dir=self.settings.home / "logs")  # fmt: skip
        finally:
            conn.close()
        return TableauExport(data_sources=data_sources, extract=hyper, rows=rows, target=target)

    def counts(self) -> dict[str, int]:
        """Rows stored so far: transactions, scores, labels, and alerts (flagged scores)."""
        conn = self.clients.pg()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM scores),"
                    " (SELECT count(*) FROM labels), (SELECT count(*) FROM scores WHERE flagged)"
                )
                row = cur.fetchone()
            conn.commit()
        finally:
            conn.close()
        assert row is not None
        return dict(zip(("transactions", "scores", "labels", "alerts"), row, strict=True))

    def alert_quality(self) -> dict[str, Any]:
        """Precision and recall of the alerts against the labels received so far."""
        conn = self.clients.pg()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT true_positives, false_positives, missed_frauds, precision, recall"
                            " FROM alert_quality")  # fmt: skip
                row = cur.fetchone()
        finally:
            conn.close()
        assert row is not None
        return dict(zip(("true_positives", "false_positives", "missed_frauds", "precision", "recall"), row,
                        strict=True))  # fmt: skip

    def rebuild_behavior(self, on_progress: Callable[[RebuildStats], None] | None = None) -> RebuildStats:
        """Recompute every card's DynamoDB item from PostgreSQL's transactions (the table is created
        if it was lost); the scorers should be stopped meanwhile."""
        from consumers.rebuild import rebuild
        from txguard.clients import create_behavior_table

        create_behavior_table(self.clients)
        conn = self.clients.pg()
        try:
            return rebuild(conn, self.clients.dynamodb(), self.settings.behavior_table, on_progress)
        finally:
            conn.close()

    def behavior_items(self) -> int:
        """Items in the DynamoDB behaviour table (one per card)."""
        ddb = self.clients.dynamodb()
        pages = ddb.get_paginator("scan").paginate(TableName=self.settings.behavior_table, Select="COUNT")
        return sum(page["Count"] for page in pages)
