"""Metric families of the reachability probes, read at scrape time.

Per area, never per node or address (cardinality): results and latency of the probes this
replica ran, healthy nodes the probes take out, and whether verdicts are available (a replica
falling back to Ready-only shows 0). The self-fault state is the one the answering verdicts
carry, so followers show the leader's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

RESULTS = ("success", "failure")
EVENT_RESULTS = ("created", "exists", "error", "dropped")


class AreaProbeStats(Protocol):
    results: dict[str, int]
    buckets: list[int]
    latency_sum: float


class ProbeView(Protocol):
    """What the probe source exposes (node_dns.sources.probes.source.ProbeSource and its prober)."""

    def area_stats(self) -> Mapping[str, AreaProbeStats]: ...

    def excluded(self) -> Mapping[str, int]: ...

    def state(self) -> Mapping[str, float]:
        """targets, probing (1 while this replica probes), self_fault, self_faults (count),
        verdicts_available, skipped (count), flips_up, flips_down (counts), events_<result>."""
        ...


def families(view: ProbeView, buckets: tuple[float, ...]) -> Iterator[Metric]:
    state = view.state()
    results = CounterMetricFamily(
        "node_dns_probe_results",
        "Probes run by this replica, per area and result.",
        labels=["area", "result"],
    )
    latency = HistogramMetricFamily(
        "node_dns_probe_duration_seconds", "Time probes took (failures included), per area.", labels=["area"]
    )
    for area, stats in sorted(view.area_stats().items()):
        for result in RESULTS:
            results.add_metric([area, result], stats.results.get(result, 0))
        cumulative, running = [], 0
        for bound, count in zip((*buckets, float("inf")), stats.buckets, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        latency.add_metric([area], cumulative, stats.latency_sum)
    excluded = GaugeMetricFamily(
        "node_dns_probe_excluded_nodes",
        "Healthy nodes left with no reachable address in an area: taken out by probes.",
        labels=["area"],
    )
    for area, count in sorted(view.excluded().items()):
        excluded.add_metric([area], count)
    yield from (results, latency, excluded)
    yield GaugeMetricFamily(
        "node_dns_probe_targets", "Addresses x probes this replica follows.", value=state.get("targets", 0)
    )
    yield GaugeMetricFamily(
        "node_dns_probe_active",
        "1 while this replica runs the probes (the leader, or every replica without leader election).",
        value=state.get("probing", 0),
    )
    yield GaugeMetricFamily(
        "node_dns_probe_self_fault",
        "1 while so many probes fail at once that our own network is assumed at fault (last verdicts kept).",
        value=state.get("self_fault", 0),
    )
    yield CounterMetricFamily(
        "node_dns_probe_self_faults",
        "Times this replica's prober entered the self-fault state.",
        value=state.get("self_faults", 0),
    )
    yield GaugeMetricFamily(
        "node_dns_probe_verdicts_available",
        "1 while answers use probe verdicts; 0 while this replica falls back to Ready-only.",
        value=state.get("verdicts_available", 0),
    )
    yield CounterMetricFamily(
        "node_dns_probe_skipped",
        "Probe turns skipped because the previous probe of the address had not finished.",
        value=state.get("skipped", 0),
    )
    flips = CounterMetricFamily(
        "node_dns_probe_verdict_changes",
        "Verdict flips decided by this replica's prober.",
        labels=["verdict"],
    )
    flips.add_metric(["reachable"], state.get("flips_up", 0))
    flips.add_metric(["unreachable"], state.get("flips_down", 0))
    yield flips
    events = CounterMetricFamily(
        "node_dns_probe_events",
        "Verdict flips recorded as Events on the Node by this replica while leading, by result.",
        labels=["result"],
    )
    for result in EVENT_RESULTS:
        events.add_metric([result], state.get(f"events_{result}", 0))
    yield events
