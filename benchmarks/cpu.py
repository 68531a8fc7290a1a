"""CPU seconds per component, from each process's own accounting (psutil over /proc).

A component is one or more root pids; its CPU is the user + system time of every live
process in their trees plus what the roots have reaped from children that exited (a
PostgreSQL backend that closed during the run is counted by the postmaster's
``children_*`` times). :class:`CpuMeter` takes a snapshot at the start and the end of a
phase; a process started after the first snapshot counts from zero.
"""

from __future__ import annotations

import psutil

from txguard import stack
from txguard.settings import Settings


def _tree_cpu(root: int) -> float:
    try:
        proc = psutil.Process(root)
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in children:
        try:
            t = child.cpu_times()
            total += t.user + t.system  # its own reaped children are in its parent's children_* once it exits
        except psutil.NoSuchProcess:
            pass
    return total


def server_pids(settings: Settings) -> dict[str, int]:
    """The embedded stack's servers: broker, PostgreSQL (postmaster) and the DynamoDB endpoint."""
    state = stack._read_state(settings)
    pids = {"broker": state["kafka"]["pid"], "postgresql": state["postgres"]["pid"]}
    dynalite = state.get("dynalite", {}).get("pid")
    pids["dynamodb"] = dynalite if dynalite and psutil.pid_exists(dynalite) else state["moto"]["pid"]
    return pids


class CpuMeter:
    """CPU seconds each named component spent between :meth:`start` and :meth:`stop`."""

    def __init__(self, components: dict[str, int]):
        self.components = dict(components)
        self._start: dict[str, float] = {}  # empty until start()
        self.seconds: dict[str, float] = {}

    def add(self, name: str, pid: int) -> None:
        """A component that started after :meth:`start` (counts from zero)."""
        self.components[name] = pid
        self._start.setdefault(name, 0.0)

    @property
    def started(self) -> bool:
        return bool(self._start)

    def start(self) -> CpuMeter:
        self._start = {name: _tree_cpu(pid) for name, pid in self.components.items()}
        return self

    def stop(self) -> dict[str, float]:
        """Call while the processes still run: a process that is gone has no times left to read."""
        self.seconds = {name: _tree_cpu(pid) - self._start.get(name, 0.0) for name, pid in self.components.items()}
        return self.seconds


def memory_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A process's resident memory now (``VmRSS``) or its peak so far (``VmHWM``), in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def tree_memory_mb(pid: int, field: str = "VmHWM") -> float:
    """:func:`memory_mb` of a process plus its children (the scorer's card writer): for peaks, the
    sum of each one's own peak, an upper bound."""
    try:
        children = [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        children = []
    total = memory_mb(pid, field)
    for child in children:
        try:
            total += memory_mb(child, field)
        except FileNotFoundError:  # exited meanwhile
            pass
    return total


def per_event_us(seconds: dict[str, float], events: int) -> dict[str, float]:
    return {name: round(s / events * 1e6, 1) for name, s in seconds.items()}


def table(rows: dict[str, dict[str, float]], events: int) -> str:
    """CPU seconds and CPU-us per event per component, one line each, with the total."""
    lines = [f"{'component':<12} {'phase':<8} {'cpu_s':>8} {'cpu_us/event':>13}"]
    total = 0.0
    for phase, seconds in rows.items():
        for name, s in seconds.items():
            total += s
            lines.append(f"{name:<12} {phase:<8} {s:>8.2f} {s / events * 1e6:>13.1f}")
    lines.append(f"{'total':<12} {'':<8} {total:>8.2f} {total / events * 1e6:>13.1f}")
    return "\n".join(lines)
