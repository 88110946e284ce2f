"""Stall attribution: what the loop ran while it was late, and how much of the lateness was its own.

Clocks, the loop thread's run-queue wait, the collector's CPU time and the sampled stacks are all
driven by hand: each test states a stall and the culprit it must be blamed on.
"""

from __future__ import annotations

import gc
import logging
import sys
import time

import pytest

from node_dns import stall_stacks, stalls
from node_dns.sinks import metrics
from node_dns.stall_stacks import Frame

INTERVAL, THRESHOLD = 0.025, 0.005

LOOP = (
    Frame("node_dns.cli", "main", 10),
    Frame("asyncio.runners", "run", 118),
)
IDLE_STACK = (*LOOP, Frame("asyncio.base_events", "_run_once", 1900), Frame("selectors", "select", 468))
KOPF_LIST = (
    *LOOP,
    Frame("kopf._core.reactor.queueing", "watcher", 200),
    Frame("kopf._cogs.clients.fetching", "fetch_objs", 80),
    Frame("json.decoder", "raw_decode", 353),
)
PUBLISH = (
    *LOOP,
    Frame("node_dns.sources.nodes", "_node", 260),
    Frame("node_dns.zone.writer", "publish", 120),
    Frame("node_dns.answer.responder", "publish", 90),
    Frame("builtins", "sorted", 0),
)


class Rig:
    """A stall watch with hand-driven clock, loop-thread times, GC time and sampler."""

    def __init__(self) -> None:
        self.now = 100.0
        self.run = 0.0
        self.waited = 0.0
        self.gc = 0.0
        self.stack: stall_stacks.Sample | None = None
        self.watch = stalls.StallWatch(
            metrics.LAG_BUCKETS,
            threshold=THRESHOLD,
            interval=INTERVAL,
            clock=lambda: self.now,
            thread_times=lambda: (self.run, self.waited),
            gc_time=lambda: self.gc,
            sampler=lambda: self.stack,
        )

    def late(
        self,
        lag: float,
        stack: stall_stacks.Sample | None = None,
        samples: int = 1,
        *,
        waited: float = 0.0,
        cpu: float | None = None,
        marked: bool = True,
    ) -> stalls.Stall | None:
        """One window whose heartbeat comes ``lag`` late: the watchdog marks the due time, samples
        ``stack`` meanwhile; the loop thread waits ``waited`` and runs ``cpu`` (default: the rest)."""
        seq, started = self.watch.window
        self.now = started + INTERVAL
        if marked:
            self.watch.mark(seq)
        self.now += self.watch.period
        self.stack = stack
        for _ in range(samples):
            if self.watch.overdue(self.now):
                self.watch.look(seq)
            self.now += self.watch.period
        self.now = started + INTERVAL + lag
        self.waited += waited
        self.run += lag - waited if cpu is None else cpu
        return self.watch.beat(lag)


def test_a_heartbeat_on_time_is_not_overdue_and_no_stall() -> None:
    rig = Rig()
    _, started = rig.watch.window
    assert not rig.watch.overdue(started + INTERVAL + THRESHOLD / 2 - 0.0001)
    assert rig.watch.beat(0.001) is None
    assert rig.watch.culprits == {}


def test_the_watchdog_looks_once_the_heartbeat_is_late_by_half_the_threshold() -> None:
    rig = Rig()
    _, started = rig.watch.window
    assert rig.watch.overdue(started + INTERVAL + THRESHOLD / 2)


def test_a_stall_is_blamed_on_what_the_loop_was_running() -> None:
    rig = Rig()
    stall = rig.late(0.030, KOPF_LIST, samples=4)
    assert stall is not None
    assert stall.culprit == " > ".join(
        (
            "kopf._core.reactor.queueing:watcher",
            "kopf._cogs.clients.fetching:fetch_objs",
            "json.decoder:raw_decode",
        )
    )
    assert "kopf._cogs.clients.fetching:fetch_objs:80" in stall.stack
    culprit = rig.watch.culprits[stall.culprit]
    assert (culprit.stalls, culprit.seconds, culprit.waited) == (1, 0.030, 0.0)


def test_the_culprit_is_the_label_seen_most_in_the_stall() -> None:
    rig = Rig()
    seq, _ = rig.watch.window
    rig.now += INTERVAL + THRESHOLD
    rig.stack = PUBLISH
    rig.watch.look(seq)
    rig.watch.look(seq)
    rig.stack = KOPF_LIST
    rig.watch.look(seq)
    stall = rig.watch.beat(0.020)
    assert stall is not None and stall.culprit.endswith("node_dns.answer.responder:publish > builtins:sorted")


