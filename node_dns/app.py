"""Assembly: build the zone and every part the settings ask for, bind listeners, start tasks.

Order matters. Listeners and HTTP come up first (answering SERVFAIL until the first complete
node list), and background tasks are created before kopf starts, because kopf cancels tasks
created after it. Running until a signal and shutting down in order is
:mod:`node_dns.serving`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric

from node_dns import gcpolicy, heap, kube, leader, loop_lag, stalls
from node_dns.answer import responder as responder_mod
from node_dns.answer import stats as answer_stats
from node_dns.answer import xfr
from node_dns.health import Health
from node_dns.leader import flips
from node_dns.settings import Settings, probe_spec
from node_dns.sinks import http, metrics, process_readings, transfers
from node_dns.sinks import probes as probe_metrics
from node_dns.sinks import workers as worker_metrics
from node_dns.sources import lister, nodes
from node_dns.sources import services as service_source
from node_dns.sources.probes import prober as prober_mod
from node_dns.sources.probes import shared as probe_shared
from node_dns.sources.probes import source as probe_source
from node_dns.transports import ratelimit, sockets, tcp, udp
from node_dns.transports import state as transport_state
from node_dns.transports.workers import build as worker_build
from node_dns.transports.workers import pool as worker_pool
from node_dns.zone import config as zone_config
from node_dns.zone import dump, explain, serial, writer

if TYPE_CHECKING:  # jinja2 is loaded only when hooks are configured
    from node_dns.sinks.hooks import Hooks

log = logging.getLogger("node_dns")


def new_zone(settings: Settings) -> writer.Zone:
    """The zone with what it needs from the settings: names, TTLs, static records, policy."""
    return writer.Zone(zone_config.zone_config(settings), zone_config.policy(settings))


def rate_limits(settings: Settings) -> dict[str, Any] | None:
    """Response rate limiting for UDP (RateLimiter's arguments), or None (the default) when no
    rate is set."""
    nx = settings.rrl_nxdomains_per_second
    if settings.rrl_responses_per_second <= 0 and not nx:
        return None
    return {
        "responses_per_second": settings.rrl_responses_per_second,
        "nxdomains_per_second": nx,
        "slip": settings.rrl_slip,
        "window": settings.rrl_window,
        "ipv4_prefix": settings.rrl_ipv4_prefix,
        "ipv6_prefix": settings.rrl_ipv6_prefix,
        "exempt": list(settings.rrl_exempt),
    }


def rate_limiter(settings: Settings) -> ratelimit.RateLimiter | None:
    options = rate_limits(settings)
    return ratelimit.RateLimiter(**options) if options is not None else None


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
    if settings.workers:
        pool = start_workers(server, gate)
        port = pool.port
        drops: sockets.OnLoop | sockets.OffLoop = sockets.OffLoop(pool.kernel_drops)
        udp_buffer: Callable[[], int] = lambda: pool.granted_buffer  # noqa: E731
        limited = (lambda: pool.targets.rate_limits) if limiter is not None else None
        udp_path = udp.expected_path(limiter)
    else:
        server._udp = await udp.listen(
            settings.dns_address,
            settings.dns_port,
            responder,
            tstate,
            limiter,
            gate=gate,
            receive_buffer=settings.udp_receive_buffer,
        )
        port = server._udp.get_extra_info("sockname")[1]
        udp_socket = server._udp.get_extra_info("socket")
        drops = sockets.held_socket_drops(udp_socket)
        udp_buffer = lambda: sockets.granted(udp_socket)  # noqa: E731
        limited = (lambda: limiter.stats.actions) if limiter is not None else None
        udp_path = udp.path(server._udp)
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
            rate_limited=limited,
            extra=server.extra_metrics,
            loop_lag=lag,
            udp_kernel_drops=drops,
            udp_receive_buffer=udp_buffer,
            udp_path=udp_path,
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


def start_workers(server: Server, gate: xfr.Transfers | None) -> worker_pool.Pool:
    """UDP in worker processes: bind the first socket (a port in use fails here), start them
    (tasks created before kopf starts) and stream every publication to them."""
    zone = server.zone
    pool = worker_build.from_settings(
        server.settings,
        lambda: zone.snapshot,
        server.responder.stats,
        server.transport_state,
        gate,
        rrl=rate_limits(server.settings),
        duration_bounds=metrics.DURATION_BUCKETS,
        lag_bounds=metrics.LAG_BUCKETS,
        receive_wait_bounds=metrics.RECEIVE_WAIT_BUCKETS,
    )
    pool.bind()
    zone.subscribe(pool.publish)
    server.workers = server.health.workers = pool
    server.tasks.update(pool.start())
    return pool


def load_probes(settings: Settings, zone: writer.Zone) -> probe_source.ProbeSource | None:
    """Reachability probes when a probe or a probe file is set."""
    if not settings.probes_enabled:
        return None
    plan = probe_spec.plan(settings)  # checked at startup already: cannot fail here
    prober = prober_mod.Prober(
        concurrency=settings.probe_concurrency, self_fault_share=settings.probe_self_fault_share
    )
    return probe_source.ProbeSource(zone, plan, prober, identity=settings.leader_identity or "")


def start_probes(server: Server, probes: probe_source.ProbeSource) -> None:
    """Without leader election this replica probes and answers from its own verdicts; with it,
    the leader probes and publishes, and every replica answers from what was published."""
    settings = server.settings
    if server.leadership is None:
        probes.probing = True
        server.tasks["prober"] = asyncio.create_task(probes.prober.run(), name="node-dns:prober")
        server.tasks["probe-verdicts"] = asyncio.create_task(
            probes.run_local(), name="node-dns:probe-verdicts"
        )
    else:
        namespace = settings.leader_lease_namespace or "default"
        name = settings.probe_verdicts_name
        publisher = probe_shared.Publisher(server.client, namespace, name, probes)
        server.leadership.register("probes", publisher.run)
        reader = probe_shared.Reader(
            server.client, namespace, name, probes, max_age=settings.probe_verdicts_max_age
        )
        server.tasks["probe-verdicts"] = asyncio.create_task(reader.run(), name="node-dns:probe-verdicts")
        if settings.leader_record_events:
            events = flips.FlipEvents(server.client, settings.leader_identity or "")
            probes.flip_listeners.append(events.add)
            probes.event_results = events.stats.results
            server.leadership.register("probe-events", events.run)
    log.info(
        "reachability probes (%s): %s",
        "verdicts local" if server.leadership is None else "leader probes, verdicts shared",
        "; ".join(f"{area}: {p.short if p else 'none'}" for area, p in sorted(probes.plan.areas.items()))
        or f"every area: {probes.plan.default.short if probes.plan.default else 'none'}",
    )


def agree_serials(zone: writer.Zone, elector: leader.Elector) -> Callable[[], bool]:
    """The leader records its serial and content hash in the Lease; others adopt it for the
    same content (:class:`node_dns.zone.serial.Agreement`). Returns the readiness check: a
    replica is ready once its first authoritative serial was checked against the Lease."""
    agreement = serial.Agreement()

    def annotate() -> dict[str, str]:
        snap = zone.snapshot
        if snap.synced:
            agreement.provisional = False  # we lead: the record is ours
        return agreement.record(snap)

    def observe(annotations: Mapping[str, str]) -> None:
        snap = zone.snapshot
        number = agreement.observe(annotations.get(serial.ANNOTATION), snap)
        if number is not None:
            log.info("serial %d: the leader's for the same content (ours was %d)", number, snap.serial)
            zone.adopt_serial(number)

    elector.annotate = annotate
    elector.observe = observe
    return lambda: not agreement.provisional


def load_hooks(settings: Settings, zone: writer.Zone) -> Hooks | None:
    """Render hooks when a hooks file is set; jinja2 is imported only then."""
    if not settings.hooks_file:
        return None
    from node_dns.sinks import hooks
    from node_dns.sinks.hooks import feed

    # Publications and fact changes that publish nothing (labels, cordons) both re-render.
    changes = feed.ZoneFeed(zone)
    loaded = hooks.load(settings.hooks_file, changes)
    changes.listen(loaded.changed)
    return loaded


def start_hooks(server: Server, hooks: Hooks) -> None:
    """One task per hook, created before kopf starts; leader-only hooks run as leader tasks.

    Without leader election every replica is its own leader, so leader-only hooks run here.
    The render process runs in every replica (it holds the state; leader-only hooks use it too).
    """
    server.tasks["hooks:render"] = asyncio.create_task(hooks.process.run(), name="node-dns:hooks:render")
    for hook in hooks.everywhere:
        server.tasks[f"hook:{hook.name}"] = asyncio.create_task(hook.run(), name=f"node-dns:hook:{hook.name}")
    for hook in hooks.leader_only:
        if server.leadership is not None:
            server.leadership.register(f"hook:{hook.name}", hook.run)
        else:
            server.tasks[f"hook:{hook.name}"] = asyncio.create_task(
                hook.run(), name=f"node-dns:hook:{hook.name}"
            )
    log.info(
        "render hooks: %s",
        ", ".join(f"{h.name}{' (leader only)' if h.spec.leader_only else ''}" for h in hooks.hooks),
    )


def start_leadership(settings: Settings, client: kube.Client, source: nodes.NodeSource) -> leader.Leadership:
    """Leader election; its tasks are created before kopf starts (see serving.serve())."""
    config = leader.Config(
        name=settings.leader_lease_name,
        namespace=settings.leader_lease_namespace or "default",
        identity=settings.leader_identity or "",
        lease_duration=settings.leader_lease_duration,
        renew_deadline=settings.leader_renew_deadline,
        retry_period=settings.leader_retry_period,
    )
    leadership = leader.Leadership(client, config, record_events=bool(settings.leader_record_events))
    if leadership.events is not None:
        source.problem_listeners.append(leadership.events.update)
    return leadership


def node_keys(settings: Settings, labels: bool = False) -> nodes.Keys:
    return nodes.Keys(
        areas=settings.areas_annotation,
        ips=settings.ips_annotation,
        ip_sources=settings.ip_sources,
        labels=labels,
        discovered=settings.discovered_annotation,
    )


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
