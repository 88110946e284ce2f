"""The receive path's own metrics on a real server: kernel drops on the DNS socket, the receive
buffer it was granted (and the warning when the kernel caps it), how long queries waited in the
socket, the event-loop lag and the stalls attributed by the stall watch."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest

from node_dns.transports import sockets
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import HOST, metric, node_reader, wait_for

pytestmark = pytest.mark.controlplane

SMALL_BUFFER = 16384


@pytest.fixture(scope="module")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return node_reader(control_plane, "receive")[0]


@pytest.fixture(scope="module")
def small_buffer(kubeconfig: Path) -> Iterator[NodeDns]:
    with NodeDns(
        kubeconfig,
        extra_args=[f"--udp-receive-buffer={SMALL_BUFFER}", "--debug-endpoints", "--stall-threshold=0.005"],
    ) as server:
        yield server


def _stalls(server: NodeDns) -> float:
    """Stalls counted over every culprit."""
    _, body = server.http_get("/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("node_dns_event_loop_stalls_total{")
    )


def test_the_event_loop_lag_histogram_is_exported_and_observing(small_buffer: NodeDns) -> None:
    wait_for(
        lambda: (metric(small_buffer, "node_dns_event_loop_lag_seconds_count") or 0) > 0,
        timeout=10,
        what="lag observations",
    )
    assert metric(small_buffer, "node_dns_event_loop_lag_seconds_bucket", le="+Inf") is not None
    assert metric(small_buffer, "node_dns_event_loop_lag_max_seconds") is not None


def test_a_stopped_server_s_stall_is_counted_by_culprit_and_listed(small_buffer: NodeDns) -> None:
    wait_for(
        lambda: (metric(small_buffer, "node_dns_event_loop_own_lag_seconds_count") or 0) > 0,
        timeout=10,
        what="own-lag observations",
    )
    before = _stalls(small_buffer)
    pid = small_buffer.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the loop (and every thread) stands still: a stall from outside
    try:
        time.sleep(0.3)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _stalls(small_buffer) > before, timeout=10, what="the stall counted")
    assert (metric(small_buffer, "node_dns_event_loop_own_lag_max_seconds") or 0) >= 0.1
    status, listing = small_buffer.http_get("/debug/stalls")
    assert status == 200
    assert listing.startswith("# stalls longer than 5 ms by culprit")
    assert len(listing.splitlines()) >= 4  # a culprit line under the three header lines


def _waits_over(server: NodeDns, bound: str) -> float:
    """Receive waits recorded above ``bound`` seconds (a bucket bound of the histogram)."""
    total = metric(server, "node_dns_dns_udp_receive_wait_seconds_bucket", le="+Inf")
    below = metric(server, "node_dns_dns_udp_receive_wait_seconds_bucket", le=bound)
    assert total is not None and below is not None
    return total - below


def test_a_query_that_waited_in_the_socket_is_recorded_with_its_wait(small_buffer: NodeDns) -> None:
    """The server is stopped, a query sent, and the server held 0.3 s before it may read it."""
    before = _waits_over(small_buffer, "0.25")
    pid = small_buffer.pid
    assert pid is not None
    query = dns.message.make_query(f"nothere.{small_buffer.zone}", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        os.kill(pid, signal.SIGSTOP)
        try:
            client.sendto(query.to_wire(), (HOST, small_buffer.dns_port))
            time.sleep(0.3)  # the deliberate hold-off: the query sits in the socket
        finally:
            os.kill(pid, signal.SIGCONT)
        client.settimeout(10)
        reply = dns.message.from_wire(client.recv(4096))
    assert reply.id == query.id
    wait_for(lambda: _waits_over(small_buffer, "0.25") > before, timeout=10, what="the wait recorded")
    assert (metric(small_buffer, "node_dns_dns_udp_receive_wait_seconds_sum") or 0) >= 0.3


def test_garbage_collections_are_timed_by_generation(small_buffer: NodeDns) -> None:
    for generation in ("0", "1", "2"):
        assert metric(small_buffer, "node_dns_gc_pause_seconds_count", generation=generation) is not None
    assert (metric(small_buffer, "node_dns_gc_pause_seconds_count", generation="2") or 0) >= 1  # the freeze


def test_the_receive_buffer_is_the_one_asked_for(small_buffer: NodeDns) -> None:
    assert metric(small_buffer, "node_dns_dns_udp_receive_buffer_bytes") == SMALL_BUFFER


def test_queries_the_kernel_drops_while_the_server_is_stopped_are_counted(small_buffer: NodeDns) -> None:
    assert metric(small_buffer, "node_dns_dns_udp_kernel_drops_total") == 0
    query = dns.message.make_query(f"nothere.{small_buffer.zone}", "A").to_wire()
    pid = small_buffer.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # nothing reads the socket: its small buffer fills, then overflows
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            for _ in range(2000):
                client.sendto(query, (HOST, small_buffer.dns_port))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(
        lambda: (metric(small_buffer, "node_dns_dns_udp_kernel_drops_total") or 0) > 0,
        timeout=10,
        what="kernel drops counted",
    )


def test_a_buffer_past_the_kernel_cap_without_cap_net_admin_is_capped_with_one_warning(
    kubeconfig: Path,
) -> None:
    limit = sockets.rmem_max()
    assert limit is not None
    server = NodeDns(kubeconfig, extra_args=[f"--udp-receive-buffer={limit * 2}"])
    # Root could pass the cap with SO_RCVBUFFORCE: run without CAP_NET_ADMIN, as a pod does.
    server.argv = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", *server.argv]
    with server:
        assert metric(server, "node_dns_dns_udp_receive_buffer_bytes") == limit
        warnings = [line for line in server.logs().splitlines() if "UDP receive buffer" in line]
    assert len(warnings) == 1
    assert f"not the {limit * 2} asked for (--udp-receive-buffer)" in warnings[0]
    assert f"net.core.rmem_max={limit}" in warnings[0]


def test_as_root_a_buffer_past_the_kernel_cap_is_forced(kubeconfig: Path) -> None:
    limit = sockets.rmem_max()
    assert limit is not None and os.geteuid() == 0
    with NodeDns(kubeconfig, extra_args=[f"--udp-receive-buffer={limit * 2}"]) as server:
        assert metric(server, "node_dns_dns_udp_receive_buffer_bytes") == limit * 2
        assert "UDP receive buffer" not in server.logs()
