"""Query counters kept as plain ints on the hot path; the metrics sink reads them at scrape time.

prometheus-client's labelled counters cost microseconds per increment under a lock; at
100k queries/s that alone would be a tenth of the budget. These are read, never reset. The
families they feed, and the histogram's bucket bounds, are declared in :mod:`node_dns.sinks.metrics`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from node_dns.protocol import RCODE_NAMES, TYPE_NAMES


def qtype_label(qtype: int) -> str:
    """Rare types fold into 'other' so label cardinality stays bounded."""
    return TYPE_NAMES.get(qtype, "other")


def rcode_label(rcode: int) -> str:
    return RCODE_NAMES.get(rcode, "other")


@dataclass
class Histogram:
    """Counts per bucket of ``bounds`` (upper bounds, seconds), the last one unbounded."""

    bounds: Sequence[float] = ()
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds


@dataclass
class QueryStats:
    """Counts by (protocol, qtype label, rcode label); durations by protocol; UDP receive waits."""

    duration_bounds: Sequence[float] = ()
    receive_wait_bounds: Sequence[float] = ()
    cells: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    """One one-int list per (protocol, qtype label, rcode label): the response cache keeps the
    cell of each cached answer and increments ``cell[0]``, which costs no tuple hashing per hit
    (hashing the three-string key was a tenth of node-dns' CPU under dnsperf)."""
    durations: dict[str, Histogram] = field(init=False)
    dropped: dict[str, int] = field(default_factory=dict)
    """Packets not answered at all, by reason (not a query, rate limited, too short)."""
    truncated: dict[str, int] = field(default_factory=lambda: {"udp": 0, "tcp": 0})
    receive_waits: Histogram = field(init=False)
    """Per UDP read (a batch, or one datagram on the asyncio path): how long its oldest datagram
    waited in the socket before it was read (:mod:`node_dns.transports.receive_wait`)."""

    def __post_init__(self) -> None:  # built here once, from the bounds: not arguments
        self.durations = {proto: Histogram(self.duration_bounds) for proto in ("udp", "tcp")}
        self.receive_waits = Histogram(self.receive_wait_bounds)

    def cell(self, key: tuple[str, str, str]) -> list[int]:
        """The counter of ``key``, created at 0."""
        found = self.cells.get(key)
        if found is None:
            found = self.cells[key] = [0]
        return found

    def count(self, key: tuple[str, str, str]) -> None:
        self.cell(key)[0] += 1

    @property
    def responses(self) -> dict[tuple[str, str, str], int]:
        """Responses by (protocol, qtype label, rcode label), the keys counted at least once."""
        return {key: cell[0] for key, cell in self.cells.items() if cell[0]}

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
