"""The core assembly: build the zone and every part the settings ask for, bind listeners, start tasks.

Order matters. Listeners and HTTP come up first (answering SERVFAIL until the first complete
node list), and background tasks are created before kopf starts, because kopf cancels tasks
created after it. Running until a signal and shutting down in order is
:mod:`node_dns.serving`. The optional parts (UDP worker processes, probes, hooks, leadership,
debug pages) are built by the modules beside this one, called from :func:`start` where that
order puts them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric

from node_dns import gcpolicy, heap, kube, leader, loop_lag, stalls
from node_dns.answer import responder as responder_mod
from node_dns.answer import stats as answer_stats
from node_dns.app.debug import debug_routes
from node_dns.app.hooks import load_hooks, start_hooks
from node_dns.app.leadership import agree_serials, start_leadership
from node_dns.app.probes import load_probes, start_probes
from node_dns.app.udp import listen_udp, rate_limiter
from node_dns.app.zone_setup import new_zone, node_keys
from node_dns.health import Health
from node_dns.settings import Settings
from node_dns.sinks import http, metrics, process_readings, transfers
from node_dns.sinks import probes as probe_metrics
from node_dns.sinks import workers as worker_metrics
from node_dns.sources import lister, nodes
from node_dns.sources import services as service_source
from node_dns.sources.probes import prober as prober_mod
from node_dns.sources.probes import source as probe_source
from node_dns.transports import sockets, tcp
from node_dns.transports import state as transport_state
from node_dns.transports.workers import pool as worker_pool
from node_dns.zone import writer

if TYPE_CHECKING:  # jinja2 is loaded only when hooks are configured
    from node_dns.sinks.hooks import Hooks

log = logging.getLogger("node_dns")


@dataclass
class Server:
    """Everything a running node-dns holds; built by :func:`start`, stopped by
    :func:`node_dns.serving.stop`."""

    settings: Settings
    zone: writer.Zone
    responder: responder_mod.Responder
    source: nodes.NodeSource
    transport_state: transport_state.TransportState
    health: Health
    loader: kube.CredentialsLoader
    client: kube.Client
    dns_port: int = 0
    http_port: int = 0
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _http: Any = None
    services: service_source.ServiceSource | None = None
    leadership: leader.Leadership | None = None
    hooks: Hooks | None = None
    """Render hooks (``node_dns.sinks.hooks.Hooks``), when a hooks file is set."""
    probes: probe_source.ProbeSource | None = None
    """Reachability probes, when a probe is configured."""
    transfers: transfers.Parts | None = None
    workers: worker_pool.Pool | None = None
    """UDP worker processes (--workers), when there are any."""
    gc_pauses: gcpolicy.Pauses | None = None
    """Times collections while installed in ``gc.callbacks``; removed by ``serving.stop``."""
    stall_watch: stalls.Running | None = None
    """What held the loop (a watchdog thread, stopped by ``serving.stop``); None when off."""

    def extra_metrics(self) -> Iterator[Metric]:
        if self.leadership is not None:
            status, events = self.leadership.elector.status, self.leadership.events
            yield from metrics.leader_families(
                status.is_leader, status.gains, events.stats.results if events is not None else None
            )
        if self.hooks is not None:
            yield from self.hooks.metrics()
        if self.probes is not None:
            yield from probe_metrics.families(self.probes, prober_mod.LATENCY_BUCKETS)
        if self.transfers is not None:
            yield from transfers.families(self.transfers)
        if self.workers is not None:
            pool = self.workers
            ready = [pool.link_ready(link, pool.current()) for link in pool.links]
            yield from worker_metrics.families(pool, pool.links, ready, pool.targets.lag)


async def start(
    settings: Settings, *, trimmer: Callable[[], Callable[[], int] | None] = heap.trimmer
) -> Server:
    """Bind every listener and start the background tasks; kopf is started by
    :func:`node_dns.serving.serve`.

    ``trimmer`` finds the allocator's trim function (None where there is none: musl, macOS).
    """
    gcpolicy.tune()
    zone = new_zone(settings)
    responder = responder_mod.Responder(
        zone.snapshot,
        edns_udp_size=settings.edns_udp_size,
        max_answers=settings.max_answers,
        query_stats=answer_stats.QueryStats(metrics.DURATION_BUCKETS, metrics.RECEIVE_WAIT_BUCKETS),
    )
    zone.subscribe(responder.publish)
    tstate = transport_state.TransportState(
        idle_timeout=settings.tcp_idle_timeout,
        max_connections=settings.tcp_max_connections,
        max_queries=settings.tcp_max_queries,
    )
    hooks = load_hooks(settings, zone)
    source = nodes.NodeSource(zone, node_keys(settings, labels=hooks is not None))
    loader = kube.CredentialsLoader(settings.kubeconfig)
    await loader.load()
    health = Health(synced=lambda: zone.synced, serial=lambda: zone.snapshot.serial, source=source.stats)
    server = Server(settings, zone, responder, source, tstate, health, loader, kube.Client(loader))
    health.tasks = server.tasks
    server.hooks = hooks
    server.probes = load_probes(settings, zone)
    health.probes = server.probes
    gate = None
    if settings.transfers_enabled:
        server.transfers = transfers.build(settings, lambda: zone.snapshot)
        zone.subscribe(transfers.journal_feed(server.transfers.journal))
        if server.transfers.notifier is not None:
            zone.subscribe(server.transfers.notifier.serial_moved)
        gate = server.transfers.gate

    limiter = rate_limiter(settings)
    bound = await listen_udp(server, gate, limiter)
    server._udp = bound.transport
    port, drops = bound.port, bound.drops
    process = process_readings.ProcessReadings()
    lag = loop_lag.LagMonitor(metrics.LAG_BUCKETS)
    gc_pauses = gcpolicy.Pauses(metrics.LAG_BUCKETS)
    server.stall_watch = stalls.start(lag, settings.stall_threshold, gc_time=lambda: gc_pauses.spent)
    watch = server.stall_watch.watch if server.stall_watch is not None else None
    server._tcp = await tcp.listen(settings.dns_address, port, responder, tstate, gate)
    server.dns_port = port

    registry = metrics.registry(
        metrics.Inputs(
            queries=responder.stats,
            source=source.stats,
            zone=zone,
            serial=lambda: zone.snapshot.serial,
            areas=lambda: zone.area_counts,
            tcp_connections=lambda: len(tstate.connections),
            tcp_refused=lambda: tstate.refused_connections,
            internal_errors=lambda: tstate.internal_errors,
            rate_limited=bound.rate_limited,
            extra=server.extra_metrics,
            loop_lag=lag,
            udp_kernel_drops=drops,
            udp_receive_buffer=bound.receive_buffer,
            udp_path=bound.path,
            gc_pauses=gc_pauses.histograms,
            stalls=watch,
        ),
        process=process,
    )
    server._http, server.http_port = await http.start(
        settings.http_address,
        settings.http_port,
        live=health.live,
        ready=health.ready,
        registry=registry,
        extra_routes=debug_routes(settings, zone, watch),
        before_metrics=lambda: _read_off_loop(drops, process),
    )
    log.info(
        "serving zone %s on %s port %d (udp%s+tcp), http on %s:%d; SERVFAIL until nodes are listed",
        settings.zone,
        settings.dns_address,
        port,
        f" in {settings.workers} worker processes" if settings.workers else "",
        settings.http_address,
        server.http_port,
    )

    service_lister = None
    if settings.services:
        server.services = service_source.ServiceSource(
            zone, settings.service_annotation, source.stats.invalid_entries
        )
        service_lister = service_source.ServiceLister(
            server.services, server.client, settings.service_namespaces
        )
    node_lister = lister.Lister(
        source,
        server.client,
        resync_interval=settings.resync_interval,
        service_lister=service_lister,
        node_selector=settings.node_selector,
        on_synced=gcpolicy.freeze,
    )
    source.on_replayed = gcpolicy.freeze  # again once kopf's own listing is in: its state is start-up too
    server.tasks["lister"] = asyncio.create_task(node_lister.run(), name="node-dns:lister")
    server.tasks["sweeper"] = asyncio.create_task(_sweep(tstate), name="node-dns:tcp-idle-sweeper")
    server.tasks["loop-lag"] = asyncio.create_task(lag.run(), name="node-dns:loop-lag")
    trim = trimmer()
    if trim is not None:
        server.tasks["heap"] = asyncio.create_task(heap.trim_periodically(trim), name="node-dns:heap-trim")
    else:
        log.debug("malloc_trim is not available: freed heap memory stays with the allocator")
    notifier = server.transfers.notifier if server.transfers is not None else None
    if settings.leader_elect:
        server.leadership = start_leadership(settings, server.client, source)
        health.leadership = server.leadership
        if notifier is not None:  # one replica notifies: the one that leads
            server.leadership.register("notify", notifier.run)
        health.serial_agreed = agree_serials(zone, server.leadership.elector)
    if hooks is not None:
        start_hooks(server, hooks)
    if server.probes is not None:
        start_probes(server, server.probes)
    if server.leadership is not None:
        server.tasks.update(server.leadership.start())
    elif notifier is not None:
        server.tasks["notify"] = asyncio.create_task(notifier.run(), name="node-dns:notify")
    gc_pauses.install()
    server.gc_pauses = gc_pauses
    return server


async def _read_off_loop(
    drops: sockets.OnLoop | sockets.OffLoop, process: process_readings.ProcessReadings
) -> None:
    """Before a scrape: the readings that make system calls (the drops of a held socket are one
    ``getsockopt`` on the loop; the rest in a worker thread)."""
    await drops.refresh()
    await process.refresh()


async def _sweep(tstate: transport_state.TransportState) -> None:
    while True:
        await asyncio.sleep(1.0)
        tstate.sweep(time.monotonic())
