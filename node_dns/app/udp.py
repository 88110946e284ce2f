"""Where UDP is answered: on this process' event loop, or in worker processes (--workers).

The two differ in what binds the socket, which tasks run and where the metrics read the kernel's
drops, the receive buffer and the rate limiter's counts; :func:`listen_udp` hides that choice
from :func:`node_dns.app.server.start`. Response rate limiting applies to UDP only, so its
settings are read here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from node_dns.answer import xfr
from node_dns.settings import Settings
from node_dns.sinks import metrics
from node_dns.transports import ratelimit, sockets, udp
from node_dns.transports.workers import build as worker_build
from node_dns.transports.workers import pool as worker_pool

if TYPE_CHECKING:
    from node_dns.app.server import Server


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


@dataclass(frozen=True)
class Udp:
    """The bound UDP listener as the rest of start-up sees it, wherever it answers."""

    port: int
    drops: sockets.OnLoop | sockets.OffLoop
    receive_buffer: Callable[[], int]
    rate_limited: Callable[[], Mapping[tuple[str, str], int]] | None
    path: str
    """Which code answers: "c", "python" (the batches) or "asyncio"."""
    transport: asyncio.DatagramTransport | None = None
    """The listener on this loop; None when worker processes answer."""


async def listen_udp(
    server: Server, gate: xfr.Transfers | None, limiter: ratelimit.RateLimiter | None
) -> Udp:
    """Bind UDP: in worker processes when the settings ask for them, else on this loop."""
    settings = server.settings
    if settings.workers:
        pool = start_workers(server, gate)
        return Udp(
            port=pool.port,
            drops=sockets.OffLoop(pool.kernel_drops),
            receive_buffer=lambda: pool.granted_buffer,
            rate_limited=(lambda: pool.targets.rate_limits) if limiter is not None else None,
            path=udp.expected_path(limiter),
        )
    transport = await udp.listen(
        settings.dns_address,
        settings.dns_port,
        server.responder,
        server.transport_state,
        limiter,
        gate=gate,
        receive_buffer=settings.udp_receive_buffer,
    )
    udp_socket = transport.get_extra_info("socket")
    return Udp(
        port=transport.get_extra_info("sockname")[1],
        drops=sockets.held_socket_drops(udp_socket),
        receive_buffer=lambda: sockets.granted(udp_socket),
        rate_limited=(lambda: limiter.stats.actions) if limiter is not None else None,
        path=udp.path(transport),
        transport=transport,
    )


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
