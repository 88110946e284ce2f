"""Worker counters carried to the parent as differences, so there is one /metrics (pure).

A worker counts exactly as the in-process path does: plain ints and lists the hot path bumps
(:class:`node_dns.answer.stats.QueryStats` cells, histogram buckets, drop reasons). Every few
seconds it flattens them (:func:`tally`), sends what moved since its last report
(:func:`since`), and the parent adds that into its own counters (:func:`merge`), which the
metrics collector already reads. Nothing is added per query.

prometheus-client's multiprocess mode was the other way: every increment goes through a
labelled counter into a memory-mapped file per process (a lock, a dict lookup and a struct
write, microseconds, where the cached-answer path spends well under one on counting), and the
hot path's shared counter cells would have to go. Differences cost O(series) per interval.
The price: /metrics lags a worker by up to one interval, and a worker killed outright loses
the counts of its last interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from node_dns.answer import xfr
from node_dns.answer.stats import Histogram, QueryStats
from node_dns.transports.ratelimit import RateLimitStats
from node_dns.transports.state import TransportState

Key = tuple[str, ...]
"""A flattened series: ``("response", proto, qtype, rcode)``, ``("duration", proto, "3")``, ..."""

RESPONSE = "response"
DURATION = "duration"
DURATION_SUM = "duration_sum"
DROPPED = "dropped"
TRUNCATED = "truncated"
INTERNAL_ERRORS = "internal_errors"
RATE_LIMITED = "rate_limited"
TRANSFER = "transfer"
TSIG_ERROR = "tsig_error"
SIGNED_QUERIES = "signed_queries"
LAG = "lag"
LAG_SUM = "lag_sum"
RECEIVE_WAIT = "receive_wait"
RECEIVE_WAIT_SUM = "receive_wait_sum"


@dataclass
class Sources:
    """A worker's counters (the optional parts are None when that feature is off)."""

    queries: QueryStats
    state: TransportState
    rate_limits: RateLimitStats | None = None
    transfers: xfr.Stats | None = None
    lag: Histogram | None = None


@dataclass
class Targets:
    """Where the parent adds what its workers counted."""

    queries: QueryStats
    state: TransportState
    rate_limits: dict[tuple[str, str], int] = field(default_factory=dict)
    transfers: xfr.Stats | None = None
    lag: Histogram = field(default_factory=Histogram)


def _histogram(into: dict[Key, float], name: str, total: str, hist: Histogram, *label: str) -> None:
    for index, count in enumerate(hist.counts):
        if count:
            into[(name, *label, str(index))] = count
    if hist.total:
        into[(total, *label)] = hist.total


def tally(sources: Sources) -> dict[Key, float]:
    """Every non-zero counter of a worker as one flat mapping."""
    into: dict[Key, float] = {}
    queries = sources.queries
    for (proto, qtype, rcode), cell in queries.cells.items():
        if cell[0]:
            into[(RESPONSE, proto, qtype, rcode)] = cell[0]
    for proto, hist in queries.durations.items():
        _histogram(into, DURATION, DURATION_SUM, hist, proto)
    _histogram(into, RECEIVE_WAIT, RECEIVE_WAIT_SUM, queries.receive_waits)
    for reason, count in queries.dropped.items():
        into[(DROPPED, reason)] = count
    for proto, count in queries.truncated.items():
        if count:
            into[(TRUNCATED, proto)] = count
    if sources.state.internal_errors:
        into[(INTERNAL_ERRORS,)] = sources.state.internal_errors
    if sources.rate_limits is not None:
        for (category, action), count in sources.rate_limits.actions.items():
            into[(RATE_LIMITED, category, action)] = count
    if sources.transfers is not None:
        for (kind, result), count in sources.transfers.transfers.items():
            into[(TRANSFER, kind, result)] = count
        for name, count in sources.transfers.tsig_errors.items():
            into[(TSIG_ERROR, name)] = count
        if sources.transfers.signed_queries:
            into[(SIGNED_QUERIES,)] = sources.transfers.signed_queries
    if sources.lag is not None:
        _histogram(into, LAG, LAG_SUM, sources.lag)
    return into


