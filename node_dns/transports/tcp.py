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
from node_dns.answer import xfr
from node_dns.transports import state as state_mod


class TcpProtocol(asyncio.Protocol):
    def __init__(
        self,
        responder: responder_mod.Responder,
        state: state_mod.TransportState,
        gate: xfr.Transfers | None = None,
    ) -> None:
        # shared
        self._responder = responder
        self._state = state
        self._gate = gate
        self._histogram = responder.stats.durations["tcp"]
        # per connection
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answered = 0
        self._closing = False
        self.last_activity = time.monotonic()
        # a zone transfer being streamed: later queries wait in the buffer until it is done
        self._transfer: xfr.Reply | None = None
        self._transfer_bytes = 0
        self._paused = False

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
        if self._transfer is not None and self._gate is not None:
            self._gate.finished(self._transfer, self._transfer_bytes, ok=False)
            self._transfer = None

    def data_received(self, data: bytes) -> None:
        if self._closing or self.transport is None:
            return
        self._buffer += data
        if self._transfer is None:
            self._process()

    def _process(self) -> None:
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
                if self._gate is not None and self._gate.claims(message):
                    if self._transferred(message, replies):
                        return  # streaming: the rest of the buffer waits for the transfer
                    continue
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

    def _transferred(self, message: bytes, replies: list[bytes]) -> bool:
        """Hand a claimed message to the transfer gate; True if a transfer now streams."""
        assert self._gate is not None and self.transport is not None
        peer = self.transport.get_extra_info("peername")
        try:
            reply = self._gate.handle(message, peer[0] if peer else None, tcp=True)
        except Exception as error:
            self._state.report_error("tcp transfer", error)
            return False
        if reply is None:
            return False
        if not reply.streamed:
            for wire in reply.messages:
                replies.append(len(wire).to_bytes(2, "big"))
                replies.append(wire)
            return False
        self._write(replies)
        self._transfer = reply
        self._transfer_bytes = 0
        self._pump()
        return True

    def _pump(self) -> None:
        """Write transfer messages until the socket's buffer is full or the transfer is done.

        No task: the transport's flow control calls :meth:`resume_writing` when the client has
        read enough, and that continues here, so any number of transfers interleave with
        queries on one event loop. A client that stops reading makes no progress, and the idle
        sweep cuts it off after the TCP idle timeout.
        """
        reply = self._transfer
        while reply is not None and not self._paused and self.transport is not None:
            try:
                wire = next(reply.messages)
            except StopIteration:
                self._transfer = None
                if self._gate is not None:
                    self._gate.finished(reply, self._transfer_bytes, ok=True)
                self._answered += 1
                if not (self._state.max_queries and self._answered >= self._state.max_queries):
                    self._process()
                else:
                    self.shutdown()
                return
            except Exception as error:
                self._state.report_error("tcp transfer", error)
                self.abort()
                return
            self._transfer_bytes += len(wire) + 2
            self.last_activity = time.monotonic()
            self.transport.write(len(wire).to_bytes(2, "big") + wire)

    def pause_writing(self) -> None:
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()
            if self._transfer is not None:
                asyncio.get_running_loop().call_soon(self._pump)

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
    host: str,
    port: int,
    responder: responder_mod.Responder,
    state: state_mod.TransportState,
    gate: xfr.Transfers | None = None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: TcpProtocol(responder, state, gate), host=host, port=port, reuse_address=True, backlog=1024
    )
