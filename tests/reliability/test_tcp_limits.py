"""TCP limits of the real process: idle connections, a client that never reads, caps.

Every test runs its own node-dns with the limits it needs, against the session control plane.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator

import dns.message
import psutil
import pytest

from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION
from tests.reliability.common import addresses, ask, framed, metric, percentile, read_framed, wait_until

pytestmark = pytest.mark.controlplane

IDLE_CONNECTIONS = 1000
IP = "192.0.2.101"


@pytest.fixture(scope="module")
def area(control_plane: ControlPlane) -> Iterator[str]:
    import uuid

    name = f"tcp-{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    control_plane.create_node(node, annotations={AREAS_ANNOTATION: name, IPS_ANNOTATION: IP})
    yield f"{name}.{DEFAULT_ZONE}"
    control_plane.delete_node(node, missing_ok=True)


def _udp_latencies(server: NodeDns, name: str, count: int) -> list[float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.connect(server.dns_address)
    query = dns.message.make_query(name, "A")
    latencies = []
    try:
        for index in range(count):
            query.id = index
            started = time.perf_counter()
            sock.send(query.to_wire())
            reply = dns.message.from_wire(sock.recv(65535))
            latencies.append(time.perf_counter() - started)
            assert reply.id == index and addresses(reply) == {IP}
    finally:
        sock.close()
    return latencies


def _tcp_connections(server: NodeDns) -> float | None:
    return metric(server.http_get("/metrics")[1], "node_dns_dns_tcp_connections")


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def test_a_thousand_idle_tcp_connections_do_not_slow_udp(control_plane: ControlPlane, area: str) -> None:
    _raise_fd_limit(IDLE_CONNECTIONS + 512)
    args = ["--tcp-idle-timeout=120", f"--tcp-max-connections={IDLE_CONNECTIONS + 100}"]
    with NodeDns(control_plane.kubeconfig, extra_args=args) as server:
        wait_until(lambda: addresses(ask(server.dns_address, area)) == {IP}, timeout=10)
        _udp_latencies(server, area, 200)  # warm up
        before = _udp_latencies(server, area, 1000)
        idle: list[socket.socket] = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                idle.append(socket.create_connection(server.dns_address, timeout=5))
            wait_until(lambda: _tcp_connections(server) == IDLE_CONNECTIONS, timeout=10, what="all accepted")
            during = _udp_latencies(server, area, 1000)
            # the idle connections are still there, and still usable
            probe = idle[len(idle) // 2]
            probe.sendall(framed(dns.message.make_query(area, "A").to_wire()))
            wire = read_framed(probe)
            assert wire is not None and addresses(dns.message.from_wire(wire)) == {IP}
            assert _tcp_connections(server) == IDLE_CONNECTIONS
        finally:
            for sock in idle:
                sock.close()
    p50_before, p50_during = percentile(before, 0.5), percentile(during, 0.5)
    p99_before, p99_during = percentile(before, 0.99), percentile(during, 0.99)
    print(
        f"\nUDP latency without / with {IDLE_CONNECTIONS} idle TCP connections: "
        f"p50 {p50_before * 1e6:.0f} / {p50_during * 1e6:.0f} us, "
        f"p99 {p99_before * 1e6:.0f} / {p99_during * 1e6:.0f} us"
    )
    assert p50_during < max(2 * p50_before, p50_before + 0.0005)


def test_a_client_that_never_reads_cannot_hold_the_server(control_plane: ControlPlane, area: str) -> None:
    idle_timeout = 3.0
    args = [f"--tcp-idle-timeout={idle_timeout}", "--tcp-max-queries=1000000"]
    with NodeDns(control_plane.kubeconfig, extra_args=args) as server:
        wait_until(lambda: addresses(ask(server.dns_address, area)) == {IP}, timeout=10)
        rss_before = psutil.Process(server.pid).memory_info().rss
        hog = socket.create_connection(server.dns_address, timeout=5)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, buffer little
        query = framed(dns.message.make_query(area, "A").to_wire())
        chunk = query * 1000
        hog.setblocking(False)
        sent = 0
        stalled_at: float | None = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sent += hog.send(chunk)
                stalled_at = None
            except BlockingIOError:
                # the server stopped reading (its replies are not being read): we are stuck
                if stalled_at is None:
                    stalled_at = time.monotonic()
                elif time.monotonic() - stalled_at > 0.5:
                    break
                time.sleep(0.01)
            except (ConnectionResetError, BrokenPipeError):
                pytest.fail("closed before the client stalled")
        assert stalled_at is not None, "the server never applied back-pressure"
        stalled = time.monotonic()

        # while the hog is stuck, everyone else is answered at once, over UDP and TCP
        for _ in range(20):
            assert addresses(ask(server.dns_address, area, timeout=1.0)) == {IP}
            assert addresses(ask(server.dns_address, area, timeout=1.0, tcp=True)) == {IP}

        # the idle sweep closes the hog: it stops counting and its socket is reset
        wait_until(lambda: _tcp_connections(server) == 0, timeout=idle_timeout + 5, what="hog closed")
        closed_after = time.monotonic() - stalled
        with contextlib.suppress(BlockingIOError):
            hog.recv(1)  # drain nothing: reading a reset socket raises
        hog.close()
        rss_after = psutil.Process(server.pid).memory_info().rss
        assert server.running
    print(
        f"\nnon-reading client: {sent / 1e6:.1f} MB of queries accepted before back-pressure, closed "
        f"{closed_after:.1f}s after it stalled (idle timeout {idle_timeout}s); "
        f"RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB"
    )
    assert closed_after <= idle_timeout + 2.5
    assert rss_after - rss_before < 64 * 2**20


def test_connection_cap_refuses_extra_connections(control_plane: ControlPlane, area: str) -> None:
    with NodeDns(control_plane.kubeconfig, extra_args=["--tcp-max-connections=5"]) as server:
        query = framed(dns.message.make_query(area, "A").to_wire())
        kept = [socket.create_connection(server.dns_address, timeout=3) for _ in range(5)]
        try:
            for sock in kept:
                sock.sendall(query)
                assert read_framed(sock) is not None
            extra = socket.create_connection(server.dns_address, timeout=3)
            with contextlib.suppress(OSError):
                extra.sendall(query)
            try:
                refused = read_framed(extra) is None
            except ConnectionResetError:
                refused = True
            extra.close()
            assert refused
            _, text = server.http_get("/metrics")
            assert (metric(text, "node_dns_dns_tcp_refused_connections_total") or 0) >= 1
            kept.pop().close()
            wait_until(lambda: _tcp_connections(server) == 4, timeout=5)
            assert addresses(ask(server.dns_address, area, tcp=True)) == {IP}
        finally:
            for sock in kept:
                sock.close()


def test_query_cap_closes_after_n_answers(control_plane: ControlPlane, area: str) -> None:
    with NodeDns(control_plane.kubeconfig, extra_args=["--tcp-max-queries=3"]) as server:
        with socket.create_connection(server.dns_address, timeout=3) as sock:
            sock.sendall(framed(dns.message.make_query(area, "A").to_wire()) * 5)
            answers = 0
            while read_framed(sock) is not None:
                answers += 1
        assert answers == 3


def test_idle_timeout_closes_a_silent_connection(control_plane: ControlPlane, area: str) -> None:
    with NodeDns(control_plane.kubeconfig, extra_args=["--tcp-idle-timeout=1"]) as server:
        with socket.create_connection(server.dns_address, timeout=6) as sock:
            started = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
            waited = time.monotonic() - started
        assert 0.9 <= waited <= 3.5


def test_a_client_that_trickles_a_query_byte_by_byte_is_closed(
    control_plane: ControlPlane, area: str
) -> None:
    """A slow writer: half a message, one byte at a time, never finished (slowloris)."""
    idle_timeout = 2.0
    with NodeDns(control_plane.kubeconfig, extra_args=[f"--tcp-idle-timeout={idle_timeout}"]) as server:
        message = framed(dns.message.make_query(area, "A").to_wire())
        with socket.create_connection(server.dns_address, timeout=5) as sock:
            started = time.monotonic()
            closed_after: float | None = None
            for byte in message[:-1]:  # ~40 bytes at 2/s: longer than the test waits
                try:
                    sock.send(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - started
                    break
                if _tcp_connections(server) == 0:
                    closed_after = time.monotonic() - started
                    break
                time.sleep(0.5)
                if time.monotonic() - started > 5 * idle_timeout:
                    break
        # others were never affected
        assert addresses(ask(server.dns_address, area, tcp=True)) == {IP}
    assert closed_after is not None, "a trickling client held its connection past the idle timeout"
    assert closed_after <= idle_timeout + 2.5
