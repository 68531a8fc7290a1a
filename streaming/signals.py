"""Stop signals: SIGTERM and SIGINT set a flag; loops finish their batch and exit."""

from __future__ import annotations

import signal
import threading


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
