"""The replay's progress bar: its counts and event clock."""

from datetime import datetime

from producer.progress import ReplayStats, progress_postfix


def test_the_postfix_shows_counts_speed_and_event_clock():
    stats = ReplayStats(accepted=12_345, rejected_rows=7, bytes_read=250, total_bytes=1000,
                        last_event=datetime(2019, 3, 4, 5, 6, 7))  # fmt: skip
    text = progress_postfix(stats)
    assert text.startswith("12,345 sent, 7 rejected, ") and text.endswith(" rows/s, event clock 2019-03-04 05:06")


def test_the_postfix_before_any_event():
    assert progress_postfix(ReplayStats()) == "0 sent, 0 rejected, 0 rows/s, event clock -"
