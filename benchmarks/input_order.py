"""Input order on a large file: the order check, the sort alone, or a whole replay into a producer that drops records.

    python -m benchmarks.input_order check|sort|replay FILE [SPILL_DIR]

Run under ``/usr/bin/time -v`` for the peak RSS of that stage alone (each stage in a process of its own).
Make a shuffled 1.3M-row file with ``txguard generate big.csv --customers 1000 --start 2019-01-01 --end
2020-12-31``, ``head -n 1300001 big.csv > f.csv`` and ``(head -1 f.csv; tail -n +2 f.csv | shuf) > shuffled.csv``.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from producer.cards import CardProtector
from producer.order import SortedSource, first_out_of_order
from producer.replay import ReplayOptions, Topics, replay
from producer.source import CsvSource


class DroppingProducer:
    """The part of confluent_kafka.Producer the replay uses; records are counted, then dropped."""

    sent = 0

    def produce(self, topic, value=None, key=None, timestamp=0, headers=None) -> None:  # noqa: ANN001
        self.sent += 1

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float | None = None) -> int:
        return 0


def main(stage: str, path: str, spill: Path) -> dict:
    started = time.monotonic()
    result: dict = {"stage": stage, "file": path}
    if stage == "check":
        late = first_out_of_order(CsvSource(path))
        result["first_out_of_order"] = str(late) if late else None
    elif stage == "sort":
        rows = sum(chunk.batch.num_rows for chunk in SortedSource(CsvSource(path), spill).chunks())
        result["rows"] = rows
    else:
        producer = DroppingProducer()
        stats = replay(CsvSource(path), producer, Topics("t", "l", "d"), CardProtector(b"benchmark-key-0123456789"),
                       ReplayOptions(label_delay=timedelta(days=7), spill_dir=spill))  # fmt: skip
        result.update(events=stats.accepted, labels=stats.labels, rejected=stats.rejected_rows)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spill = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(tempfile.gettempdir())
    print(json.dumps(main(sys.argv[1], sys.argv[2], spill)))
