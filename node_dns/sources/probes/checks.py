"""One probe of one address: a TCP connect, an HTTP(S) GET, or a DNS question, on asyncio.

TCP and DNS probes are callbacks of a :class:`~.reactor.Reactor` (the prober shares one for all
its targets; :func:`check` makes one for a single probe). HTTP(S) is a small protocol object on
the running loop (no thread, no stream buffers, no HTTP client library), bounded by the probe's
timeout. A check never raises, it returns a :class:`~.machine.Result` whose ``detail`` says why
it failed in a few words (those words end up in logs, Events and /debug/zone).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ssl
from typing import Any

from node_dns import model
from node_dns.settings import probe_spec as spec_mod
from node_dns.sources.probes import reactor
from node_dns.sources.probes.machine import Result

USER_AGENT = "node-dns-probe"
MAX_STATUS_LINE = 4096


@functools.lru_cache(maxsize=32)
def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """One context per (verify, CA file): building one reads the CA store, too slow per probe."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: {error.verify_message or 'certificate verify failed'}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, OSError) and error.errno is not None:
        return (error.strerror or errno.errorcode.get(error.errno, str(error.errno))).lower()
    return type(error).__name__ + (f": {error}" if str(error) else "")


class _StatusLine(asyncio.Protocol):
    """HTTP: send one GET, read up to the end of the status line, then drop the connection."""

    def __init__(self, request: bytes, done: asyncio.Future[int]) -> None:
        self._request = request
        self._done = done
        self._buffer = b""
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self._transport = transport
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        line, sep, _ = self._buffer.partition(b"\r\n")
        if not sep and len(self._buffer) < MAX_STATUS_LINE:
            return
        if not self._done.done():
            parts = line.split(b" ", 2)
            if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
                self._done.set_result(int(parts[1]))
            else:
                self._done.set_exception(ValueError("not an HTTP/1.x status line"))
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(exc or ConnectionResetError("closed before a status line"))


def http_request(probe: spec_mod.Probe, ip: model.IPAddress) -> bytes:
    host = probe.sni or (f"[{ip}]" if ip.version == 6 else str(ip))
    if probe.port not in (80 if probe.kind == "http" else 443,):
        host = f"{host}:{probe.port}"
    return (
        f"GET {probe.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", "replace")


async def _http(
    loop: asyncio.AbstractEventLoop, ip: model.IPAddress, probe: spec_mod.Probe
) -> tuple[bool, str]:
    done: asyncio.Future[int] = loop.create_future()
    context = tls_context(probe.verify, probe.ca_file) if probe.kind == "https" else None
    server_hostname = (probe.sni or str(ip)) if context is not None else None
    transport, _ = await loop.create_connection(
        lambda: _StatusLine(http_request(probe, ip), done),
        str(ip),
        probe.port,
        ssl=context,
        server_hostname=server_hostname,
    )
    try:
        status = await done
    finally:
        transport.abort()
    low, high = probe.status
    return low <= status <= high, f"HTTP {status}"


async def check(ip: model.IPAddress, probe: spec_mod.Probe) -> Result:
    """Probe ``ip`` once, bounded by the probe's timeout; never raises (except cancellation)."""
    if probe.kind in ("tcp", "dns"):
        return await reactor.once(str(ip), ip.version, probe)
    loop = asyncio.get_running_loop()
    start = loop.time()
    ok, detail = False, ""
    try:
        async with asyncio.timeout(probe.timing.timeout):
            ok, detail = await _http(loop, ip, probe)
    except TimeoutError:
        detail = f"timeout after {probe.timing.timeout:g}s"
    except (OSError, ValueError, ssl.SSLError) as error:
        detail = _describe(error)
    latency = loop.time() - start
    return Result(ok, detail, latency, start)
