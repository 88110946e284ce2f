"""Transfers streamed over real loopback TCP sockets, in process: flow control and the cut-off.

The server's send buffer is made small so a 5,000-node zone cannot sit in the kernel: the
transfer must pause on flow control, resume when the client reads, and be cut off (counted
``aborted``) when the client stops reading past the idle timeout, while queries still get
answered on other connections. Real sockets; the clock of the idle sweep is passed in.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode

from node_dns import access
from node_dns.answer import responder as responder_mod
from node_dns.answer import xfr
from node_dns.transports import state as state_mod
from node_dns.transports import tcp
from node_dns.zone import journal as journal_mod
from tests.unit import zonekit
from tests.unit.test_xfr_wire import ZONE_NODES, big_state

SMALL = 4096


async def _server(
    max_transfers: int = 10,
) -> tuple[asyncio.Server, state_mod.TransportState, xfr.Transfers, int]:
    state = big_state()
    responder = responder_mod.Responder(state.snapshot)
    gate = xfr.Transfers(
        xfr.Options(keys={}, rules=(access.parse_rule("127.0.0.0/8"),), max_transfers=max_transfers),
        lambda: state.snapshot,
        journal_mod.Journal(10, 1 << 20),
    )
    tstate = state_mod.TransportState(idle_timeout=0.5)
    server = await tcp.listen("127.0.0.1", 0, responder, tstate, gate)
    port = server.sockets[0].getsockname()[1]
    return server, tstate, gate, port


def _shrink(tstate: state_mod.TransportState) -> None:
    for conn in tstate.connections:
        transport = conn.transport  # type: ignore[attr-defined]
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
        transport.set_write_buffer_limits(high=SMALL)


async def _connect(port: int, tstate: state_mod.TransportState) -> socket.socket:
    """A client socket with a small window, not read by anything until the test reads it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    await _until(lambda: bool(tstate.connections))
    _shrink(tstate)
    return sock


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (bounded by the test timeout)."""
    while not condition():  # noqa: ASYNC110 - plain attributes: there is no event to wait on
        await asyncio.sleep(0.005)


def _axfr() -> bytes:
    wire = dns.message.make_query(zonekit.ZONE, "AXFR").to_wire()
    return struct.pack("!H", len(wire)) + wire


async def _read_messages(reader: asyncio.StreamReader) -> list[dns.message.Message]:
    messages = []
    while True:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
        message = dns.message.from_wire(await reader.readexactly(length), xfr=True, one_rr_per_rrset=True)
        messages.append(message)
        soas = sum(1 for m in messages for rr in m.answer if rr.rdtype == 6)
        if soas == 2:
            return messages


async def test_a_transfer_that_outgrows_the_socket_buffer_pauses_and_completes() -> None:
    server, tstate, gate, port = await _server()
    try:
        sock = await _connect(port, tstate)
        sock.send(_axfr())
        (conn,) = tstate.connections
        await _until(lambda: conn._paused)  # type: ignore[attr-defined]
        assert gate.active == 1  # paused on flow control: the client has not read

        reader, writer = await asyncio.open_connection(sock=sock)
        messages = await _read_messages(reader)

        # Each node's A record in its area and under v4., the apex and glue, and one marker per
        # IPv4-only area for its v6. name (it answers NODATA, so it must exist at secondaries).
        areas = ZONE_NODES // 50
        assert sum(len(m.answer) for m in messages) == ZONE_NODES * 2 + 8 + areas
        await _until(lambda: not gate.active)
        assert gate.stats.transfers == {("axfr", "ok"): 1}
        writer.close()
    finally:
        server.close()


async def test_a_client_that_stops_reading_is_cut_off_by_the_idle_sweep_and_queries_go_on() -> None:
    server, tstate, gate, port = await _server()
    try:
        sock = await _connect(port, tstate)
        sock.send(_axfr())
        (conn,) = tstate.connections
        await _until(lambda: conn._paused)  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        # another client is answered while the transfer waits
        answer = await loop.run_in_executor(
            None,
            lambda: dns.query.tcp(
                dns.message.make_query(zonekit.ZONE, "SOA"), "127.0.0.1", port=port, timeout=2
            ),
        )
        assert answer.answer

        tstate.sweep(time.monotonic() + 1.0)  # past the idle timeout: no message went out since
        await _until(lambda: not gate.active)

        assert gate.stats.transfers == {("axfr", "aborted"): 1}
        sock.close()
    finally:
        server.close()


async def test_transfers_over_the_cap_are_refused() -> None:
    server, tstate, gate, port = await _server(max_transfers=1)
    try:
        first = await _connect(port, tstate)
        first.send(_axfr())
        await _until(lambda: gate.active == 1)
        loop = asyncio.get_running_loop()

        second = await loop.run_in_executor(
            None,
            lambda: dns.query.tcp(
                dns.message.make_query(zonekit.ZONE, "AXFR"), "127.0.0.1", port=port, timeout=2
            ),
        )

        assert second.rcode() == dns.rcode.REFUSED
        first.close()
    finally:
        server.close()
