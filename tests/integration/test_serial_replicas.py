"""Three replicas with leader election, started apart while unrelated objects change.

Each replica runs with exactly the chart's rights (the least-privilege ServiceAccount of the
leader election tests). They must answer the same SOA serial for the same content, whatever
their start times; only the leader sends NOTIFY; killing it moves NOTIFY duty to the next one.
A test-side UDP socket plays the secondary: it acknowledges each NOTIFY and records its serial.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

from tests.harness import ControlPlane, Kube, NodeDns
from tests.harness.kube import wait_for
from tests.integration import recordkit as rk
from tests.integration.test_leader_election import TIMINGS, Cluster, least_privilege, readyz
from tests.integration.test_transfers import metric

pytestmark = pytest.mark.controlplane
ZONE = "lb.example.net"


class NotifyReceiver:
    """A UDP socket that acknowledges NOTIFY (as a secondary does) and keeps the serials seen."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.serials: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            message = dns.message.from_wire(data)
            if message.opcode() != dns.opcode.NOTIFY:
                continue
            if message.answer:
                self.serials.append(int(message.answer[0][0].serial))
            reply = dns.message.make_response(message)
            self.sock.sendto(reply.to_wire(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class OneAddress:
    """A UDP front on one address: each query goes to the next replica in turn, as a Service
    spreads them; the reply is relayed back to the client."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.forwarded = [0] * len(backends)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            index = turn % len(self.backends)
            turn += 1
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
                upstream.settimeout(2)
                upstream.sendto(data, self.backends[index])
                reply, _ = upstream.recvfrom(4096)
            self.forwarded[index] += 1
            self.sock.sendto(reply, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def soa_serial(proc: NodeDns) -> int:
    reply = dns.query.udp(dns.message.make_query(ZONE, "SOA"), proc.address, port=proc.dns_port, timeout=2)
    return int(reply.answer[0][0].serial)


def answer(proc: NodeDns, name: str) -> list[str]:
    reply = dns.query.udp(dns.message.make_query(name, "A"), proc.address, port=proc.dns_port, timeout=2)
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def unrelated_writes(kube: Kube, namespace: str, count: int) -> None:
    """Objects node-dns does not watch: they move the cluster's resourceVersion, nothing else."""
    for _ in range(count):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": rk.unique("noise")}}
        kube.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)


@pytest.fixture
def cluster(control_plane: ControlPlane, unique_name: Callable[[str], str]) -> Cluster:
    return least_privilege(control_plane, unique_name)


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    got = NotifyReceiver()
    yield got
    got.close()


def replica(cluster: Cluster, index: int, receiver: NotifyReceiver) -> NodeDns:
    return NodeDns(
        cluster.kubeconfig,
        extra_args=[
            "--leader-elect",
            f"--leader-lease-name={cluster.lease}",
            f"--leader-lease-namespace={cluster.namespace}",
            f"--leader-identity=replica-{index}",
            "--no-leader-record-events",
            f"--notify=127.0.0.1:{receiver.port}",
            *TIMINGS,
        ],
    )


def notifies(proc: NodeDns) -> float:
    return metric(proc, "node_dns_notify_sent_total")


def test_replicas_started_apart_agree_and_only_the_leader_notifies(
    cluster: Cluster, receiver: NotifyReceiver
) -> None:
    kube = cluster.plane.kube
    area = rk.unique("serial")
    nodes = [rk.node(kube, areas=area, ips=f"192.0.2.{i + 40}") for i in range(3)]
    procs: dict[str, NodeDns] = {}
    try:
        for index in range(3):
            unrelated_writes(kube, cluster.namespace, 5)
            proc = procs[f"replica-{index}"] = replica(cluster, index, receiver)
            proc.start()
            proc.wait_ready(30)
        serials = {name: soa_serial(proc) for name, proc in procs.items()}
        assert len(set(serials.values())) == 1, serials
        front = OneAddress([p.dns_address for p in procs.values()])
        try:  # what a secondary or a monitor sees through one address: one serial
            seen = {
                int(
                    dns.query.udp(
                        dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=front.port, timeout=3
                    )
                    .answer[0][0]
                    .serial
                )
                for _ in range(30)
            }
            assert seen == {serials["replica-0"]} and front.forwarded == [10, 10, 10]
        finally:
            front.close()
        # the later ones listed at a later resourceVersion, and took the leader's serial instead
        for later in ("replica-1", "replica-2"):
            assert "the leader's for the same content" in procs[later].logs(), procs[later].logs()

        kube.set_ready(nodes[0], False)
        name = f"{area}.{ZONE}"
        for proc in procs.values():
            wait_for(lambda p=proc: "192.0.2.40" not in answer(p, name), timeout=20, what="the flip")
        wait_for(lambda: len({soa_serial(p) for p in procs.values()}) == 1, timeout=20, what="one serial")
        flipped = soa_serial(procs["replica-0"])
        assert flipped != serials["replica-0"]
        wait_for(lambda: flipped in receiver.serials, timeout=20, what="the NOTIFY")

        leader = _leader(procs)
        sent = {n: notifies(p) for n, p in procs.items()}
        assert sent[leader] >= 1 and all(v == 0 for n, v in sent.items() if n != leader), sent

        procs[leader].kill()
        survivors = {n: p for n, p in procs.items() if n != leader}
        wait_for(lambda: _leader(survivors, missing_ok=True), timeout=30, what="a new leader")
        successor = _leader(survivors)
        kube.set_ready(nodes[0], True)
        for proc in survivors.values():
            wait_for(lambda p=proc: "192.0.2.40" in answer(p, name), timeout=20, what="the flip back")
        wait_for(lambda: len({soa_serial(p) for p in survivors.values()}) == 1, timeout=20, what="one serial")
        back = soa_serial(survivors[successor])
        wait_for(lambda: back in receiver.serials, timeout=15, what="NOTIFY from the new leader")
        assert notifies(survivors[successor]) >= 1
        assert all(notifies(p) == 0 for n, p in survivors.items() if n != successor)
    finally:
        for proc in procs.values():
            proc.stop(5)
        for name, proc in procs.items():
            assert "Traceback" not in proc.logs(), f"{name}:\n{proc.logs()}"


def _leader(procs: dict[str, NodeDns], *, missing_ok: bool = False) -> Any:
    found = [n for n, p in procs.items() if p.running and readyz(p).get("leader_is_leader")]
    if missing_ok:
        return found[0] if len(found) == 1 else None
    assert len(found) == 1, found
    return found[0]
