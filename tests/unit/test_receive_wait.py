"""How long a query waited in the UDP socket: the kernel's receive stamp against the read.

Real loopback sockets. A known wait is made by holding the reader off deliberately once the
socket has data (polled for, not slept for); only its lower bound is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
import time
from bisect import bisect_left
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node_dns.answer import responder as responder_mod
from node_dns.answer.stats import Histogram, QueryStats
from node_dns.sinks import metrics
from node_dns.transports import batch, receive_wait, udp
from node_dns.transports.state import TransportState
from tests.unit.udp_paths import COMPILED, PATHS, use_batch
from tests.unit.zonekit import facts, query, synced_zone

ZONE = "lb.example.net"
HOLD = 0.03
"""The deliberate hold-off, seconds: a wait past the 25 ms bucket bound."""
POLL = 10.0
"""Seconds to wait for a datagram to reach the socket before failing (never reached when it works)."""
linux_only = pytest.mark.skipif(not batch.available, reason="recvmmsg and receive stamps need Linux")


def responder() -> responder_mod.Responder:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    stats = QueryStats(metrics.DURATION_BUCKETS, metrics.RECEIVE_WAIT_BUCKETS)
    return responder_mod.Responder(zone.snapshot, query_stats=stats)


@pytest.fixture(scope="module", autouse=True)
def stamping() -> Iterator[None]:
    """Receive stamping on, machine-wide, before any measured datagram arrives.

    The first socket that asks turns the kernel's stamping on a moment later (a deferred switch);
    a datagram that arrives before is stamped when read, a wait of 0. This socket asks, and
    bounces datagrams off itself until one comes back stamped at its arrival; it stays open so
    stamping stays on for the module.
    """
    if not batch.available:
        yield
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        assert receive_wait.enable(probe)
        deadline = time.monotonic() + POLL
        while True:
            probe.sendto(b"x", probe.getsockname())
            has_data(probe)
            hold_off(0.002)
            _, ancillary, _, _ = probe.recvmsg(16, receive_wait.CONTROL_SIZE)
            read_at = time.time_ns()
            stamps = [data for level, kind, data in ancillary if kind == receive_wait.SO_TIMESTAMPNS]
            seconds, nanoseconds = struct.unpack("@ll", stamps[0]) if stamps else (0, 0)
            if receive_wait.waited(read_at, seconds * 1_000_000_000 + nanoseconds) >= 0.002:
                break
            assert time.monotonic() < deadline, "the kernel never stamped a datagram on arrival"
        yield


def at_least(hist: Histogram, seconds: float) -> int:
    """Observations in buckets that can only hold waits of ``seconds`` or more."""
    return sum(hist.counts[bisect_left(hist.bounds, seconds) :])


def has_data(sock: socket.socket) -> None:
    """Block until ``sock`` has a datagram queued (the condition the hold-off starts from)."""
    readable, _, _ = select.select([sock], [], [], POLL)
    assert readable, "the datagram never reached the socket"


def hold_off(seconds: float = HOLD) -> None:
    """Keep the reader (and, called from a coroutine, the whole event loop) away from the socket."""
    time.sleep(seconds)


# --- the pure parts -----------------------------------------------------------------------------


def test_a_wait_is_the_time_from_the_stamp_to_the_read() -> None:
    assert receive_wait.waited(now=5_002_500_000, stamp=5_000_000_000) == pytest.approx(0.0025)


def test_a_clock_stepped_back_gives_no_wait_rather_than_a_huge_one() -> None:
    assert receive_wait.waited(now=1_000_000_000, stamp=61_000_000_000) == 0.0


@pytest.mark.skipif(COMPILED.module is None, reason=COMPILED.reason)
@given(st.integers(0, 2**62), st.integers(-(2**40), 2**40))
def test_the_compiled_batch_computes_the_same_wait(stamp: int, difference: int) -> None:
    assert COMPILED.module is not None
    now = stamp + difference
    assert COMPILED.module.queue_wait(now, stamp) == pytest.approx(receive_wait.waited(now, stamp), abs=1e-12)


def test_a_control_message_without_a_stamp_gives_none() -> None:
    assert receive_wait.stamp(bytes(receive_wait.CONTROL_SIZE), 0) is None
    assert receive_wait.stamp(bytes(receive_wait.CONTROL_SIZE), receive_wait.CONTROL_SIZE) is None


# --- the batches (compiled and pure Python) -----------------------------------------------------


@contextlib.contextmanager
def listening(answerer: responder_mod.Responder) -> Iterator[tuple[batch.BatchedUdp, socket.socket]]:
    """A batched listener on loopback driven by hand, and a client connected to it."""
    loop = asyncio.new_event_loop()
    transport = batch.listen("127.0.0.1", 0, answerer, TransportState(), loop)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.connect(transport.get_extra_info("sockname"))
        yield transport, client
    finally:
        client.close()
        transport.close()
        loop.close()


@linux_only
@pytest.mark.parametrize("path", PATHS)
def test_a_datagram_held_in_the_socket_is_recorded_with_at_least_that_wait(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_batch(monkeypatch, path)
    answerer = responder()
    with listening(answerer) as (transport, client):
        assert transport.path == path
        client.send(query(f"home.{ZONE}"))
        has_data(transport.get_extra_info("socket"))
        hold_off()  # the query waits in the socket
        transport._on_readable()
        assert client.recv(4096)

    waits = answerer.stats.receive_waits
    assert sum(waits.counts) == 1
    assert at_least(waits, HOLD) == 1
    assert waits.total >= HOLD


@linux_only
@pytest.mark.parametrize("path", PATHS)
def test_a_batch_records_one_wait_its_oldest_datagrams(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first datagram waited the hold-off twice over, the later ones once: one observation
    per read, and it is the first one's."""
    use_batch(monkeypatch, path)
    answerer = responder()
    with listening(answerer) as (transport, client):
        server = transport.get_extra_info("socket")
        client.send(query(f"home.{ZONE}", id=1))
        has_data(server)
        hold_off()
        for qid in (2, 3):
            client.send(query(f"home.{ZONE}", id=qid))
        hold_off()
        transport._on_readable()
        replies = {client.recv(4096)[:2] for _ in range(3)}

    assert replies == {(1).to_bytes(2, "big"), (2).to_bytes(2, "big"), (3).to_bytes(2, "big")}
    waits = answerer.stats.receive_waits
    assert sum(waits.counts) == 1
    assert waits.total >= 2 * HOLD


