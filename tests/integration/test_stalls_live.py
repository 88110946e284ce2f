"""Stall attribution on a real event loop with the real watchdog thread and clocks.

A callback holds the loop on purpose: computing (on the CPU, the GIL held) or blocked in a
system call (off the CPU, the GIL released). The watch must name that callback as the culprit,
on the standard loop and on uvloop, and its run-queue share must not swallow the stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from node_dns import loop_lag, stalls
from node_dns.sinks import metrics

HOLD = 0.060
"""Seconds each artificial stall holds the loop (CPU time when computing)."""
WITHIN = 60.0
"""Seconds to wait for the watch to report (a loaded machine delays everything)."""

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def hold_the_loop_computing() -> None:
    started = time.thread_time()
    while time.thread_time() - started < HOLD:
        pass


def hold_the_loop_sleeping() -> None:
    time.sleep(HOLD)


def run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main())


async def blamed(hold: Callable[[], None]) -> stalls.Culprit:
    """Hold the loop with ``hold`` until the watch names it; the culprit found."""
    lag = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    running = stalls.start(lag, stalls.THRESHOLD, gc_time=lambda: 0.0)
    assert running is not None
    heartbeat = asyncio.create_task(lag.run())
    try:
        async with asyncio.timeout(WITHIN):
            while True:
                asyncio.get_running_loop().call_soon(hold)
                await asyncio.sleep(0.2)
                for culprit in running.watch.culprits.values():
                    if hold.__name__ in culprit.name:
                        return culprit
    finally:
        heartbeat.cancel()
        running.stop()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_callback_computing_on_the_loop_is_named_as_the_culprit(loop: str) -> None:
    async def main() -> None:
        culprit = await blamed(hold_the_loop_computing)
        assert culprit.name == f"{__name__}:hold_the_loop_computing"
        assert f"{__name__}:hold_the_loop_computing:" in culprit.stack
        assert culprit.seconds - culprit.waited > stalls.THRESHOLD

    run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_blocking_call_on_the_loop_is_named_as_the_culprit(loop: str) -> None:
    async def main() -> None:
        culprit = await blamed(hold_the_loop_sleeping)
        assert culprit.name == f"{__name__}:hold_the_loop_sleeping"
        assert culprit.seconds - culprit.waited > stalls.THRESHOLD

    run(loop, main)


def test_the_watchdog_thread_ends_when_stopped() -> None:
    async def main() -> None:
        lag = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
        running = stalls.start(lag, stalls.THRESHOLD, gc_time=lambda: 0.0)
        assert running is not None
        running.stop()
        assert not running.watchdog._thread.is_alive()

    run("asyncio", main)


def test_a_threshold_of_zero_starts_no_watch() -> None:
    lag = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    assert stalls.start(lag, 0.0, gc_time=lambda: 0.0) is None
    assert lag.listeners == []