def since(now: Mapping[Key, float], before: Mapping[Key, float]) -> dict[Key, float]:
    """What moved from ``before`` to ``now`` (counters only grow, so every value is positive)."""
    return {key: value - before.get(key, 0) for key, value in now.items() if value != before.get(key, 0)}


def responses(delta: Mapping[Key, float]) -> int:
    """How many responses a difference carries (for the per-worker series)."""
    return int(sum(value for key, value in delta.items() if key[0] == RESPONSE))


def merge(delta: Mapping[Key, float], into: Targets) -> None:
    """Add a worker's difference to the parent's counters. Series the parent does not know
    (a histogram bucket past its bounds, a kind from a newer worker) are skipped, not fatal."""
    queries = into.queries
    for key, value in delta.items():
        kind, labels = key[0], key[1:]
        count = int(value)
        if kind == RESPONSE and len(labels) == 3:
            queries.cell((labels[0], labels[1], labels[2]))[0] += count
        elif kind == DURATION and len(labels) == 2 and labels[0] in queries.durations:
            _add_bucket(queries.durations[labels[0]], labels[1], count)
        elif kind == DURATION_SUM and len(labels) == 1 and labels[0] in queries.durations:
            queries.durations[labels[0]].total += value
        elif kind == RECEIVE_WAIT and len(labels) == 1:
            _add_bucket(queries.receive_waits, labels[0], count)
        elif kind == RECEIVE_WAIT_SUM:
            queries.receive_waits.total += value
        elif kind == DROPPED and len(labels) == 1:
            queries.dropped[labels[0]] = queries.dropped.get(labels[0], 0) + count
        elif kind == TRUNCATED and len(labels) == 1:
            queries.truncated[labels[0]] = queries.truncated.get(labels[0], 0) + count
        elif kind == INTERNAL_ERRORS:
            into.state.internal_errors += count
        elif kind == RATE_LIMITED and len(labels) == 2:
            pair = (labels[0], labels[1])
            into.rate_limits[pair] = into.rate_limits.get(pair, 0) + count
        elif kind in (TRANSFER, TSIG_ERROR, SIGNED_QUERIES) and into.transfers is not None:
            _merge_transfer(kind, labels, count, into.transfers)
        elif kind == LAG and len(labels) == 1:
            _add_bucket(into.lag, labels[0], count)
        elif kind == LAG_SUM:
            into.lag.total += value


def _add_bucket(hist: Histogram, index: str, count: int) -> None:
    at = int(index)
    if 0 <= at < len(hist.counts):
        hist.counts[at] += count


def _merge_transfer(kind: str, labels: Key, count: int, stats: xfr.Stats) -> None:
    if kind == TRANSFER and len(labels) == 2:
        pair = (labels[0], labels[1])
        stats.transfers[pair] = stats.transfers.get(pair, 0) + count
    elif kind == TSIG_ERROR and len(labels) == 1:
        stats.tsig_errors[labels[0]] = stats.tsig_errors.get(labels[0], 0) + count
    elif kind == SIGNED_QUERIES:
        stats.signed_queries += count


class DropCounter:
    """Kernel drops over sockets that come and go, as a counter that never goes down (pure).

    A socket's drops are read from /proc while it exists; when it goes (its worker died) its
    last reading is kept, so a restart does not make the total fall.
    """

    def __init__(self) -> None:
        self.retired = 0
        self.last: dict[int, int] = {}

    def update(self, found: Mapping[int, int], live: Iterable[int]) -> int:
        live = set(live)
        for inode in [inode for inode in self.last if inode not in live]:
            self.retired += self.last.pop(inode)
        for inode in live:
            if inode in found:
                self.last[inode] = found[inode]
        return self.retired + sum(self.last.values())
