"""UDP listener: one datagram in, at most one datagram out, no task per packet."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from time import perf_counter, time_ns
from typing import Any

from node_dns.answer import responder as responder_mod
from node_dns.answer import xfr
from node_dns.transports import accel, batch, ratelimit, receive_wait, sockets
from node_dns.transports import state as state_mod

log = logging.getLogger("node_dns.transports")


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(
        self,
        responder: responder_mod.Responder,
        state: state_mod.TransportState,
        limiter: ratelimit.RateLimiter | None = None,
        gate: xfr.Transfers | None = None,
    ) -> None:
        self._responder = responder
        self._gate = gate
        self._state = state
        self._limiter = limiter
        self._histogram = responder.stats.durations["udp"]
        self._waits = responder.stats.receive_waits
        self._stamps: receive_wait.LastStamp | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._stamps = receive_wait.LastStamp(sock)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._stamps is not None:  # each datagram is a read of its own here
            stamp = self._stamps.read()
            if stamp is not None:
                self._waits.observe(receive_wait.waited(time_ns(), stamp))
        started = perf_counter()
        try:
            if self._gate is not None and self._gate.claims(data):
                wire = udp_transfer(self._gate, data, addr[0])
            else:
                wire = self._responder.respond(data)
        except Exception as error:
            self._state.report_error("udp", error)
            return
        if self._limiter is not None and wire is not None:  # rate limiting: off unless configured
            try:
                wire = self._limiter.check(wire, addr)
            except Exception as error:
                self._state.report_error("udp rate limiter", error)
            if wire is None:
                self._responder.stats.drop("rate_limited")
        if wire is not None and self.transport is not None:
            self.transport.sendto(wire, addr)
        self._histogram.observe(perf_counter() - started)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors for earlier replies (port unreachable): nothing to do."""


def udp_transfer(gate: xfr.Transfers, data: bytes, client: str | None) -> bytes | None:
    """IXFR over UDP, AXFR over UDP (refused) and signed queries: always one datagram."""
    reply = gate.handle(data, client, tcp=False)
    return next(reply.messages, None) if reply is not None else None


async def listen(
    host: str,
    port: int,
    responder: responder_mod.Responder,
    state: state_mod.TransportState,
    limiter: ratelimit.RateLimiter | None = None,
    *,
    gate: xfr.Transfers | None = None,
    receive_buffer: int = 0,
) -> asyncio.DatagramTransport:
    """Bind and answer; ``receive_buffer`` (bytes, 0: the kernel's default) sizes the socket's
    receive buffer, with one log line when the kernel grants less."""
    transport = await _bind(host, port, responder, state, limiter, gate=gate)
    if isinstance(transport, batch.BatchedUdp):
        _say_which(transport.choice)
    sock = transport.get_extra_info("socket")
    if receive_buffer and sock is not None:
        sizing = sockets.size_receive_buffer(sock, receive_buffer)
        sockets.report(sizing, limit=sockets.rmem_max())
    return transport


def path(transport: asyncio.DatagramTransport) -> str:
    """Which code answers on ``transport``: "c", "python" (the batches) or "asyncio"."""
    return transport.path if isinstance(transport, batch.BatchedUdp) else "asyncio"


def expected_path(limiter: ratelimit.RateLimiter | None) -> str:
    """The path :func:`adopt` will take in worker processes, decided and said once by the parent."""
    if limiter is not None or not batch.available:
        return "asyncio"
    choice = accel.choose()
    _say_which(choice)
    return choice.path


def _say_which(choice: accel.Choice) -> None:
    """One line at start when the pure-Python batch answers (a warning unless it was asked for)."""
    if choice.module is None:
        report = log.info if choice.forced else log.warning
        report("UDP is answered by the pure-Python batch: %s (same answers, more CPU each)", choice.reason)


async def _bind(
    host: str,
    port: int,
    responder: responder_mod.Responder,
    state: state_mod.TransportState,
    limiter: ratelimit.RateLimiter | None,
    *,
    gate: xfr.Transfers | None,
) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    if limiter is None and batch.available:  # the limiter needs the asyncio path's address tuples
        try:
            return batch.listen(host, port, responder, state, loop, gate=gate)
        except (OSError, NotImplementedError) as error:
            if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
                raise
            log.debug("batched UDP unavailable (%s); using the asyncio datagram endpoint", error)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: UdpProtocol(responder, state, limiter, gate), local_addr=(host, port), reuse_port=False
    )
    return transport


async def adopt(
    sock: socket.socket,
    responder: responder_mod.Responder,
    state: state_mod.TransportState,
    limiter: ratelimit.RateLimiter | None = None,
    *,
    gate: xfr.Transfers | None = None,
) -> asyncio.DatagramTransport:
    """Answer on a socket bound elsewhere (a worker's ``SO_REUSEPORT`` socket): the same choice
    of path as :func:`listen` (batched unless rate limiting is on or the platform lacks it)."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    if limiter is None and batch.available:
        try:
            return batch.BatchedUdp(sock, responder, state, loop, gate)
        except (OSError, NotImplementedError) as error:
            log.debug("batched UDP unavailable (%s); using the asyncio datagram endpoint", error)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: UdpProtocol(responder, state, limiter, gate), sock=sock
    )
    return transport
