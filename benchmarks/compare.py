"""Before and after ``make bench``: the headline numbers of each result, old / new / ratio.

``save`` copies benchmarks/results/*.json to benchmarks/results/previous/ (not kept in
git) before the benchmarks overwrite them; ``show`` prints, for each result that has a
previous copy, the numbers listed in ``HEADLINES`` side by side::

    python -m benchmarks.compare save|show
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from typing import Any

from benchmarks.run import RESULTS

PREVIOUS = RESULTS / "previous"

# Per result file, dotted paths to the numbers worth comparing; "*" walks a list (an item is
# named by its first LABELS key) or a dict (by its keys).
HEADLINES = {
    "producer": ["events_per_s", "peak_rss_mb"],
    "pipeline": ["pipeline_events_per_s", "bare_consume_copy_events_per_s", "pipeline_vs_bare_ratio"],
    "cpu": ["cpu_us_per_event_total", "cpu_us_per_event.*.*", "peak_rss_mb.*"],
    "profile": ["seconds"],
    "peer": ["txguard_persist.events_per_s", "quix_streams_peer.events_per_s", "txguard_vs_peer_ratio"],
    "scaling": ["runs.*.events_per_s"],
    "latency": ["rates.*.p50_ms", "rates.*.p99_ms", "rates.*.max_ms", "alerts.*.p99_ms", "rates.*.cpu_cores.broker"],
    "broker": ["sizes.*.broker_cpu_ms_per_fetch"],
    "memory": ["scorer_distinct_cards.peak_rss_mb", "scorer_distinct_cards.cpu_seconds"],
    "card_writes": ["writes_per_s", "cpu_us_per_write.*"],
    "views": ["summary_execution_ms.*.after_ms", "rollup_refresh_seconds"],
}
LABELS = ("scorer_processes", "events_per_s", "stored_batches")  # scaling by processes, latency by rate, ...
# Where a larger number is worse (times, sizes, CPU): the ratio is still new / old.
LOWER_IS_BETTER = ("_ms", "_mb", "seconds", "cpu_us", "us_per_event", "cpu_cores", "_per_fetch")


def _walk(doc: Any, parts: list[str], name: str) -> Iterator[tuple[str, float]]:
    if not parts:
        if isinstance(doc, int | float) and not isinstance(doc, bool):
            yield name, float(doc)
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = (
            doc.items()
            if isinstance(doc, dict)
            else (
                (next((str(i[k]) for k in LABELS if isinstance(i, dict) and k in i), str(n)), i)
                for n, i in enumerate(doc if isinstance(doc, list) else [])
            )  # fmt: skip
        )
        for key, value in items:
            yield from _walk(value, rest, f"{name}[{key}]")
    elif isinstance(doc, dict) and head in doc:
        yield from _walk(doc[head], rest, f"{name}.{head}" if name else head)


def headlines(bench: str, doc: dict) -> dict[str, float]:
    return {name: value for path in HEADLINES.get(bench, []) for name, value in _walk(doc, path.split("."), "")}


def save() -> None:
    PREVIOUS.mkdir(parents=True, exist_ok=True)
    for path in RESULTS.glob("*.json"):
        shutil.copy2(path, PREVIOUS / path.name)


def show() -> str:
    lines = [f"{'result':<44} {'previous':>12} {'now':>12} {'now/prev':>9}"]
    for path in sorted(RESULTS.glob("*.json")):
        bench = path.stem
        old_path = PREVIOUS / path.name
        new = headlines(bench, json.loads(path.read_text()))
        old = headlines(bench, json.loads(old_path.read_text())) if old_path.exists() else {}
        if json.loads(path.read_text()).get("at") == (json.loads(old_path.read_text()).get("at") if old else None):
            continue  # not run this time
        for name, value in new.items():
            before = old.get(name)
            ratio = f"{value / before:.2f}" if before else "-"
            worse = "  (lower is better)" if any(s in name for s in LOWER_IS_BETTER) else ""
            prev = f"{before:g}" if before is not None else "-"
            lines.append(f"{bench + ' ' + name:<44} {prev:>12} {value:>12g} {ratio:>9}{worse}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    action = (argv or sys.argv[1:] or ["show"])[0]
    if action == "save":
        save()
    elif action == "show":
        print(show())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
