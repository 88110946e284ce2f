"""The receive path's own metrics on a real server: kernel drops on the DNS socket, the receive
buffer it was granted (and the warning when the kernel caps it), and the event-loop lag."""

from __future__ import annotations

import os
import signal
import socket
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
    with NodeDns(kubeconfig, extra_args=[f"--udp-receive-buffer={SMALL_BUFFER}"]) as server:
        yield server


def test_the_event_loop_lag_histogram_is_exported_and_observing(small_buffer: NodeDns) -> None:
    wait_for(
        lambda: (metric(small_buffer, "node_dns_event_loop_lag_seconds_count") or 0) > 0,
        timeout=10,
        what="lag observations",
    )
    assert metric(small_buffer, "node_dns_event_loop_lag_seconds_bucket", le="+Inf") is not None
    assert metric(small_buffer, "node_dns_event_loop_lag_max_seconds") is not None


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
