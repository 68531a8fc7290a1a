"""The replay's progress line."""

from datetime import datetime

from producer.progress import ReplayStats, progress_line


def test_progress_line_shows_share_counts_clock_and_eta():
    stats = ReplayStats(accepted=12_345, rejected_rows=7, bytes_read=250, total_bytes=1000, started=100.0,
                        last_event=datetime(2019, 3, 4, 5, 6, 7))  # fmt: skip
    line = progress_line(stats, now=110.0)
    assert line.startswith(" 25.0%    12,345 sent      7 rejected ")
    assert line.endswith(" rows/s  event clock 2019-03-04 05:06  ETA    30s")


def test_progress_line_without_size_or_events():
    line = progress_line(ReplayStats())
    assert line.startswith("         0 sent      0 rejected") and line.endswith("event clock -")
