"""``--workers 2`` against a real apiserver: two processes answer UDP on one port from the zone the
parent publishes. Queries come from many source ports, so SO_REUSEPORT spreads them over both
workers, and every answer is checked, not a sample. A worker killed with SIGKILL is restarted;
workers go when the parent is killed; /metrics adds the workers' counts up; TCP, transfers (to a
real NSD secondary), NOTIFY and TSIG keep working with UDP in the workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.harness import ControlPlane, Kube, NodeDns
from tests.harness.kube import wait_for
from tests.harness.ports import free_dns_port
from tests.harness.secondaries import KEY_NAME, Nsd, Secondary
from tests.integration import recordkit as rk
from tests.integration.livedns import metric
from tests.integration.test_transfers import KEYRING, SECRET, transfer_args

pytestmark = pytest.mark.controlplane
ZONE = "lb.example.net"
PORTS = 64
"""Source ports per round: the chance that SO_REUSEPORT sends all of them to one of two workers is 2^-63."""


@dataclass
class Setup:
    server: NodeDns
    secondary: Secondary
    area: str
    nodes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def setup(control_plane: ControlPlane) -> Iterator[Setup]:
    kube = control_plane.kube
    area = rk.unique("workers")
    nodes = [rk.node(kube, areas=area, ips=f"192.0.2.{i + 20}") for i in range(3)]
    port = free_dns_port()
    placeholder = Nsd(ZONE, ("127.0.0.1", 0), SECRET, port=port)
    args = [*transfer_args(placeholder), "--workers=2"]
    with NodeDns(control_plane.kubeconfig, extra_args=args) as server:
        secondary = Nsd(ZONE, server.dns_address, SECRET, port=port).start()
        try:
            yield Setup(server, secondary, area, nodes)
        finally:
            secondary.stop()
    kube.delete_nodes(nodes)


def readyz(server: NodeDns) -> dict[str, object]:
    _, body = server.http_get("/readyz")
    return json.loads(body)  # type: ignore[no-any-return]


def worker_pids(server: NodeDns) -> dict[int, int | None]:
    workers = readyz(server)["workers"]
    assert isinstance(workers, list)
    return {int(w["worker"]): w["pid"] for w in workers}


def round_of_answers(server: NodeDns, name: str, rdtype: str = "A") -> list[dns.message.Message]:
    """One query from each of PORTS fresh sockets (distinct source ports), all sent before any
    reply is read; every reply is returned (a missing one fails the round)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(PORTS)]
    try:
        queries = []
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(3)
            query = dns.message.make_query(name, rdtype)
            queries.append(query)
            sock.sendto(query.to_wire(), server.dns_address)
        replies = []
        for sock, query in zip(sockets, queries, strict=True):
            data, _ = sock.recvfrom(65535)
            reply = dns.message.from_wire(data)
            assert reply.id == query.id
            replies.append(reply)
        return replies
    finally:
        for sock in sockets:
            sock.close()


def addresses(reply: dns.message.Message) -> frozenset[str]:
    return frozenset(rd.to_text() for rrset in reply.answer for rd in rrset)


def soa_serials(replies: list[dns.message.Message]) -> set[int]:
    return {int(reply.answer[0][0].serial) for reply in replies}


def per_worker(server: NodeDns) -> list[float]:
    return [metric(server, "node_dns_worker_responses_total", worker=str(i)) or 0.0 for i in (0, 1)]


def test_a_node_change_is_answered_identically_by_every_worker(setup: Setup, kube: Kube) -> None:
    server, name = setup.server, f"{setup.area}.{ZONE}"
    before = per_worker(server)
    kube.annotate(setup.nodes[0], {rk.IPS_ANNOTATION: "198.51.100.20"})
    expected = frozenset({"198.51.100.20", "192.0.2.21", "192.0.2.22"})
    wait_for(
        lambda: {addresses(r) for r in round_of_answers(server, name)} == {expected},
        timeout=10,
        what="every worker to answer the change",
    )

    answers = round_of_answers(server, name)
    serials = round_of_answers(server, ZONE, "SOA")

    assert {(r.rcode(), addresses(r)) for r in answers} == {(dns.rcode.NOERROR, expected)}
    assert len(soa_serials(serials)) == 1
    tcp = dns.query.tcp(dns.message.make_query(ZONE, "SOA"), server.address, port=server.dns_port, timeout=3)
    assert soa_serials([tcp]) == soa_serials(serials)  # TCP, answered by the parent, agrees
    wait_for(
        lambda: all(now > then for now, then in zip(per_worker(server), before, strict=True)),
        timeout=10,
        what="both workers' counters to move",
    )


