"""The node agent's Prometheus metrics, read from its plain counters at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_dns.version import __version__


@dataclass
class AgentInputs:
    """What the collector reads; wired by the agent command."""

    published: Callable[[], Mapping[str, int]]
    """Addresses in the annotation now, by family (ipv4, ipv6)."""
    capped: Callable[[], int]
    patches: Mapping[str, int]
    reads: Mapping[str, int]
    netlink_events: Mapping[str, int]
    netlink_overruns: Callable[[], int]
    in_sync: Callable[[], bool]
    last_change: Callable[[], float]


class AgentCollector(Collector):
    def __init__(self, inputs: AgentInputs) -> None:
        self._inputs = inputs

    def collect(self) -> Iterator[Metric]:
        inputs = self._inputs
        info = GaugeMetricFamily("node_dns_agent_build_info", "Version of the agent.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        published = GaugeMetricFamily(
            "node_dns_agent_addresses",
            "Addresses the agent publishes in its annotation now, by family.",
            labels=["family"],
        )
        counts = inputs.published()
        for family in ("ipv4", "ipv6"):
            published.add_metric([family], counts.get(family, 0))
        yield published
        yield GaugeMetricFamily(
            "node_dns_agent_addresses_capped",
            "Qualifying addresses left out by --agent-max-addresses.",
            value=inputs.capped(),
        )
        patches = CounterMetricFamily(
            "node_dns_agent_patches", "Patches of the node annotation, by result.", labels=["result"]
        )
        for result, count in sorted(inputs.patches.items()):
            patches.add_metric([result], count)
        yield patches
        reads = CounterMetricFamily(
            "node_dns_agent_node_reads", "Reads of the agent's own Node, by result.", labels=["result"]
        )
        for result, count in sorted(inputs.reads.items()):
            reads.add_metric([result], count)
        yield reads
        events = CounterMetricFamily(
            "node_dns_agent_netlink_events",
            "Netlink notifications received, by message type.",
            labels=["type"],
        )
        for kind, count in sorted(inputs.netlink_events.items()):
            events.add_metric([kind], count)
        yield events
        yield CounterMetricFamily(
            "node_dns_agent_netlink_overruns",
            "Times the kernel dropped notifications (event socket full); each made the agent read "
            "every address again.",
            value=inputs.netlink_overruns(),
        )
        yield GaugeMetricFamily(
            "node_dns_agent_in_sync",
            "1 when the last attempt to bring the annotation up to date succeeded.",
            value=1 if inputs.in_sync() else 0,
        )
        yield GaugeMetricFamily(
            "node_dns_agent_last_change_timestamp_seconds",
            "Unix time the published address set last changed (0: not since start).",
            value=inputs.last_change(),
        )


def agent_registry(inputs: AgentInputs) -> CollectorRegistry:
    """A fresh registry (never the global one) with the agent's metrics and process metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(AgentCollector(inputs))
    ProcessCollector(registry=registry)
    return registry
