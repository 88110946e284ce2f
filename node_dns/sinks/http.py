"""HTTP endpoints: /healthz (alive), /readyz (authoritative), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from node_dns.sinks.plain_http import Check, check_answer


async def start(
    host: str,
    port: int,
    *,
    live: Check,
    ready: Check,
    registry: CollectorRegistry,
    extra_routes: Mapping[str, Callable[[], str]] | None = None,
    before_metrics: Callable[[], Awaitable[None]] | None = None,
) -> tuple[web.AppRunner, int]:
    """Start the server; return its runner (for cleanup) and the bound port.

    ``before_metrics`` is awaited before each scrape: readings too slow for the event loop are
    refreshed off it there, and the collector serves them from memory.
    """

    def respond(check: Check) -> Callable[[web.Request], Any]:
        async def handler(_: web.Request) -> web.Response:
            status, body = check_answer(check)
            return web.Response(status=status, text=body.decode(), content_type="application/json")

        return handler

    async def metrics(_: web.Request) -> web.Response:
        if before_metrics is not None:
            await before_metrics()
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", respond(live))
    app.router.add_get("/livez", respond(live))
    app.router.add_get("/readyz", respond(ready))
    app.router.add_get("/metrics", metrics)
    for path, render in (extra_routes or {}).items():

        async def extra(_: web.Request, render: Callable[[], str] = render) -> web.Response:
            return web.Response(text=render(), content_type="text/plain")

        app.router.add_get(path, extra)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = address[1]
    return runner, bound
