"""The machine canary of the soak: how node-dns' stalls are lined up with its late wake-ups."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import canary, soak_report
from bench.canary import Record, Stall


def test_the_part_of_a_stall_the_canary_was_late_for_is_the_machines() -> None:
    record = Record(late=[(10.000, 10.030)])
    (left,) = canary.beyond([Stall(ended=10.040, lag=0.040, culprit="(loop idle)")], record)
    assert round(left, 6) == 0.010


def test_a_stall_the_canary_did_not_share_is_all_node_dns() -> None:
    record = Record(late=[(20.0, 20.010)])
    (left,) = canary.beyond([Stall(ended=10.040, lag=0.040, culprit="x")], record)
    assert left == 0.040


def test_every_late_window_inside_a_stall_counts() -> None:
    windows = [(1.000, 1.004), (1.010, 1.020), (1.050, 1.060)]
    assert round(canary.covered(1.002, 1.015, windows), 6) == 0.007


def test_a_run_queue_wait_longer_than_the_canarys_lateness_is_taken_out_instead() -> None:
    record = Record(late=[(10.000, 10.006)])
    stall = Stall(ended=10.020, lag=0.020, culprit="(run queue)", waited=0.015)
    (left,) = canary.beyond([stall], record)
    assert round(left, 6) == 0.005


def test_late_wake_ups_over_a_budget_are_listed_by_lateness() -> None:
    record = Record(late=[(1.0, 1.002), (2.0, 2.009)])
    assert [round(late, 6) for late in record.over(0.005)] == [0.009]


DEBUG_STALLS = """# stalls longer than 5 ms by culprit; longest own lag (less run-queue wait) 40.0 ms
# garbage collector: 0 objects frozen; tracked by generation 0, 1: 1, 2
# stalls\ttotal_ms\trun_queue_ms\tcpu_ms\tlongest_ms\tculprit\tstack
1\t40.0\t0.0\t0.3\t40.0\t(loop idle)\t-
# the last 256 stalls: end (CLOCK_MONOTONIC s)\tlag_ms\trun_queue_ms\tcpu_ms\tculprit
99.500000\t12.0\t0.0\t1.0\tkopf > x
100.250000\t40.0\t0.0\t0.3\t(loop idle)
100.500000\t8.0\t7.5\t0.3\t(run queue)
"""


def test_the_stalls_of_a_run_are_read_from_debug_stalls_by_their_end_time() -> None:
    found = canary.parse_stalls(DEBUG_STALLS, since=100.0, until=200.0)
    assert found == [
        Stall(ended=100.25, lag=0.040, culprit="(loop idle)", waited=0.0),
        Stall(ended=100.5, lag=0.008, culprit="(run queue)", waited=0.0075),
    ]


def test_the_canary_reports_its_wake_ups_as_json_after_its_ready_line() -> None:
    cpu = min(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-m", "bench.canary", str(cpu), "5"], capture_output=True, text=True, check=True
    )
    ready, report = done.stdout.split("\n", 1)
    found = json.loads(report)
    assert ready + "\n" == canary.READY
    assert found["wakeups"] == 5
    assert all(woke > due for due, woke in found["late"])


def test_a_watched_block_gets_the_canarys_record_on_exit() -> None:
    with canary.watching(min(os.sched_getaffinity(0))) as record:
        pass
    assert isinstance(record.realtime, bool)
    assert all(woke > due for due, woke in record.late)


def test_a_soak_run_with_its_canary_and_stalls_is_written_as_json() -> None:
    run = soak_report.Phase("node-dns", 5, rss_mb=[60.0, 61.0])
    run.canary = Record(realtime=True, wakeups=3, late=[(1.0, 1.01)])
    run.stalls = [Stall(ended=1.02, lag=0.02, culprit="(loop idle)")]

    out = soak_report.table([soak_report.Phase("NSD", 0), run], 100, 300.0, 60.0)

    raw = json.loads(json.dumps(out.raw))
    assert raw["node-dns 5"]["canary"]["late"] == [[1.0, 1.01]]
    assert raw["node-dns 5"]["stalls"][0]["culprit"] == "(loop idle)"