def test_metrics_add_the_workers_counts_up(setup: Setup) -> None:
    server = setup.server
    round_of_answers(server, f"{setup.area}.{ZONE}")

    def consistent() -> bool:
        workers = sum(per_worker(server))
        udp = metric(server, "node_dns_dns_request_duration_seconds_count", proto="udp") or 0.0
        return workers > 0 and workers == udp

    wait_for(consistent, timeout=10, what="worker responses to equal the UDP duration count")
    assert metric(server, "node_dns_workers") == 2
    assert metric(server, "node_dns_worker_ready", worker="0") == 1
    assert metric(server, "node_dns_dns_udp_kernel_drops_total") is not None
    assert metric(server, "node_dns_dns_udp_receive_buffer_bytes") is not None
    wait_for(
        lambda: (metric(server, "node_dns_worker_event_loop_lag_seconds_count") or 0) > 0,
        timeout=10,
        what="worker loop lag observations",
    )
    wait_for(
        lambda: (metric(server, "node_dns_dns_udp_receive_wait_seconds_count") or 0) > 0,
        timeout=10,
        what="the workers' receive waits in the parent's histogram",
    )


def test_tsig_signed_queries_over_udp_and_transfers_over_tcp_work_with_workers(setup: Setup) -> None:
    server = setup.server
    query = dns.message.make_query(ZONE, "SOA")
    query.use_tsig(KEYRING, keyname=f"{KEY_NAME}.")
    signed = [dns.query.udp(query, server.address, port=server.dns_port, timeout=3) for _ in range(8)]
    assert all(r.had_tsig and r.answer[0].rdtype == dns.rdatatype.SOA for r in signed)

    xfr = dns.query.xfr(server.address, ZONE, port=server.dns_port, keyring=KEYRING, keyname=f"{KEY_NAME}.")
    records = [rrset for message in xfr for rrset in message.answer]
    assert records[0].rdtype == dns.rdatatype.SOA and records[-1].rdtype == dns.rdatatype.SOA


def test_a_change_reaches_the_secondary_at_the_workers_serial(setup: Setup, kube: Kube) -> None:
    server, name = setup.server, f"{setup.area}.{ZONE}"
    kube.set_ready(setup.nodes[1], False)
    wait_for(
        lambda: all("192.0.2.21" not in addresses(r) for r in round_of_answers(server, name)),
        timeout=10,
        what="the workers to drop the node",
    )
    (serial,) = soa_serials(round_of_answers(server, ZONE, "SOA"))
    wait_for(lambda: setup.secondary.serial() == serial, timeout=30, what=f"NSD at serial {serial}")
    kube.set_ready(setup.nodes[1], True)
    wait_for(
        lambda: all("192.0.2.21" in addresses(r) for r in round_of_answers(server, name)),
        timeout=10,
        what="the workers to serve the node again",
    )


class Querier:
    """Asks one name from a fresh source port each time, ~200 a second, and keeps every outcome."""

    def __init__(self, server: NodeDns, name: str) -> None:
        self.server, self.name = server, name
        self.answers: list[frozenset[str]] = []
        self.wrong: list[str] = []
        self.missing = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Querier:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            query = dns.message.make_query(self.name, "A")
            try:
                reply = dns.query.udp(query, self.server.address, port=self.server.dns_port, timeout=2)
            except dns.exception.Timeout:
                self.missing += 1
                continue
            except Exception as error:  # recorded, never ends the thread
                self.wrong.append(repr(error))
                continue
            if reply.rcode() != dns.rcode.NOERROR:
                self.wrong.append(dns.rcode.to_text(reply.rcode()))
            self.answers.append(addresses(reply))
            time.sleep(0.005)


def test_a_worker_killed_is_restarted_and_answers_stay_right(setup: Setup) -> None:
    server, name = setup.server, f"{setup.area}.{ZONE}"
    expected = {addresses(r) for r in round_of_answers(server, name)}
    assert len(expected) == 1
    victim = worker_pids(server)[0]
    assert victim is not None
    restarts = metric(server, "node_dns_worker_restarts_total", worker="0") or 0.0

    with Querier(server, name) as querier:
        wait_for(lambda: len(querier.answers) >= 50, timeout=10, what="answers before the kill")
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: worker_pids(server)[0] not in (None, victim) and server.ready(),
            timeout=20,
            what="worker 0 restarted and ready",
        )
        seen = len(querier.answers)
        wait_for(lambda: len(querier.answers) >= seen + 50, timeout=10, what="answers after the restart")

    assert querier.wrong == []
    assert set(querier.answers) == expected
    # Only what sat in the killed worker's socket buffer can be lost: a handful at this rate.
    assert querier.missing <= 3, f"{querier.missing} queries unanswered out of {len(querier.answers)}"
    assert metric(server, "node_dns_worker_restarts_total", worker="0") == restarts + 1
    logged = [line for line in server.logs().splitlines() if f"(pid {victim}) was killed by SIGKILL" in line]
    assert len(logged) == 1, logged
    assert {addresses(r) for r in round_of_answers(server, name)} == expected  # both workers again


def test_workers_exit_when_the_parent_is_killed(control_plane: ControlPlane) -> None:
    server = NodeDns(control_plane.kubeconfig, extra_args=["--workers=2"])
    with server:
        pids = [pid for pid in worker_pids(server).values() if pid is not None]
        assert len(pids) == 2
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # the parent alone, not its process group

        def gone(pid: int) -> bool:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    return stat.read().split(")")[-1].split()[0] == "Z"  # exited, not yet reaped
            except FileNotFoundError:
                return True

        wait_for(lambda: all(gone(pid) for pid in pids), timeout=10, what="workers to exit")
