"""Debug pages, an optional part (--debug-endpoints): the zone being served and what held the loop.

They are served by the HTTP sink beside /metrics; only the pages are built here.
"""

from __future__ import annotations

from collections.abc import Iterator

from node_dns import stalls
from node_dns.settings import Settings
from node_dns.sinks import http
from node_dns.zone import dump, explain, writer


def debug_routes(
    settings: Settings, zone: writer.Zone, watch: stalls.StallWatch | None = None
) -> dict[str, http.Page]:
    """/debug/zone: the zone file being served, and /debug/stalls: what held the event loop (with
    the stall watch on), when --debug-endpoints is on."""
    if not settings.debug_endpoints:
        return {}
    routes: dict[str, http.Page] = {"/debug/stalls": lambda: (watch.render(),)} if watch is not None else {}
    return routes | {"/debug/zone": lambda: _zone_page(zone)}


def _zone_page(zone: writer.Zone) -> Iterator[str]:
    """/debug/zone a line at a time: the zone file served, then why each node is in or out."""
    served, latest = zone.snapshot, zone.latest
    yield from dump.lines(served)
    for line in explain.lines(zone.facts, zone.policy, latest):
        yield line + "\n"
