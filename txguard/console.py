"""What the CLI and the demo print: results turned into lines of text. Pure formatting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from producer.progress import ReplayStats
    from schemas.events import AlertEvent
    from txguard.app import DeadLetterSummary, TableauExport
    from txguard.stack import Endpoints


@contextmanager
def progress_bar(desc: str, total: float | None = None, unit: str = "rows", **options: Any) -> Iterator[Any]:
    """A tqdm bar on stderr (rate and, with a total, share and ETA), closed however the block ends.

    It shows after a second: an error found at once is the only line printed.
    """
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5, delay=1.0, **options)  # fmt: skip
    try:
        yield bar
    finally:
        bar.close()


def replay_progress(bar: Any) -> Callable[[ReplayStats], None]:
    """Moves ``bar`` (over the file's bytes) with a replay's statistics."""
    from producer.progress import progress_postfix

    def show(stats: ReplayStats) -> None:
        if stats.total_bytes and bar.total != stats.total_bytes:
            bar.total = stats.total_bytes
        bar.update(stats.bytes_read - bar.n)
        bar.set_postfix_str(progress_postfix(stats), refresh=False)

    return show


SECRET_PARAMETERS = ("password", "sslpassword")  # libpq connection parameters never printed


def without_password(dsn: str) -> str:
    """A DSN fit to print: every password replaced by ``***``.

    libpq's own parser (``parse_dsn``) says what the secrets are, in either form: a URL
    (``user:password@`` or ``?password=``) keeps its form, a ``key=value`` string is
    rebuilt by ``make_dsn``. A DSN that does not parse is not printed at all.
    """
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import make_dsn, parse_dsn

    try:
        params = parse_dsn(dsn)
    except ProgrammingError:
        return "(not shown: the DSN does not parse)"
    if not any(name in params for name in SECRET_PARAMETERS):
        return dsn
    if "://" in dsn:
        masked = _url_without_password(dsn)
        try:
            if all(parse_dsn(masked).get(name) in (None, "***") for name in SECRET_PARAMETERS):
                return masked
        except ProgrammingError:
            pass  # an odd URL: printed in key=value form below
    return make_dsn(**{name: "***" if name in SECRET_PARAMETERS else value for name, value in params.items()})


def _url_without_password(url: str) -> str:
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}" if at and ":" in userinfo else parts.netloc
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name in SECRET_PARAMETERS for name, _ in pairs):
        # quote, not quote_plus: libpq does not read + as a space
        query = urlencode([(n, "***" if n in SECRET_PARAMETERS else v) for n, v in pairs], safe="*", quote_via=quote)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` that starts a session in ``schema`` (for psql), in the DSN's own form."""
    if "://" in dsn:
        return dsn + ("&" if "?" in dsn else "?") + f"options=-csearch_path%3D{schema}"
    from psycopg2.extensions import make_dsn

    return make_dsn(dsn, options=f"-csearch_path={schema}")


def endpoints_text(ep: Endpoints) -> str:
    return (f"Kafka bootstrap servers: {ep.kafka_bootstrap}\n"
            f"PostgreSQL DSN:          {without_password(ep.postgres_dsn)}\n"
            f"DynamoDB endpoint:       {ep.dynamodb_endpoint}\n"
            f"S3 endpoint:             {ep.s3_endpoint}")  # fmt: skip


DETECTORS = ("iforest", "online", "supervised", "learned", "ensemble")  # learned: the online classifier


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def training_text(report: dict[str, Any]) -> str:
    """What ``txguard train`` and the demo print: the window, the threshold, held-out quality, calibration."""
    td = report["training_data"]
    lines = [f"trained on {td['rows']:,} rows ({td['start']} .. {td['end']}); threshold {report['threshold']:.4f}"]
    heldout = report.get("heldout")
    if heldout:
        lines.append(f"  held out (from the label cut-off {heldout['since']}): {heldout['rows']:,} events, "
                     f"{heldout['frauds']:,} fraud, {heldout['days']} days")  # fmt: skip
        lines += ["  " + line for line in detectors_table(heldout["detectors"])]
    calibration = report.get("calibration")
    if calibration:
        lines.append("  " + calibration_line(calibration))
    return "\n".join(lines)


def detectors_table(detectors: dict[str, dict[str, Any]]) -> list[str]:
    """Per detector: ROC-AUC, PR-AUC, and precision / recall / alerts per day at the alert threshold."""
    lines = [f"{'detector':11} {'ROC-AUC':>7} {'PR-AUC':>7} {'prec':>6} {'recall':>6} {'alerts/day':>10}"]
    for name in [*DETECTORS, *(n for n in detectors if n not in DETECTORS)]:
        d = detectors.get(name)
        if d is None:
            continue
        lines.append(f"{name:11} {_num(d.get('roc_auc')):>7} {_num(d.get('pr_auc')):>7} "
                     f"{_num(d.get('precision')):>6} {_num(d.get('recall')):>6} "
                     f"{_num(d.get('alerts_per_day'), 1):>10}")  # fmt: skip
    return lines


def calibration_line(calibration: dict[str, Any]) -> str:
    if not calibration.get("method"):
        return f"calibration: none ({calibration.get('why', 'no labels')})"
    return (f"calibration (isotonic, {calibration['frauds']:,} held-out frauds): Brier {_num(calibration['brier'], 5)}"
            f" (base rate {_num(calibration['brier_base_rate'], 5)}, out-of-fold)")  # fmt: skip


def models_text(models: list[dict[str, Any]]) -> str:
    """``txguard model list``: one line per version, its role, training window, rows, data hash and metrics.

    The metrics are the ensemble's on the held-out later events at the alert
    threshold, then the calibration's Brier score and the fraud probability it
    gives an event at the threshold (``P@thr``). In-sample figures of a version
    trained before held-out metrics were recorded are marked ``*``.
    """
    if not models:
        return "no models yet: run `txguard train`"

    def metric(m: dict[str, Any], key: str) -> str:
        return _num(m["metrics"].get(key))

    lines = [f"{'version':22} {'role':7} {'training window':24} {'rows':>10} {'data':8}  {'ROC-AUC':>7} "
             f"{'PR-AUC':>7} {'prec':>6} {'recall':>6} {'Brier':>7} {'P@thr':>5}"]  # fmt: skip
    for m in models:
        window = f"{(m['training_start'] or '?')[:10]} .. {(m['training_end'] or '?')[:10]}"
        rows = f"{m['rows']:,}" if isinstance(m["rows"], int) else "-"
        data = (m.get("data_hash") or "-")[:8]
        calibration = m.get("calibration") or {}
        marker = "*" if m.get("metrics_on") == "in-sample" else " "
        lines.append(f"{m['version']:22} {m['role']:7} {window:24} {rows:>10} {data:8} {marker}"
                     f"{metric(m, 'roc_auc'):>7} {metric(m, 'pr_auc'):>7} {metric(m, 'precision'):>6} "
                     f"{metric(m, 'recall'):>6} {_num(calibration.get('brier'), 5):>7} "
                     f"{_num(calibration.get('probability_at_threshold')):>5}")  # fmt: skip
    return "\n".join(lines)


def model_text(meta: dict[str, Any]) -> str:
    """``txguard model show VERSION``: a version's metadata, with each detector and the reliability table."""
    td = meta.get("training_data", {})
    lines = [
        f"model {meta.get('version')} (trained {meta.get('trained_at')})",
        f"  training data: {td.get('source') or '-'}, {td.get('rows', 0):,} rows, {td.get('start')} .. {td.get('end')}",
        f"  data sha256:   {td.get('data_hash') or '-'}",
        f"  features:      {len(meta.get('features', []))}; online detector {meta.get('online_detector')}",
        "  libraries:     " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
    ]
    supervised = meta.get("supervised") or {}
    if supervised:
        lines.append(f"  classifier:    trained on {supervised.get('labelled_frauds', 0):,} labelled frauds before "
                     f"{supervised.get('label_cutoff')}" if supervised.get("trained")
                     else f"  classifier:    none ({supervised.get('why')})")  # fmt: skip
    if meta.get("threshold") is not None:
        lines.append(
            f"  threshold:     {meta['threshold']:.4f} ({meta.get('alerts_per_day', 0):.1f} alerts/day budget)"
        )
    heldout = meta.get("heldout")
    if heldout:
        lines += ["", f"held out: {heldout['rows']:,} events from {heldout['since']}, {heldout['frauds']:,} fraud, "
                      f"{heldout['days']} days; each detector on its own scale at the threshold"]  # fmt: skip
        lines += ["  " + line for line in detectors_table(heldout["detectors"])]
    elif meta.get("training_quality"):
        q = meta["training_quality"]
        lines += ["", f"in-sample only: ROC-AUC {_num(q.get('roc_auc'))}, PR-AUC {_num(q.get('pr_auc'))}"]
    calibration = meta.get("calibration")
    if calibration:
        lines += ["", calibration_line(calibration)]
        table = calibration.get("reliability") or []
        if table:
            lines.append(f"  {'score':>13} {'events':>9} {'mean score':>10} {'fraud rate':>10} {'P(fraud)':>8}")
            lines += [f"  {r['low']:.3f} .. {r['high']:.3f} {r['events']:>9,} {r['mean_score']:>10.3f} "
                      f"{r['fraud_rate']:>10.4f} {_num(r.get('probability'), 4):>8}" for r in table]  # fmt: skip
    return "\n".join(lines)


def learned_text(learned: dict[str, Any] | None) -> str:
    """The learner's latest snapshot, under ``txguard model list``."""
    if learned is None:
        return "online classifier: none yet (the learner publishes one once labels arrive)"
    state = "in the ensemble" if learned["ready"] else "not in the ensemble yet: too few frauds"
    return (f"online classifier: {learned['version']}, {learned['labels']:,} labels ({learned['frauds']:,} frauds) "
            f"up to {learned['learned_until'] or '?'}; {state}")  # fmt: skip


def replay_text(stats: ReplayStats) -> str:
    lines = [f"sent {stats.accepted:,} events, {stats.labels:,} labels; rejected {stats.rejected_rows:,} rows; "
             f"skipped {stats.skipped:,}; {stats.rows_per_s:,.0f} rows/s"]  # fmt: skip
    lines += [f"  {n:>9,} rows: {reason}" for reason, n in stats.rejected.most_common()]
    if stats.masked_text:
        lines.append(f"  {stats.masked_text:>9,} merchant or city values held a card number: published masked")
    if stats.delivery_errors:
        lines.append(f"  {stats.delivery_errors:,} deliveries FAILED: see the log; rerun with --resume")
    return "\n".join(lines)


ALERT_HEADER = f"{'time':19}  {'card':19} {'amount':>10}  {'category':14} {'score':>5}  reason"


def alert_line(a: AlertEvent) -> str:
    return (f"{a.event_time.isoformat()[:19]:19}  {a.card_masked:19} {a.amt:>10,.2f}  {a.category:14} "
            f"{a.score:5.3f}  {a.reason}")  # fmt: skip


def dead_letters_text(summary: DeadLetterSummary, topic: str, redact: Any) -> str:
    lines = [f"{summary.total:,} dead-lettered messages in {topic}"]
    lines += [f"  {n:>8,}  {kind}" for kind, n in summary.by_kind.most_common()]
    if summary.latest:
        lines.append("latest:")
        lines += [f"  {r.where}  {redact(r.reason)[:160]}" for r in summary.latest]
    return "\n".join(lines)


def tableau_text(export: TableauExport) -> str:
    """``txguard tableau``: where the files are and how to open them."""
    t = export.target
    ssl = f", sslmode {t.sslmode}" if t.sslmode else ""
    lines = [f"Tableau Desktop / Server: open a data source ({len(export.data_sources)}, one per view) in "
             f"{export.data_sources[0].parent}",
             f"  PostgreSQL {t.server}:{t.port}, database {t.dbname}, schema {t.schema}{ssl}, user txguard_analyst "
             "(Tableau asks for its password)",
             f"Tableau Public: Connect > To a File > More... > {export.extract}"]  # fmt: skip
    lines += [f"  {rows:>10,} rows  {view}" for view, rows in export.rows.items()]
    return "\n".join(lines)
