"""Running: serve until SIGTERM/SIGINT or until the watch dies, then shut down in order.

Shutdown: release the Lease first (another replica leads at once), close the listeners, let
TCP connections flush for a bounded time, stop the rest. kopf ending by itself is fatal: a
process that keeps serving a frozen zone forever is worse than one that restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from node_dns import app
from node_dns.settings import Settings
from node_dns.sources import watch

log = logging.getLogger("node_dns")

SHUTDOWN_GRACE = 5.0


async def stop(server: app.Server) -> None:
    """Close listeners, let TCP connections flush for a bounded time, then stop everything."""
    if server.leadership is not None:
        # First: stop leader-only work and release the Lease so another replica takes over now.
        await server.leadership.shutdown()
    if server._udp is not None:
        server._udp.close()
    if server.workers is not None:
        await server.workers.close()
    if server._tcp is not None:
        server._tcp.close()
    for conn in list(server.transport_state.connections):
        conn.shutdown()
    deadline = time.monotonic() + SHUTDOWN_GRACE
    while server.transport_state.connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for conn in list(server.transport_state.connections):
        conn.abort()
    for task in server.tasks.values():
        task.cancel()
    for task in server.tasks.values():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if server._http is not None:
        await server._http.cleanup()
    await server.client.close()
    if server.gc_pauses is not None:
        server.gc_pauses.remove()
    if server.stall_watch is not None:
        server.stall_watch.stop()


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until the watch dies (exit 1)."""
    server = await app.start(settings)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    operator = await watch.start(
        watch.registry(server.loader, server.source, server.services),
        scoped=watch.scope(settings.services, settings.service_namespaces),
        node_selector=settings.node_selector,
    )
    server.tasks["watch"] = operator
    # kopf has installed its own SIGINT/SIGTERM handlers: take them back. On a signal kopf would
    # wait 5 s for every task created after it started (HTTP keep-alive handlers among them);
    # cancelling it stops its watch at once instead.
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    signalled = asyncio.create_task(stopping.wait())
    await asyncio.wait({operator, signalled}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if stopping.is_set():
        log.info("stopping: signal received")
        operator.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await operator
    else:
        signalled.cancel()
        error = operator.exception() if not operator.cancelled() else None
        log.error("node watch ended and will not recover (%s); exiting so the pod restarts", error)
        code = 1
    await stop(server)
    log.info("stopped")
    return code