@linux_only
@pytest.mark.skipif(COMPILED.module is None, reason=COMPILED.reason)
def test_the_compiled_and_pure_python_batches_agree_on_a_held_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hold-off through both: each records one wait, both in a bucket at or above it."""
    found: dict[str, Histogram] = {}
    for path in ("c", "python"):
        use_batch(monkeypatch, path)
        answerer = responder()
        with listening(answerer) as (transport, client):
            client.send(query(f"home.{ZONE}"))
            has_data(transport.get_extra_info("socket"))
            hold_off()
            transport._on_readable()
            client.recv(4096)
        found[path] = answerer.stats.receive_waits

    for waits in found.values():
        assert sum(waits.counts) == 1 and at_least(waits, HOLD) == 1
    assert found["c"].bounds == found["python"].bounds


@linux_only
@pytest.mark.parametrize("path", PATHS)
def test_a_batch_read_at_once_records_a_short_wait(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a hold-off the wait is what it is, but it is recorded and never negative."""
    use_batch(monkeypatch, path)
    answerer = responder()
    with listening(answerer) as (transport, client):
        client.send(query(f"home.{ZONE}"))
        has_data(transport.get_extra_info("socket"))
        transport._on_readable()
        client.recv(4096)

    waits = answerer.stats.receive_waits
    assert sum(waits.counts) == 1 and waits.total >= 0.0


# --- the asyncio path (response rate limiting) ---------------------------------------------------


def run_on(loop_factory: Callable[[], asyncio.AbstractEventLoop], main: Coroutine[Any, Any, None]) -> None:
    loop = loop_factory()
    try:
        loop.run_until_complete(main)
    finally:
        loop.close()


def loops() -> list[Any]:
    found: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        return found
    return [*found, pytest.param(uvloop.new_event_loop, id="uvloop")]


@linux_only
@pytest.mark.parametrize("loop_factory", loops())
def test_the_asyncio_path_records_each_held_datagram(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """Rate limiting reads through the loop's datagram endpoint, one datagram at a time: each one's
    wait is read back from the socket (SIOCGSTAMPNS) and recorded."""
    answerer = responder()

    async def main() -> None:
        limiter = udp.ratelimit.RateLimiter(responses_per_second=1_000_000)
        transport = await udp.listen("127.0.0.1", 0, answerer, TransportState(), limiter)
        assert udp.path(transport) == "asyncio"
        loop = asyncio.get_running_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        try:
            client.connect(transport.get_extra_info("sockname"))
            for qid in (1, 2, 3):
                client.send(query(f"home.{ZONE}", id=qid))
            server = socket.socket(fileno=transport.get_extra_info("socket").fileno())
            try:
                has_data(server)
            finally:
                server.detach()
            hold_off()  # the loop is held: nothing reads the socket
            for _ in range(3):
                await asyncio.wait_for(loop.sock_recv(client, 4096), POLL)
        finally:
            client.close()
            transport.close()

    run_on(loop_factory, main())
    waits = answerer.stats.receive_waits
    assert sum(waits.counts) == 3
    assert at_least(waits, HOLD) == 3
