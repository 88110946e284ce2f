"""Metric families of ``--workers``: each worker's share, its restarts, and its event loop.

The query counters themselves (responses by type and code, durations, drops, kernel drops)
are the usual families: workers' counts are added into them, so dashboards and alerts read
the same names whatever the number of workers. These families say how the load splits and
whether the workers keep up; a per-worker label is bounded by ``--workers``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from node_dns.answer.stats import Histogram


class WorkerView(Protocol):
    index: int
    restarts: int
    responses: int
    lag_longest: float


class PoolView(Protocol):
    """What node_dns.transports.workers.pool.Pool exposes."""

    count: int

    @property
    def lag_longest(self) -> float: ...


def families(
    pool: PoolView, links: Sequence[WorkerView], ready: Sequence[bool], lag: Histogram
) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "node_dns_workers", "Worker processes answering UDP (--workers).", value=pool.count
    )
    up = GaugeMetricFamily(
        "node_dns_worker_ready",
        "1 while the worker listens and has applied the current snapshot.",
        labels=["worker"],
    )
    responses = CounterMetricFamily(
        "node_dns_worker_responses",
        "UDP responses each worker built (its share of node_dns_dns_responses_total), as last reported.",
        labels=["worker"],
    )
    restarts = CounterMetricFamily(
        "node_dns_worker_restarts", "Times a worker died and was started again.", labels=["worker"]
    )
    for link, is_ready in zip(links, ready, strict=True):
        label = [str(link.index)]
        up.add_metric(label, int(is_ready))
        responses.add_metric(label, link.responses)
        restarts.add_metric(label, link.restarts)
    yield up
    yield responses
    yield restarts
    family = HistogramMetricFamily(
        "node_dns_worker_event_loop_lag_seconds",
        "How late the workers' event loops ran a timer that was due (all workers together).",
    )
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*lag.bounds, float("inf")), lag.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    family.add_metric([], buckets, lag.total)
    yield family
    yield GaugeMetricFamily(
        "node_dns_worker_event_loop_lag_max_seconds",
        "The longest event-loop lag any worker reported since the parent started.",
        value=pool.lag_longest,
    )
