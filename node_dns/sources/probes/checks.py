"""One probe of one address: a TCP connect, an HTTP(S) GET, or a DNS question, on asyncio.

Each check is a small protocol object on the running loop (no thread, no stream buffers, no
HTTP client library): a connect costs one socket and a few callbacks, which is what lets one
core probe thousands of addresses a second. The caller bounds the whole check with the probe's
timeout; a check never raises, it returns a :class:`~.machine.Result` whose ``detail`` says why
it failed in a few words (those words end up in logs, Events and /debug/zone).

The DNS probe writes its one fixed question by hand (a header and a name): the zone's wire
format code lives in the answer layer, which sources do not import.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl
import struct
from typing import Any

from node_dns import model
from node_dns.protocol import CLASS_IN, HEADER, QR, RCODE_MASK, TYPE_A
from node_dns.settings import probe_spec as spec_mod
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


class _DnsAnswer(asyncio.DatagramProtocol):
    def __init__(self, query_id: int, done: asyncio.Future[int]) -> None:
        self._id = query_id
        self._done = done

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._done.done() or len(data) < 12:
            return
        query_id, flags = struct.unpack_from("!HH", data)
        if query_id != self._id or not flags & QR:
            return  # not our answer: keep waiting until the timeout
        self._done.set_result(flags & RCODE_MASK)

    def error_received(self, exc: Exception) -> None:
        if not self._done.done():
            self._done.set_exception(exc)


def dns_query(query_id: int, name: str) -> bytes:
    """A question for ``name`` IN A, no recursion desired (the node is asked as an authority)."""
    labels = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.split(".") if label)
    question = labels + b"\x00" + struct.pack("!HH", TYPE_A, CLASS_IN)
    return HEADER.pack(query_id, 0, 1, 0, 0, 0) + question


def http_request(probe: spec_mod.Probe, ip: model.IPAddress) -> bytes:
    host = probe.sni or (f"[{ip}]" if ip.version == 6 else str(ip))
    if probe.port not in (80 if probe.kind == "http" else 443,):
        host = f"{host}:{probe.port}"
    return (
        f"GET {probe.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", "replace")


async def _tcp(loop: asyncio.AbstractEventLoop, ip: model.IPAddress, probe: spec_mod.Probe) -> str:
    """A bare non-blocking socket and ``sock_connect``: no transport or protocol objects, which
    halves the CPU of a TCP probe (it runs thousands of times a second at scale)."""
    sock = socket.socket(socket.AF_INET if ip.version == 4 else socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # RST instead of FIN: no TIME_WAIT left behind per probe on our side.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        await loop.sock_connect(sock, (str(ip), probe.port))
    finally:
        sock.close()
    return "connected"


_LINGER_RESET = struct.pack("ii", 1, 0)


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


async def _dns(
    loop: asyncio.AbstractEventLoop, ip: model.IPAddress, probe: spec_mod.Probe
) -> tuple[bool, str]:
    done: asyncio.Future[int] = loop.create_future()
    query_id = int.from_bytes(os.urandom(2), "big")
    family = 4 if ip.version == 4 else 6
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _DnsAnswer(query_id, done),
        remote_addr=(str(ip), probe.port),
        family=2 if family == 4 else 10,
    )
    try:
        transport.sendto(dns_query(query_id, probe.name))
        rcode = await done
    finally:
        transport.close()
    return rcode == probe.rcode, f"rcode {spec_mod.rcode_name(rcode)}"


async def check(ip: model.IPAddress, probe: spec_mod.Probe) -> Result:
    """Probe ``ip`` once, bounded by the probe's timeout; never raises (except cancellation)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    ok, detail = False, ""
    try:
        async with asyncio.timeout(probe.timing.timeout):
            if probe.kind == "tcp":
                detail = await _tcp(loop, ip, probe)
                ok = True
            elif probe.kind == "dns":
                ok, detail = await _dns(loop, ip, probe)
            else:
                ok, detail = await _http(loop, ip, probe)
    except TimeoutError:
        detail = f"timeout after {probe.timing.timeout:g}s"
    except (OSError, ValueError, ssl.SSLError) as error:
        detail = _describe(error)
    latency = loop.time() - start
    return Result(ok, detail, latency, start)
