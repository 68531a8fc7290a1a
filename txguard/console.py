"""What the CLI and the demo print: results turned into lines of text. Pure formatting."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.progress import ReplayStats
    from schemas.events import AlertEvent
    from txguard.app import DeadLetterSummary
    from txguard.stack import Endpoints


# libpq's two DSN forms. A URI's password runs to its user info's '@' (to the last one
# before a '/', so that a raw '@' in a password does not leak the rest); its query may
# also carry password= (or sslpassword=, the client key's passphrase). A key=value
# string's value is a word or a quoted string.
_URI_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")
_URI_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE)


def without_password(dsn: str) -> str:
    """A DSN fit to print: every password in it, in either form libpq reads, replaced."""
    if "://" in dsn:
        return _URI_QUERY_PASSWORD.sub(r"\1***", _URI_USERINFO_PASSWORD.sub(r"\1***@", dsn))
    return _KEYWORD_PASSWORD.sub(r"\1***", dsn)


def endpoints_text(ep: Endpoints) -> str:
    return (f"Kafka bootstrap servers: {ep.kafka_bootstrap}\n"
            f"PostgreSQL DSN:          {without_password(ep.postgres_dsn)}\n"
            f"DynamoDB endpoint:       {ep.dynamodb_endpoint}\n"
            f"S3 endpoint:             {ep.s3_endpoint}")  # fmt: skip


def training_text(report: dict[str, Any]) -> str:
    td = report["training_data"]
    lines = [f"trained on {td['rows']:,} rows ({td['start']} .. {td['end']}); threshold {report['threshold']:.4f}"]
    q = report.get("training_quality", {})
    if q:
        lines.append(f"  in-sample: ROC-AUC {q.get('roc_auc', float('nan')):.3f}  "
                     f"PR-AUC {q.get('pr_auc', float('nan')):.3f}  precision {q['precision']:.3f}  "
                     f"recall {q['recall']:.3f} at the alert threshold")  # fmt: skip
    return "\n".join(lines)


def models_text(models: list[dict[str, Any]]) -> str:
    """``txguard model list``: one line per version, its role, training window, rows and in-sample metrics."""
    if not models:
        return "no models yet: run `txguard train`"

    def metric(m: dict[str, Any], key: str) -> str:
        value = m["metrics"].get(key)
        return f"{value:.3f}" if isinstance(value, int | float) else "-"

    lines = [f"{'version':22} {'role':7} {'training window':43} {'rows':>10} {'ROC-AUC':>7} {'PR-AUC':>7} "
             f"{'prec':>6} {'recall':>6}"]  # fmt: skip
    for m in models:
        window = f"{m['training_start'] or '?'} .. {m['training_end'] or '?'}"
        rows = f"{m['rows']:,}" if isinstance(m["rows"], int) else "-"
        lines.append(f"{m['version']:22} {m['role']:7} {window:43} {rows:>10} {metric(m, 'roc_auc'):>7} "
                     f"{metric(m, 'pr_auc'):>7} {metric(m, 'precision'):>6} {metric(m, 'recall'):>6}")  # fmt: skip
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
