"""Query counters kept as plain ints on the hot path; the metrics sink reads them at scrape time.

prometheus-client's labelled counters cost microseconds per increment under a lock; at
100k queries/s that alone would be a tenth of the budget. These are read, never reset.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Bucket bounds in seconds, as CoreDNS uses for request durations (fine at the low end).
DURATION_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
KNOWN_TYPES = {
    1: "A",
    2: "NS",
    6: "SOA",
    28: "AAAA",
    255: "ANY",
    13: "HINFO",
    5: "CNAME",
    15: "MX",
    16: "TXT",
    33: "SRV",
    65: "HTTPS",
    64: "SVCB",
    12: "PTR",
    252: "AXFR",
    251: "IXFR",
}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS"}


def qtype_label(qtype: int) -> str:
    """Rare types fold into 'other' so label cardinality stays bounded."""
    return KNOWN_TYPES.get(qtype, "other")


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds


@dataclass
class QueryStats:
    """Counts by (protocol, qtype label, rcode label); durations by protocol."""

    responses: dict[tuple[str, str, str], int] = field(default_factory=dict)
    durations: dict[str, Histogram] = field(default_factory=lambda: {"udp": Histogram(), "tcp": Histogram()})
    dropped: dict[str, int] = field(default_factory=dict)
    """Packets not answered at all, by reason (not a query, rate limited, too short)."""
    truncated: dict[str, int] = field(default_factory=lambda: {"udp": 0, "tcp": 0})

    def count(self, key: tuple[str, str, str]) -> None:
        self.responses[key] = self.responses.get(key, 0) + 1

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
