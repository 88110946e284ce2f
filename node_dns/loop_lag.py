"""How late the event loop runs what is due: the measure of a stall, as the receive path feels it.

Every query is answered from the one event loop, so anything that holds it (building and
publishing a snapshot, a garbage collection, a heap trim, a large list, a scrape) delays every
query behind it, and past the socket's receive buffer the kernel drops them. A timer that should
fire every ``interval`` seconds and fires late by ``lag`` saw a stall of at least that long. The
monitor costs one timer per interval; what it observes goes to a histogram (read by the metrics
sink at scrape time) and to the longest lag seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from node_dns.answer.stats import Histogram

INTERVAL = 0.025
"""Seconds between two checks: any stall longer than this is seen whole."""


class LagMonitor:
    """Observes the event loop's lag; ``clock`` is the loop's (injected in tests)."""

    def __init__(self, bounds: Sequence[float], interval: float = INTERVAL) -> None:
        self.interval = interval
        self.histogram = Histogram(bounds)
        self.longest = 0.0
        """The longest lag seen since start, seconds."""
        self.listeners: list[Callable[[float], Any]] = []
        """Called with each wake-up's lag, on the loop (the stall watch's heartbeat)."""

    def observe(self, due: float, now: float) -> float:
        """Record one wake-up that was due at ``due`` and came at ``now``; returns the lag."""
        lag = max(0.0, now - due)
        self.histogram.observe(lag)
        self.longest = max(self.longest, lag)
        return lag

    async def run(self, clock: Callable[[], float] | None = None) -> None:
        """Sleep ``interval``, observe how late the wake-up came, forever."""
        now = clock or asyncio.get_running_loop().time
        while True:
            due = now() + self.interval
            await asyncio.sleep(self.interval)
            lag = self.observe(due, now())
            for listener in self.listeners:
                listener(lag)
