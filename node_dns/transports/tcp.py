"""TCP listener: length-prefixed messages, several per connection, answered in order.

Limits that keep one client from starving others: a cap on connections (extra ones are closed
at once), an idle timeout, a cap on queries per connection, and flow control — while the
client is not reading our replies we stop reading its queries, and the idle sweep closes it.
"""

from __future__ import annotations

import asyncio
import time
from time import perf_counter

from node_dns.answer import responder as responder_mod
from node_dns.transports import state as state_mod


class TcpProtocol(asyncio.Protocol):
    def __init__(self, responder: responder_mod.Responder, state: state_mod.TransportState) -> None:
        # shared
        self._responder = responder
        self._state = state
        self._histogram = responder.stats.durations["tcp"]
        # per connection
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answered = 0
        self._closing = False
        self.last_activity = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self._state.connections) >= self._state.max_connections:
            self._state.refused_connections += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        self._state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing or self.transport is None:
            return
        self._buffer += data
        buffer = self._buffer
        replies: list[bytes] = []  # written with one call: pipelined queries cost one send
        try:
            while len(buffer) >= 2:
                length = (buffer[0] << 8) | buffer[1]
                if len(buffer) < 2 + length:
                    if len(buffer) > 2 + 65535:
                        self._write(replies)
                        self.abort()
                    return
                message = bytes(buffer[2 : 2 + length])
                del buffer[: 2 + length]
                self.last_activity = time.monotonic()  # whole messages only: a byte-by-byte trickle is idle
                started = perf_counter()
                try:
                    wire = self._responder.respond_tcp(message)
                except Exception as error:
                    self._state.report_error("tcp", error)
                    wire = None
                if wire is not None:
                    replies.append(len(wire).to_bytes(2, "big"))
                    replies.append(wire)
                self._histogram.observe(perf_counter() - started)
                self._answered += 1
                if self._state.max_queries and self._answered >= self._state.max_queries:
                    self._write(replies)
                    self.shutdown()
                    return
        finally:
            self._write(replies)

    def _write(self, replies: list[bytes]) -> None:
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
            replies.clear()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()

    def eof_received(self) -> bool | None:
        return None  # close once our replies are flushed

    def shutdown(self) -> None:
        """Stop reading; replies already written are flushed before the socket closes."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def listen(
    host: str, port: int, responder: responder_mod.Responder, state: state_mod.TransportState
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: TcpProtocol(responder, state), host=host, port=port, reuse_address=True, backlog=1024
    )
