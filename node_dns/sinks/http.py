"""HTTP endpoints: /healthz (alive), /readyz (authoritative), /metrics (Prometheus).

The answers are written on the event loop that answers DNS, so none is written in one long step:
/metrics and the extra (debug) pages are put together in slices, the loop running in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
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

        async def extra(request: web.Request, render: Page = render) -> web.StreamResponse:
            # Written a slice at a time: a 5,000-node zone file is ~600 KB, and joining and
            # encoding it whole was a step of its own.
            response = web.StreamResponse()
            response.content_type, response.charset = "text/plain", "utf-8"
            await response.prepare(request)
            async for text in slices(render()):
                await response.write(text.encode())
            await response.write_eof()
            return response

        app.router.add_get(path, extra)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = address[1]
    return runner, bound


async def slices(pieces: Iterable[str], budget: float = exposition.SLICE) -> AsyncIterator[str]:
    """The pieces joined into one text per ``budget`` seconds of reading them, the event loop
    running between two."""
    parts: list[str] = []
    started = time.perf_counter()
    for piece in pieces:
        parts.append(piece)
        if time.perf_counter() - started >= budget:
            yield "".join(parts)
            parts = []
            await asyncio.sleep(0)
            started = time.perf_counter()
    yield "".join(parts)
