"""The event-loop lag monitor: a timer that fires late measures the stall that held the loop."""

from __future__ import annotations

import asyncio

from node_dns import loop_lag
from node_dns.sinks import metrics
from tests.unit.virtual_clock import VirtualClockLoop, settle, until, virtual_time


def test_a_wake_up_on_time_is_no_lag() -> None:
    monitor = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    assert monitor.observe(due=10.0, now=10.0) == 0.0
    assert monitor.histogram.counts[0] == 1


def test_a_late_wake_up_is_counted_in_its_bucket_and_kept_as_the_longest() -> None:
    monitor = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    monitor.observe(due=10.0, now=10.03)
    monitor.observe(due=11.0, now=11.002)
    bucket = metrics.LAG_BUCKETS.index(0.05)
    assert monitor.histogram.counts[bucket] == 1
    assert monitor.longest == 10.03 - 10.0
    assert sum(monitor.histogram.counts) == 2


def test_a_clock_running_backwards_is_not_a_negative_lag() -> None:
    monitor = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    assert monitor.observe(due=10.0, now=9.0) == 0.0


@virtual_time
async def test_a_callback_that_holds_the_loop_shows_as_lag_of_its_length() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    monitor = loop_lag.LagMonitor(metrics.LAG_BUCKETS, interval=0.025)
    task = asyncio.create_task(monitor.run())
    await until(lambda: sum(monitor.histogram.counts) >= 3, within=1.0)
    assert monitor.longest == 0.0  # virtual time: every timer fires exactly when due

    loop.call_soon(loop.advance, 0.040)  # a callback that keeps the loop for 40 ms
    before = sum(monitor.histogram.counts)
    await until(lambda: sum(monitor.histogram.counts) > before, within=1.0)
    assert 0.015 <= monitor.longest <= 0.040
    task.cancel()
    await settle()
