"""Prometheus metrics: one collector reads the plain counters at scrape time.

Names follow ``node_dns_<subsystem>_<name>_<unit>`` (CoreDNS' request/response view for DNS).
The registry is injected, never global, so tests and several servers in one process work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from node_dns.answer import stats as answer_stats
from node_dns.version import __version__

WATCH_EVENT_TYPES = ("LISTED", "ADDED", "MODIFIED", "DELETED")
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
"""Bounds of the request duration histogram, seconds (as CoreDNS uses: fine at the low end).
The query path counts into them: give them to ``answer.stats.QueryStats``."""
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Bounds of the event-loop lag histogram, seconds: give them to ``loop_lag.LagMonitor``.
Half a millisecond is the loop's own timer jitter; 5 ms is the stall budget while the zone churns."""
RECEIVE_WAIT_BUCKETS = LAG_BUCKETS
"""Bounds of the UDP receive wait histogram, seconds (the lag's, so the two read side by side):
give them to ``answer.stats.QueryStats``."""


class SourceStatsView(Protocol):
    events: dict[str, int]
    invalid_entries: dict[str, int]
    last_event: float
    last_list: float
    last_contact: float
    lists: dict[str, int]
    reachable: bool


class LagView(Protocol):
    histogram: answer_stats.Histogram
    longest: float


class CulpritView(Protocol):
    stalls: int
    seconds: float
    waited: float
    cpu: float


class StallView(Protocol):
    @property
    def culprits(self) -> Mapping[str, CulpritView]: ...

    @property
    def own_lag(self) -> answer_stats.Histogram: ...

    @property
    def longest_own(self) -> float: ...


class ZoneView(Protocol):
    @property
    def synced(self) -> bool: ...

    @property
    def failed_open(self) -> frozenset[str]: ...

    @property
    def services_failed_open(self) -> frozenset[tuple[str, str]]: ...

    @property
    def services_served(self) -> int: ...

    def node_states(self) -> Mapping[str, int]: ...


@dataclass
class Inputs:
    """Everything the collector reads; wired by the app."""

    queries: answer_stats.QueryStats
    source: SourceStatsView
    zone: ZoneView
    serial: Callable[[], int]
    areas: Callable[[], Mapping[str, tuple[int, int]]]
    tcp_connections: Callable[[], int]
    tcp_refused: Callable[[], int]
    internal_errors: Callable[[], int]
    extra: Callable[[], Iterator[Metric]] | None = None
    rate_limited: Callable[[], Mapping[tuple[str, str], int]] | None = None
    """Response rate limiting: (category, action) -> count; None while RRL is off."""
    loop_lag: LagView | None = None
    udp_kernel_drops: Callable[[], int | None] | None = None
    """Datagrams the kernel dropped on the DNS UDP sockets (None: /proc does not say)."""
    udp_receive_buffer: Callable[[], int] | None = None
    """Receive buffer of the DNS UDP socket, bytes, as granted by the kernel."""
    udp_path: str | None = None
    """Which code answers UDP: "c" (compiled batch), "python" (pure-Python batch) or "asyncio"."""
    gc_pauses: Mapping[int, answer_stats.Histogram] | None = None
    """Garbage collections by generation: how long each held the loop."""
    stalls: StallView | None = None
    """Stalls by culprit and the lag net of run-queue waits (None while the stall watch is off)."""