def test_a_sample_taken_for_a_window_already_closed_is_not_counted() -> None:
    rig = Rig()
    seq, _ = rig.watch.window
    rig.watch.beat(0.0)
    rig.stack = PUBLISH
    assert not rig.watch.look(seq)
    stall = rig.late(0.020, None)
    assert stall is not None and stall.culprit == stalls.UNSAMPLED


def test_a_stall_that_is_mostly_run_queue_wait_is_blamed_on_the_run_queue() -> None:
    rig = Rig()
    stall = rig.late(0.030, PUBLISH, samples=3, waited=0.028)  # 28 ms of a 30 ms stall on the run queue
    assert stall is not None
    assert stall.culprit == stalls.RUN_QUEUE
    assert stall.waited == pytest.approx(0.028)
    assert stall.own == pytest.approx(0.002)


def test_run_queue_wait_before_the_heartbeat_fell_due_is_not_taken_out() -> None:
    rig = Rig()
    seq, started = rig.watch.window
    rig.waited += 0.020  # waited 20 ms while answering queries, before the heartbeat was due
    rig.now = started + INTERVAL
    rig.watch.mark(seq)
    rig.now += 0.030
    rig.run += 0.028
    rig.waited += 0.002
    stall = rig.watch.beat(0.030)
    assert stall is not None
    assert stall.waited == pytest.approx(0.002)
    assert stall.cpu == pytest.approx(0.028)
    assert stall.culprit == stalls.UNSAMPLED  # not the run queue: 28 ms of its own


def test_without_a_mark_at_the_due_time_the_whole_windows_wait_is_taken_out() -> None:
    rig = Rig()
    stall = rig.late(0.030, PUBLISH, waited=0.027, marked=False)
    assert stall is not None and stall.waited == pytest.approx(0.027)
    assert stall.culprit == stalls.RUN_QUEUE


def test_a_mark_of_an_earlier_window_is_not_used() -> None:
    rig = Rig()
    seq, _ = rig.watch.window
    rig.watch.beat(0.0)
    rig.waited += 0.010
    rig.watch.mark(seq)  # too late: that window is closed (used, it would leave 1 ms)
    stall = rig.late(0.030, PUBLISH, waited=0.001, marked=False)
    assert stall is not None and stall.waited == pytest.approx(0.011)  # the whole window's


def test_run_queue_wait_is_taken_out_of_the_own_lag_histogram() -> None:
    rig = Rig()
    rig.late(0.030, PUBLISH, waited=0.020)
    bucket = metrics.LAG_BUCKETS.index(0.01)  # 10 ms own lag of 30 ms wall
    assert rig.watch.own_lag.counts[bucket] == 1
    assert rig.watch.longest_own == pytest.approx(0.010)


def test_the_stall_s_cpu_time_is_counted_by_culprit() -> None:
    rig = Rig()
    rig.late(0.030, PUBLISH, waited=0.004, cpu=0.021)
    (culprit,) = rig.watch.culprits.values()
    assert (culprit.waited, culprit.cpu) == (pytest.approx(0.004), pytest.approx(0.021))


def test_a_stall_mostly_spent_collecting_is_blamed_on_the_garbage_collector() -> None:
    rig = Rig()
    rig.gc = 0.012  # 12 ms of collections in a 20 ms stall
    stall = rig.late(0.020, PUBLISH)
    assert stall is not None and stall.culprit == stall_stacks.GC


def test_a_sample_inside_the_collection_callback_names_the_garbage_collector() -> None:
    stack = (*PUBLISH, Frame("node_dns.gcpolicy", "__call__", 70))
    assert stall_stacks.label(stack) == stall_stacks.GC


def test_samples_of_an_idle_loop_say_the_loop_ran_nothing() -> None:
    assert stall_stacks.label(IDLE_STACK) is None
    stall = Rig().late(0.020, IDLE_STACK)
    assert stall is not None and stall.culprit == stalls.IDLE


def test_a_label_names_origin_innermost_own_frame_and_innermost_frame_without_repeats() -> None:
    assert stall_stacks.label((*LOOP, Frame("node_dns.loop_lag", "run", 44))) == "node_dns.loop_lag:run"
    two = (*LOOP, Frame("node_dns.sources.lister", "run", 1), Frame("json", "loads", 2))
    assert stall_stacks.label(two) == "node_dns.sources.lister:run > json:loads"


def test_a_stack_without_loop_frames_is_labelled_from_its_outermost_frame() -> None:
    assert stall_stacks.label((Frame("tests.x", "hog", 1),)) == "tests.x:hog"


