"""Event-loop stall settings: when a late loop is worth finding out what held it."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group


class StallSettings(Group):
    """Every query is answered from one event loop: a stall delays every query behind it. A
    watchdog thread names what the loop was running during each stall longer than the threshold
    (metrics by culprit, one log line per new culprit, /debug/stalls with --debug-endpoints).
    Off by default: the watchdog needs the GIL to look, and on a busy CPU a watchdog preempted
    while holding it can lengthen the stalls it measures (seen as stalls with little CPU and
    little run-queue wait right after a system call)."""

    title = "Event-loop stalls"

    stall_threshold: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Attribute event-loop stalls longer than this many seconds to what the loop ran, "
        "e.g. 0.005 (0: off, no watchdog thread).",
    )
