"""Stop signals: SIGTERM and SIGINT set a flag; loops finish their batch and exit."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def stop_event() -> threading.Event:
    """A stop flag wired to SIGTERM and SIGINT."""
    stop = threading.Event()
    install_signal_handlers(stop)
    return stop


def stop_with_parent(stop: threading.Event, parent_pid: int) -> None:
    """Set ``stop`` when the process ``parent_pid`` (our parent) dies, even by SIGKILL: no orphan.

    On Linux the kernel sends us SIGTERM then (``PR_SET_PDEATHSIG``; the handlers of
    :func:`install_signal_handlers` turn it into ``stop``); elsewhere a thread watches
    our parent pid. A parent already gone before this call is seen by the pid check.
    """
    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:
                stop.set()
            return
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): watching the parent pid instead", ctypes.get_errno())

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def exit_when_stop_overruns(stop: threading.Event, timeout_s: float) -> None:
    """Once ``stop`` is set, allow ``timeout_s`` seconds for a graceful exit, then exit hard.

    A service stuck in a call that ignores ``stop`` must not outlive its supervisor (which
    kills it at the same timeout, unless it was itself killed). The last checkpoint is lost:
    the next owner of the partitions replays from the last commit.
    """

    def watch() -> None:
        stop.wait()
        time.sleep(timeout_s)  # a daemon thread: a process that exits in time never gets past this
        log.error("still running %gs after the stop signal: exiting without the last checkpoint", timeout_s)
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=watch, name="stop-deadline", daemon=True).start()


def pid_alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts: signalling it is refused)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
