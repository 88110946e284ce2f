"""HTTP endpoints: /healthz (alive), /readyz (authoritative), /metrics (Prometheus).

The answers are written on the event loop that answers DNS, so none is written in one long step:
/metrics and the extra (debug) pages are put together in slices, the loop running in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from node_dns.sinks import exposition
from node_dns.sinks.plain_http import Check, check_answer

Page = Callable[[], Iterable[str]]
"""An extra page: its text in pieces (each one short to produce), read in slices."""


async def start(
    host: str,
    port: int,
    *,
    live: Check,
    ready: Check,
    registry: CollectorRegistry,
    extra_routes: Mapping[str, Page] | None = None,
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
        body = await exposition.render(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", respond(live))
    app.router.add_get("/livez", respond(live))
    app.router.add_get("/readyz", respond(ready))
    app.router.add_get("/metrics", metrics)
    for path, render in (extra_routes or {}).items():

        async def extra(_: web.Request, render: Page = render) -> web.Response:
            return web.Response(text=await joined(render()), content_type="text/plain")

        app.router.add_get(path, extra)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = address[1]
    return runner, bound


async def joined(pieces: Iterable[str], budget: float = exposition.SLICE) -> str:
    """The pieces joined, the event loop running whenever reading them took ``budget`` seconds."""
    parts: list[str] = []
    started = time.perf_counter()
    for piece in pieces:
        parts.append(piece)
        if time.perf_counter() - started >= budget:
            await asyncio.sleep(0)
            started = time.perf_counter()
    return "".join(parts)
