"""The benchmarks' own arithmetic: CPU accounting of real processes, the profile summary,
the capacity model, the old/new comparison and the latency percentiles (no servers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks import compare
from benchmarks.broker import _FetchCounter
from benchmarks.capacity import markdown, model
from benchmarks.cpu import CpuMeter, memory_mb, per_event_us, table, tree_memory_mb
from benchmarks.latency import _per_second, _percentiles
from benchmarks.pyspy import summarise

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
# Says "done" once it (or the child it ran and reaped) has burnt 0.3 s of CPU, then waits to be let go.
DONE = "print('done', flush=True)\nimport sys\nsys.stdin.read()\n"


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_cpu_meter_counts_what_a_process_spent_including_its_exited_children():
    idle = _child(DONE)
    # The parent runs its child only once told to, after the first snapshot.
    parent = _child(
        f"import subprocess, sys\nsys.stdin.readline()\nsubprocess.run([sys.executable, '-c', {BURN!r}])\n{DONE}"
    )
    busy = None
    try:
        assert idle.stdout.readline() == "done\n"  # type: ignore[union-attr]
        meter = CpuMeter({"idle": idle.pid, "parent": parent.pid}).start()
        busy = _child(BURN + DONE)
        meter.add("busy", busy.pid)
        parent.stdin.write("go\n")  # type: ignore[union-attr]
        parent.stdin.flush()  # type: ignore[union-attr]
        for p in (parent, busy):
            assert p.stdout.readline() == "done\n"  # type: ignore[union-attr]
        seconds = meter.stop()
    finally:
        for p in (idle, parent, busy):
            if p is not None:
                p.communicate(timeout=10)
    assert seconds["busy"] >= 0.3
    assert seconds["parent"] >= 0.3  # the exited grandchild's CPU, from the parent's children_* times
    assert seconds["idle"] < 0.3
    assert per_event_us({"busy": 0.5}, 1000) == {"busy": 500.0}
    printed = table({"drain": {"busy": 0.5, "idle": 0.1}}, 1000)
    assert printed.splitlines()[-1].split() == ["total", "0.60", "600.0"]


def test_profile_summary_sums_samples_per_function(tmp_path):
    collapsed = tmp_path / "p.collapsed"
    collapsed.write_text(
        "main (cli.py:1);run (streaming/loop.py:10);decode (consumers/persist.py:5) 30\n"
        "main (cli.py:1);run (streaming/loop.py:12);decode (consumers/persist.py:7) 20\n"
        "main (cli.py:1);run (streaming/loop.py:10);write (consumers/postgres.py:9) 50\n"
    )
    summary = summarise(collapsed)
    assert summary["samples"] == 100
    assert summary["self_pct"][0] == {"function": "decode (consumers/persist.py)", "pct": 50.0}
    assert {"function": "write (consumers/postgres.py)", "pct": 50.0} in summary["self_pct"]
    # main and run are under every sample: they say nothing and are left out
    assert [e["function"] for e in summary["inclusive_pct"]] == ["decode (consumers/persist.py)",
                                                                "write (consumers/postgres.py)"]  # fmt: skip


CPU = {
    "cpu_us_per_event": {
        "send": {"producer": 10.0, "broker": 2.0},
        "drain": {"broker": 3.0, "postgresql": 20.0, "dynamodb": 5.0, "persist": 15.0, "scorer": 30.0},
    },
    "dynamodb_item_bytes": 1500,
    "postgresql_bytes_per_event": 900,
}


def test_capacity_model_arithmetic():
    cap = model(CPU, rates=(10_000, 65_000))
    assert cap["cpu_us_per_event"]["broker"] == 5.0  # sending and draining
    ten, peak = cap["rows"]
    # 10,000 ev/s x 30 us = 0.3 core busy, planned at 60%: 0.5 core -> one scorer
    assert ten["cores"]["scorer"] == 0.5 and ten["scorer_processes"] == 1
    # 65,000 x 30 us / 0.6 = 3.25 cores -> 4 scorers; persist 65,000 x 15 / 0.6 = 1.6 -> 2
    assert peak["scorer_processes"] == 4 and peak["persist_processes"] == 2
    assert peak["partitions"] == 8  # the next power of two >= 2 x 4, at least 8
    assert peak["dynamodb_wcu"] == 65_000 * 2  # a 1.5 KB item costs two write units
    assert peak["rds"] == "db.r6g.xlarge"  # 65,000 x 20 us / 0.6 = 2.17 vCPU -> 4
    assert peak["postgresql_gb_per_day"] == round(65_000 * 86_400 * 900 / 1e9, 1)
    text = markdown(cap)
    assert "| 65,000 | 8 | 2 | 4 |" in text and "rate x us / 1e6 / 0.6" in text
    assert peak["app_cores"] == round(65_000 * (10 + 15 + 30) / 1e6 / 0.6, 1)  # producer + persist + scorer


def test_capacity_model_gives_each_card_writer_a_core_and_one_write_an_event():
    (peak,) = model(CPU, rates=(65_000,), card_write_us=60.0)["rows"]
    # 65,000 writes/s x 60 us / 0.6 = 6.5 cores of card writers, one a scorer process: 7 scorers
    assert peak["cores"]["card_writer"] == 6.5 and peak["scorer_processes"] == 7
    assert peak["partitions"] == 16  # the next power of two >= 2 x 7
    assert peak["app_cores"] == round(65_000 * (10 + 15 + 30 + 60) / 1e6 / 0.6, 1)  # and the card writers


def test_capacity_model_takes_the_measured_runs_card_writes_out_of_the_scorer():
    measured = {**CPU, "events": 1_000, "card_writes": 100}  # a write every 10 events, in the scorer's 30 us
    (row,) = model(measured, rates=(1_000,), card_write_us=60.0)["rows"]
    # the scorer without them: 30 - 100 / 1,000 x 60 = 24 us; the card writer: 60 us, one write an event
    assert row["cores"]["scorer"] == round(1_000 * 24 / 1e6 / 0.6, 2) and row["cores"]["card_writer"] == 0.1


def test_compare_prints_old_new_and_ratio(tmp_path, monkeypatch):
    results, previous = tmp_path, tmp_path / "previous"
    monkeypatch.setattr(compare, "RESULTS", results)
    monkeypatch.setattr(compare, "PREVIOUS", previous)
    old = {"at": "1", "rates": [{"events_per_s": 5000, "p50_ms": 400.0, "p99_ms": 600.0, "max_ms": 700.0}]}
    (results / "latency.json").write_text(json.dumps(old))
    compare.save()
    new = {"at": "2", "rates": [{"events_per_s": 5000, "p50_ms": 40.0, "p99_ms": 120.0, "max_ms": 350.0}]}
    (results / "latency.json").write_text(json.dumps(new))
    (results / "peer.json").write_text(json.dumps({"at": "3", "txguard_vs_peer_ratio": 1.5}))  # no previous
    lines = compare.show().splitlines()
    row = next(line for line in lines if "rates[5000].p99_ms" in line)
    assert row.split()[1:5] == ["rates[5000].p99_ms", "600", "120", "0.20"]
    assert next(line for line in lines if "txguard_vs_peer_ratio" in line).split()[2:5] == ["-", "1.5", "-"]


def test_compare_names_list_items_by_what_stays_the_same():
    scaling = {"runs": [{"scorer_processes": 1, "events_per_s": 2232}, {"scorer_processes": 2, "events_per_s": 2773}]}
    assert compare.headlines("scaling", scaling) == {"runs[1].events_per_s": 2232, "runs[2].events_per_s": 2773}


def test_compare_names_the_broker_and_latency_rows_by_size_and_rate():
    broker = {"sizes": [{"stored_batches": 0, "broker_cpu_ms_per_fetch": 1.8},
                        {"stored_batches": 8000, "broker_cpu_ms_per_fetch": 13.3}]}  # fmt: skip
    latency = {"rates": [{"events_per_s": 1000, "p99_ms": 195.0, "cpu_cores": {"broker": 0.6}}], "alerts": []}
    assert compare.headlines("broker", broker) == {"sizes[0].broker_cpu_ms_per_fetch": 1.8,
                                                   "sizes[8000].broker_cpu_ms_per_fetch": 13.3}  # fmt: skip
    assert compare.headlines("latency", latency) == {"rates[1000].p99_ms": 195.0, "rates[1000].cpu_cores.broker": 0.6}


def test_fetch_counter_counts_the_fetch_requests_sent_to_brokers_not_to_the_bootstrap_address():
    counter = _FetchCounter()
    stats = {"brokers": {"127.0.0.1:9092/bootstrap": {"nodeid": -1, "req": {"Fetch": 0, "Metadata": 3}},
                         "127.0.0.1:9092/1": {"nodeid": 1, "req": {"Fetch": 41, "Produce": 2}},
                         "127.0.0.1:9093/2": {"nodeid": 2, "req": {"Fetch": 9}}}}  # fmt: skip
    counter(json.dumps(stats))
    assert counter.fetches == 50


def test_compare_skips_a_result_not_run_this_time(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "RESULTS", tmp_path)
    monkeypatch.setattr(compare, "PREVIOUS", tmp_path / "previous")
    (tmp_path / "producer.json").write_text(json.dumps({"at": "1", "events_per_s": 88_000}))
    compare.save()
    assert "producer" not in compare.show()


@pytest.mark.parametrize("ms", [[], [float(i) for i in range(1, 101)]])
def test_latency_percentiles_in_the_issue_format(ms):
    row = _percentiles(5000, ms)
    assert list(row) == ["events_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    if ms:
        assert (row["p50_ms"], row["p99_ms"], row["max_ms"]) == (50.5, 99.0, 100.0)
    else:
        assert row["p99_ms"] is None


def test_latency_per_second_groups_events_by_the_second_they_were_sent():
    second = 1_000_000_000
    sent = {"a": 5 * second, "b": 5 * second + 400_000_000, "c": 6 * second + 1, "d": 8 * second}
    latencies = {"a": 10.0, "b": 30.0, "c": 2500.0}  # d never scored: not in any second
    assert _per_second(sent, latencies, ["a", "b", "c", "d"]) == [
        {"second": 0, "p50_ms": 20.0, "max_ms": 30.0},
        {"second": 1, "p50_ms": 2500.0, "max_ms": 2500.0},
    ]


def test_a_process_trees_memory_counts_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        alone, child_mb = memory_mb(os.getpid(), "VmRSS"), memory_mb(child.pid, "VmRSS")
        assert tree_memory_mb(os.getpid(), "VmRSS") >= alone + 0.9 * child_mb > alone
    finally:
        child.kill()
        child.wait(10)
