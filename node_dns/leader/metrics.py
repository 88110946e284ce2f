"""Leader election metrics, for ``metrics.Inputs.extra``: families built at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from node_dns.leader.elector import Status
from node_dns.leader.events import EventStats


def families(status: Status, events: EventStats | None = None) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "node_dns_leader_is_leader",
        "1 while this replica holds the leader Lease, else 0.",
        value=int(status.is_leader),
    )
    yield CounterMetricFamily(
        "node_dns_leader_transitions",
        "Times this process became leader.",
        value=status.gains,
    )
    if events is not None:
        recorded = CounterMetricFamily(
            "node_dns_leader_events",
            "Invalid-annotation Events by result: created, exists (recorded before), error.",
            labels=["result"],
        )
        for result, count in sorted(events.results.items()):
            recorded.add_metric([result], count)
        yield recorded
