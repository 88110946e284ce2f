"""Event-loop stall settings: when a late loop is worth finding out what held it."""

from __future__ import annotations

from pydantic import Field

from node_dns.settings.group import Group


class StallSettings(Group):
    """Every query is answered from one event loop: a stall delays every query behind it. A
    watchdog thread names what the loop was running during each stall longer than the threshold
    (metrics by culprit, one log line per new culprit, /debug/stalls with --debug-endpoints)."""

    title = "Event-loop stalls"

    stall_threshold: float = Field(
        0.005,
        ge=0,
        le=10,
        description="Attribute event-loop stalls longer than this many seconds to what the loop ran "
        "(0: off, no watchdog thread).",
    )
