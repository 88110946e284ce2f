"""/healthz, /readyz and /metrics on asyncio's own streams: the HTTP endpoints of a process that
must stay small (the node agent), without aiohttp's server (11.6 MB of RSS to import).

A probe or a scrape is one GET per connection: the request line and headers are read (bounded
in size and time), one answer is written with ``Connection: close``, and the connection ends.
The answers are those of :mod:`node_dns.sinks.http`: the same JSON body for the checks
(:func:`check_answer`, which that module uses too) and Prometheus' text format for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], tuple[bool, Mapping[str, Any]]]

READ_TIMEOUT = 10.0
MAX_HEAD = 8192
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def check_answer(check: Check) -> tuple[int, bytes]:
    """A health check's status (200, or 503 when failing) and JSON body."""
    ok, detail = check()
    body = json.dumps({"ok": ok, **detail}, sort_keys=True, default=str) + "\n"
    return (200 if ok else 503), body.encode()


class Server:
    """The listening socket; :meth:`cleanup` closes it."""

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    async def cleanup(self) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()


async def start(host: str, port: int, *, live: Check, ready: Check, registry: CollectorRegistry) -> Server:
    """Listen on ``host``:``port`` (0: any free port, see :attr:`Server.port`)."""
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/healthz": lambda: _json(live),
        "/livez": lambda: _json(live),
        "/readyz": lambda: _json(ready),
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
    }

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = target.partition("?")[0]
            if path not in routes:
                status, kind, body = 404, "text/plain", b"not found\n"
            elif method not in ("GET", "HEAD"):
                status, kind, body = 405, "text/plain", b"GET only\n"
            else:
                status, kind, body = routes[path]()
            header = (
                f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sent no request, or too much: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host, port, limit=MAX_HEAD, reuse_address=True)
    return Server(server)


def _json(check: Check) -> tuple[int, str, bytes]:
    status, body = check_answer(check)
    return status, "application/json", body