def test_each_culprit_is_logged_once_and_counted_every_time(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig()
    with caplog.at_level(logging.INFO, logger="node_dns"):
        rig.late(0.020, PUBLISH)
        rig.late(0.040, PUBLISH)
    lines = [r for r in caplog.records if "first stall of this culprit" in r.getMessage()]
    assert len(lines) == 1
    assert "node_dns.zone.writer:publish:120" in lines[0].getMessage()
    (culprit,) = rig.watch.culprits.values()
    assert (culprit.stalls, culprit.longest) == (2, 0.040)
    assert culprit.seconds == pytest.approx(0.060)


def test_culprits_past_the_cap_are_counted_as_other() -> None:
    rig = Rig()
    for n in range(stalls.MAX_CULPRITS + 3):
        rig.late(0.020, (Frame("tests.hogs", f"hog{n}", 1),))
    assert len(rig.watch.culprits) == stalls.MAX_CULPRITS + 1
    assert rig.watch.culprits[stalls.OTHER].stalls == 3


def test_samples_per_stall_are_capped() -> None:
    rig = Rig()
    seq, _ = rig.watch.window
    rig.stack = PUBLISH
    taken = sum(rig.watch.look(seq) for _ in range(stalls.MAX_SAMPLES + 10))
    assert taken == stalls.MAX_SAMPLES


def test_debug_render_lists_culprits_longest_total_first() -> None:
    rig = Rig()
    rig.late(0.020, PUBLISH)
    rig.late(0.090, KOPF_LIST)
    lines = rig.watch.render().splitlines()
    assert lines[1].startswith("# garbage collector: ")
    assert lines[3].split("\t")[5].startswith("kopf.")
    assert lines[4].split("\t")[5].startswith("node_dns.")


def test_debug_render_lists_the_last_stalls_with_the_time_each_ended() -> None:
    rig = Rig()
    rig.late(0.020, PUBLISH, waited=0.002)
    ended = rig.now
    rig.late(0.001)

    lines = rig.watch.render().splitlines()
    (last,) = lines[lines.index(next(line for line in lines if line.startswith("# the last "))) + 1 :]

    end, lag, waited, _, culprit = last.split("\t")
    assert (float(end), float(lag), float(waited)) == (ended, 20.0, 2.0)
    assert culprit.startswith("node_dns.sources.nodes:_node")


def test_only_the_last_stalls_are_kept_with_their_times() -> None:
    rig = Rig()
    for _ in range(stalls.RECENT + 3):
        rig.late(0.020, PUBLISH)
    assert len(rig.watch.recent) == stalls.RECENT
    assert rig.watch.recent[-1].ended == rig.now


def test_stall_metrics_carry_the_culprit_label() -> None:
    rig = Rig()
    rig.late(0.020, PUBLISH, waited=0.002)
    families = {f.name: f for f in metrics.stall_families(rig.watch)}
    (sample,) = [s for s in families["node_dns_event_loop_stalls"].samples if s.name.endswith("_total")]
    assert sample.labels["culprit"].startswith("node_dns.sources.nodes:_node")
    assert sample.value == 1
    (waited,) = [
        s
        for s in families["node_dns_event_loop_stall_run_queue_seconds"].samples
        if s.name.endswith("_total")
    ]
    assert waited.value == pytest.approx(0.002)


def test_thread_times_are_the_constructing_threads_cpu_and_wait() -> None:
    times = stalls.ThreadTimes()
    try:
        first = times()
        if first is None:
            pytest.skip("this kernel has no per-thread schedstat")
        started = time.thread_time()
        while time.thread_time() - started < 0.02:  # 20 ms of this thread's CPU
            pass
        second = times()
        assert second is not None
        assert second[0] - first[0] >= 0.02
        assert second[1] >= first[1]
    finally:
        times.close()


def test_without_schedstat_there_are_no_times_and_the_wait_is_taken_as_zero() -> None:
    times = stalls.ThreadTimes("/nonexistent")
    assert times() is None
    watch = stalls.StallWatch(metrics.LAG_BUCKETS, thread_times=times)
    stall = watch.beat(0.030)
    assert stall is not None and stall.waited == 0.0


def test_a_sample_taken_as_text_reads_back_as_the_same_stack() -> None:
    def inner() -> str:
        return stall_stacks.stack_text(sys._getframe())

    stack = stall_stacks.parse(inner())
    assert stack[-1].where == f"{__name__}:inner"
    assert stack[-2].where == f"{__name__}:test_a_sample_taken_as_text_reads_back_as_the_same_stack"
    assert stall_stacks.parse(KOPF_LIST) == KOPF_LIST


def test_samples_taken_as_text_are_blamed_like_stacks() -> None:
    rig = Rig()
    text = "".join(f"{f.module} {f.function} {f.line}\n" for f in reversed(PUBLISH))
    stall = rig.late(0.020, text)
    assert stall is not None and stall.culprit == stall_stacks.label(PUBLISH)


def test_the_watchdog_keeps_no_object_the_collector_tracks_per_frame() -> None:
    text = stall_stacks.stack_text(sys._getframe())
    assert not gc.is_tracked(text)
