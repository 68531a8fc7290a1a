"""A process whose graceful stop overruns its deadline exits by itself (no orphan outlives it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_stop_that_overruns_the_timeout_exits_hard():
    stuck = textwrap.dedent("""
        import threading, time
        from streaming.signals import exit_when_stop_overruns
        stop = threading.Event()
        exit_when_stop_overruns(stop, 0.2)
        stop.set()
        time.sleep(600)  # a call that ignores the stop flag
    """)
    done = subprocess.run([sys.executable, "-c", stuck], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "exiting without the last checkpoint" in done.stderr


def test_a_stop_in_time_exits_normally():
    prompt = textwrap.dedent("""
        import threading
        from streaming.signals import exit_when_stop_overruns
        stop = threading.Event()
        exit_when_stop_overruns(stop, 60)
        stop.set()
    """)
    assert subprocess.run([sys.executable, "-c", prompt], timeout=60).returncode == 0
