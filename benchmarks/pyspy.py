"""Where persist and the scorer spend their CPU: py-spy samples both while they drain.

py-spy (a sampling profiler that reads the process from outside; ``--nonblocking`` so it
never pauses it) writes the collapsed stacks of each service to
``benchmarks/results/profile-<service>.collapsed`` (the input of flamegraph.pl, opened
as is by speedscope.app), and this module sums them into ``profile.json`` and
``profile-summary.txt``: per service, the functions with the most samples on CPU by
themselves (self) and under them (inclusive). Idle threads are not sampled.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks.run import RESULTS, _stop, _train_and_preload, _txguard, _wait_for_counts, _write
from txguard.clients import Clients
from txguard.settings import Settings

SERVICES = ("persist", "scorer")
TOP = 20


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: pip install '.[bench]'")
    return found


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (file.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({'/'.join(file.split('/')[-2:])})" if file else name


def summarise(collapsed: Path) -> dict:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n  # the leaf: on CPU by itself
        for f in set(frames):
            inclusive[f] += n
    pct = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_pct": [{"function": f, "pct": pct(n)} for f, n in own.most_common(TOP)],
        # Less than all: the entry points every sample passes through say nothing.
        "inclusive_pct": [{"function": f, "pct": pct(n)} for f, n in inclusive.most_common() if n < total][:TOP],
    }


def bench_profile(settings: Settings, path: Path, limit: int, gil_only: bool = False) -> dict:
    """``gil_only``: sample only the threads that hold the GIL (``py-spy --gil``), Python's own CPU;
    otherwise a thread waiting for a core or the GIL counts as busy."""
    from txguard.supervisor import ready_marker

    events, _ = _train_and_preload(settings, path, limit=limit)
    clients = Clients(settings)
    procs = [subprocess.Popen(_txguard(settings, "consume", s)) for s in SERVICES]
    spies: list[subprocess.Popen] = []
    try:
        while not all(ready_marker(settings, s).exists() for s in SERVICES):
            time.sleep(0.1)
        RESULTS.mkdir(exist_ok=True)
        for s in SERVICES:
            (RESULTS / f"profile-{s}.collapsed").unlink(missing_ok=True)  # never summarise an earlier run's
        gil_flag = ["--gil"] if gil_only else []
        # --subprocesses: the scorer's card writer (a child process) is part of the scorer.
        spies = [subprocess.Popen([py_spy(), "record", "--pid", str(p.pid), "--subprocesses", "--rate", "100",
                                   "--nonblocking", *gil_flag,
                                   "--format", "raw", "--output", str(RESULTS / f"profile-{s}.collapsed")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for s, p in zip(SERVICES, procs, strict=True)]  # fmt: skip
        t0 = time.perf_counter()
        _wait_for_counts(clients, ("transactions", "scores"), events)
        seconds = time.perf_counter() - t0
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        for spy in spies:
            spy.wait(60)
        _stop(procs)
    missing = [s for s in SERVICES if not (RESULTS / f"profile-{s}.collapsed").exists()]
    if missing:  # e.g. no ptrace permission in a container (py-spy needs CAP_SYS_PTRACE there)
        raise RuntimeError(f"py-spy wrote no profile of {', '.join(missing)}")
    profiles = {s: summarise(RESULTS / f"profile-{s}.collapsed") for s in SERVICES}
    lines = []
    sampled = "threads holding the GIL" if gil_only else "every thread, idle ones left out"
    for service, prof in profiles.items():
        lines.append(f"== {service}: {prof['samples']} samples at 100 Hz ({sampled}), {events} events ==")
        lines.append("self %   function")
        lines += [f"{e['pct']:6.1f}   {e['function']}" for e in prof["self_pct"]]
        lines.append("inclusive %   function")
        lines += [f"{e['pct']:6.1f}   {e['function']}" for e in prof["inclusive_pct"]]
        lines.append("")
    (RESULTS / "profile-summary.txt").write_text("\n".join(lines))
    print("\n".join(lines))
    profiler = " ".join(["py-spy record --subprocesses --nonblocking", *gil_flag])
    _write("profile", {"events": events, "seconds": round(seconds, 2), "profiler": profiler, "services": profiles},
           show=False)  # fmt: skip
    return profiles