class NodeDnsCollector(Collector):
    def __init__(self, inputs: Inputs) -> None:
        self._in = inputs

    def collect(self) -> Iterator[Metric]:
        q = self._in.queries
        by_request: dict[tuple[str, ...], int] = {}
        by_rcode: dict[tuple[str, ...], int] = {}
        for (proto, qtype, rcode), count in list(q.responses.items()):
            by_request[proto, qtype] = by_request.get((proto, qtype), 0) + count
            by_rcode[proto, rcode] = by_rcode.get((proto, rcode), 0) + count
        yield _counter_by(
            "node_dns_dns_requests",
            "DNS queries answered or dropped, by protocol and type.",
            ("proto", "type"),
            by_request,
        )
        yield _counter_by(
            "node_dns_dns_responses",
            "DNS responses built, by protocol and response code (UDP ones rate limiting withheld included).",
            ("proto", "rcode"),
            by_rcode,
        )

        duration = HistogramMetricFamily(
            "node_dns_dns_request_duration_seconds",
            "Time from receiving a query to handing its reply to the socket.",
            labels=["proto"],
        )
        for proto, hist in q.durations.items():
            duration.add_metric([proto], _buckets(hist), hist.total)
        yield duration
        yield from self._receive_path()

        truncated = CounterMetricFamily(
            "node_dns_dns_truncated_responses", "Responses sent with TC set.", labels=["proto"]
        )
        for proto, count in q.truncated.items():
            truncated.add_metric([proto], count)
        yield truncated
        yield _counter_by("node_dns_dns_dropped", "Packets not answered, by reason.", "reason", q.dropped)
        yield _gauge("node_dns_dns_tcp_connections", "Open TCP connections.", self._in.tcp_connections())
        yield CounterMetricFamily(
            "node_dns_dns_tcp_refused_connections",
            "TCP connections closed at once (cap reached).",
            value=self._in.tcp_refused(),
        )
        if self._in.rate_limited is not None:
            limited = CounterMetricFamily(
                "node_dns_dns_rate_limited_responses",
                "UDP answers withheld by response rate limiting: dropped, or slipped (sent with TC=1).",
                labels=["category", "action"],
            )
            for (category, action), count in sorted(self._in.rate_limited().items()):
                limited.add_metric([category, action], count)
            yield limited
        yield CounterMetricFamily(
            "node_dns_dns_internal_errors",
            "Queries that hit a bug in the query path.",
            value=self._in.internal_errors(),
        )

        nodes = GaugeMetricFamily("node_dns_nodes", "Nodes known, by state.", labels=["state"])
        for state_name, count in sorted(self._in.zone.node_states().items()):
            nodes.add_metric([state_name], count)
        yield nodes
        areas = self._in.areas()
        yield _gauge("node_dns_areas", "Areas served (listed by at least one node).", len(areas))
        healthy = GaugeMetricFamily("node_dns_area_healthy_nodes", "Healthy nodes per area.", labels=["area"])
        members = GaugeMetricFamily("node_dns_area_nodes", "Nodes listing each area.", labels=["area"])
        for area, (ok, total) in sorted(areas.items()):
            healthy.add_metric([area], ok)
            members.add_metric([area], total)
        yield healthy
        yield members
        failed = GaugeMetricFamily(
            "node_dns_area_failed_open",
            "1 while an area is below its healthy minimum and serves every known address.",
            labels=["area"],
        )
        for area in sorted(self._in.zone.failed_open):
            failed.add_metric([area], 1)
        yield failed
        yield _gauge(
            "node_dns_services",
            "Services served (opted in by annotation, with a name in the zone).",
            self._in.zone.services_served,
        )
        failed_services = GaugeMetricFamily(
            "node_dns_service_failed_open",
            "1 while a Service has too few healthy endpoint nodes and serves every known one.",
            labels=["namespace", "service"],
        )
        for namespace, service in sorted(self._in.zone.services_failed_open):
            failed_services.add_metric([namespace, service], 1)
        yield failed_services
        yield _gauge("node_dns_zone_serial", "SOA serial of the zone being served.", self._in.serial())
        yield _gauge(
            "node_dns_zone_synced", "1 once a complete node list has been loaded.", int(self._in.zone.synced)
        )

        src = self._in.source
        # Known types start at 0 so alerts and rate() see a series before the first event.
        yield _counter_by(
            "node_dns_watch_events",
            "Node watch events, by type.",
            "type",
            {**dict.fromkeys(WATCH_EVENT_TYPES, 0), **src.events},
        )
        yield _gauge(
            "node_dns_watch_last_event_timestamp_seconds",
            "Unix time of the last node watch event.",
            src.last_event,
        )
        yield _counter_by("node_dns_node_lists", "Full node lists taken, by result.", "result", src.lists)
        yield _gauge(
            "node_dns_apiserver_reachable",
            "1 when the last call to the apiserver succeeded.",
            int(src.reachable),
        )
        yield _gauge(
            "node_dns_zone_staleness_seconds",
            "Seconds since the apiserver last confirmed the zone's view (list, probe or event).",
            time.time() - src.last_contact if src.last_contact else 0.0,
        )
        yield _counter_by(
            "node_dns_invalid_annotation_entries",
            "Annotation entries skipped as invalid, counted when a node's annotation changes.",
            "annotation",
            src.invalid_entries,
        )
        info = GaugeMetricFamily("node_dns_build_info", "Version of node-dns.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        if self._in.extra is not None:
            yield from self._in.extra()

    def _receive_path(self) -> Iterator[Metric]:
        """What the receive path suffers from: kernel drops, its buffer, and stalls of the loop."""
        if self._in.udp_kernel_drops is not None:
            drops = self._in.udp_kernel_drops()
            if drops is not None:
                yield CounterMetricFamily(
                    "node_dns_dns_udp_kernel_drops",
                    "Queries the kernel dropped on the DNS UDP sockets before node-dns read them "
                    "(receive buffer full), from /proc/net/udp.",
                    value=drops,
                )
        if self._in.udp_path is not None:
            path = GaugeMetricFamily(
                "node_dns_dns_udp_path_info",
                "Which code answers UDP queries (always 1): c (the compiled batch), python (the "
                "pure-Python batch: no compiler at install, or NODE_DNS_UDP_PURE_PYTHON) or asyncio "
                "(response rate limiting on, or no recvmmsg).",
                labels=["path"],
            )
            path.add_metric([self._in.udp_path], 1)
            yield path
        waits = self._in.queries.receive_waits
        family = HistogramMetricFamily(
            "node_dns_dns_udp_receive_wait_seconds",
            "How long queries waited in the UDP socket before node-dns read them: per read (a "
            "recvmmsg batch; one datagram with response rate limiting), the oldest datagram's time "
            "from the kernel's receive stamp to the read.",
        )
        family.add_metric([], _buckets(waits), waits.total)
        yield family
        if self._in.udp_receive_buffer is not None:
            yield _gauge(
                "node_dns_dns_udp_receive_buffer_bytes",
                "Receive buffer of the DNS UDP socket as the kernel granted it.",
                self._in.udp_receive_buffer(),
            )
        lag = self._in.loop_lag
        if lag is not None:
            family = HistogramMetricFamily(
                "node_dns_event_loop_lag_seconds",
                "How late the event loop ran a timer that was due: each observation is a stall "
                "every query waiting then saw.",
            )
            family.add_metric([], _buckets(lag.histogram), lag.histogram.total)
            yield family
            yield _gauge(
                "node_dns_event_loop_lag_max_seconds",
                "The longest event-loop lag seen since the process started.",
                lag.longest,
            )
        if self._in.gc_pauses is not None:
            pauses = HistogramMetricFamily(
                "node_dns_gc_pause_seconds",
                "Garbage collections by generation and the CPU time each took (the loop waits that long).",
                labels=["generation"],
            )
            for generation, hist in sorted(self._in.gc_pauses.items()):
                pauses.add_metric([str(generation)], _buckets(hist), hist.total)
            yield pauses
        if self._in.stalls is not None:
            yield from stall_families(self._in.stalls)


def stall_families(stalls: StallView) -> Iterator[Metric]:
    """What held the event loop: stalls by culprit, and the lag the machine's other load did not cause."""
    own = HistogramMetricFamily(
        "node_dns_event_loop_own_lag_seconds",
        "Event-loop lag less the time the loop thread waited for a CPU while it was late: "
        "the part of the lag node-dns itself caused.",
    )
    own.add_metric([], _buckets(stalls.own_lag), stalls.own_lag.total)
    yield own
    yield _gauge(
        "node_dns_event_loop_own_lag_max_seconds",
        "The longest event-loop lag less run-queue wait since the process started.",
        stalls.longest_own,
    )
    culprits = stalls.culprits
    yield _counter_by(
        "node_dns_event_loop_stalls",
        "Event-loop stalls longer than --stall-threshold by what the loop was running "
        "((run queue): waiting for a CPU; (garbage collection); else origin > site).",
        "culprit",
        {name: c.stalls for name, c in culprits.items()},
    )
    seconds = CounterMetricFamily(
        "node_dns_event_loop_stall_seconds",
        "Lag summed over those stalls, by culprit.",
        labels=["culprit"],
    )
    waited = CounterMetricFamily(
        "node_dns_event_loop_stall_run_queue_seconds",
        "Of node_dns_event_loop_stall_seconds: time the loop thread waited for a CPU, by culprit.",
        labels=["culprit"],
    )
    cpu = CounterMetricFamily(
        "node_dns_event_loop_stall_cpu_seconds",
        "Of node_dns_event_loop_stall_seconds: CPU time the loop thread ran, by culprit.",
        labels=["culprit"],
    )
    for name, culprit in sorted(culprits.items()):
        seconds.add_metric([name], culprit.seconds)
        waited.add_metric([name], culprit.waited)
        cpu.add_metric([name], culprit.cpu)
    yield seconds
    yield waited
    yield cpu


def _buckets(hist: answer_stats.Histogram) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs of a plain histogram, +Inf last."""
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return buckets


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter_by(
    name: str,
    doc: str,
    labels: str | tuple[str, ...],
    counts: Mapping[str, int] | Mapping[tuple[str, ...], int],
) -> CounterMetricFamily:
    """A counter family with one series per key of ``counts`` (a label value, or a tuple of them)."""
    family = CounterMetricFamily(name, doc, labels=[labels] if isinstance(labels, str) else list(labels))
    for key, count in sorted(counts.items()):
        family.add_metric([key] if isinstance(key, str) else list(key), count)
    return family


def leader_families(
    is_leader: bool, transitions: int, event_results: Mapping[str, int] | None
) -> Iterator[Metric]:
    """Leader election (for ``Inputs.extra``); ``event_results`` is None while Events are off."""
    yield _gauge(
        "node_dns_leader_is_leader", "1 while this replica holds the leader Lease, else 0.", int(is_leader)
    )
    yield CounterMetricFamily(
        "node_dns_leader_transitions", "Times this process became leader.", value=transitions
    )
    if event_results is not None:
        yield _counter_by(
            "node_dns_leader_events",
            "Invalid-annotation Events by result: created, exists (recorded before), error.",
            "result",
            event_results,
        )


def registry(inputs: Inputs, process: Collector | None = None) -> CollectorRegistry:
    """Our collector, then the process (``process``: ``ProcessCollector`` when not given) and
    platform ones."""
    reg = CollectorRegistry()
    reg.register(NodeDnsCollector(inputs))
    reg.register(process if process is not None else ProcessCollector(registry=None))
    PlatformCollector(registry=reg)
    return reg
