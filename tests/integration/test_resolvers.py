"""The path users deploy: a real resolver in front of node-dns, CNAMEs from a parent zone.

CoreDNS (built by `make tools`) serves the parent zone with the `file` plugin and forwards the
node-dns subzone; unbound (Debian) serves the parent as an auth-zone and reaches node-dns through
a stub-zone. The configuration texts below are the ones the README shows.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.harness.controlplane import ControlPlane, make_workdir, tool
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns
from tests.harness.ports import free_dns_port

pytestmark = pytest.mark.controlplane

ZONE = "lb.example.net"

PARENT_ZONE = """\
$ORIGIN example.net.
@    3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 3600 1209600 60
@    3600 IN NS  ns.example.net.
ns   3600 IN A   127.0.0.1
git   60  IN CNAME home.lb.example.net.
"""

COREFILE = """\
example.net:{port} {{
    bind 127.0.0.1
    file {zonefile}
}}
lb.example.net:{port} {{
    bind 127.0.0.1
    forward . 127.0.0.1:{node_dns_port}
}}
"""

UNBOUND_CONF = """\
server:
    interface: 127.0.0.1
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: "{workdir}/unbound.pid"
    logfile: ""
    use-syslog: no
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    cache-max-ttl: 0
    cache-max-negative-ttl: 0
auth-zone:
    name: "example.net."
    zonefile: "{zonefile}"
    for-upstream: yes
    for-downstream: no
stub-zone:
    name: "lb.example.net."
    stub-addr: 127.0.0.1@{node_dns_port}
"""


def _query(port: int, name: str, rdtype: str) -> dns.message.Message:
    request = dns.message.make_query(name, rdtype)
    return dns.query.udp(request, "127.0.0.1", port=port, timeout=2)


def _addresses(response: dns.message.Message, rdtype: str) -> set[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return {rr.to_text() for rrset in response.answer if rrset.rdtype == wanted for rr in rrset}


def _cnames(response: dns.message.Message) -> set[str]:
    return {rr.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.CNAME for rr in rrset}


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class _Daemon:
    """A resolver process on a free loopback port, killed and cleaned up on exit."""

    def __init__(self, argv: list[str], workdir: Path, port: int) -> None:
        self.port = port
        self.workdir = workdir
        self.log = workdir / "daemon.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)

    def wait_answering(self, name: str) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"resolver exited: {self.log.read_text()[-2000:]}")
            _query(self.port, name, "SOA")
            return True

        _wait_for(answers, timeout=15)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def home_nodes(control_plane: ControlPlane) -> Iterator[list[str]]:
    names = [f"resolver-home-{i}" for i in range(2)]
    control_plane.create_node(names[0], annotations={AREAS_ANNOTATION: "home", IPS_ANNOTATION: "192.0.2.71"})
    control_plane.create_node(
        names[1], annotations={AREAS_ANNOTATION: "home", IPS_ANNOTATION: "192.0.2.72, 2001:db8::72"}
    )
    yield names
    for name in names:
        control_plane.delete_node(name, missing_ok=True)


@pytest.fixture(scope="module")
def node_dns(control_plane: ControlPlane, home_nodes: list[str]) -> Iterator[NodeDns]:
    with NodeDns(control_plane.kubeconfig, zone=ZONE, extra_args=["--record-ttl=1"]) as server:
        yield server


@pytest.fixture(scope="module")
def coredns(node_dns: NodeDns) -> Iterator[_Daemon]:
    workdir = make_workdir("coredns")
    zonefile = workdir / "example.net.zone"
    zonefile.write_text(PARENT_ZONE)
    port = free_dns_port()
    corefile = workdir / "Corefile"
    corefile.write_text(COREFILE.format(port=port, zonefile=zonefile, node_dns_port=node_dns.dns_port))
    daemon = _Daemon([str(tool("coredns")), "-conf", str(corefile)], workdir, port)
    try:
        daemon.wait_answering("example.net")
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def unbound(node_dns: NodeDns) -> Iterator[_Daemon]:
    binary = shutil.which("unbound") or "/usr/sbin/unbound"
    workdir = make_workdir("unbound")
    zonefile = workdir / "example.net.zone"
    zonefile.write_text(PARENT_ZONE)
    port = free_dns_port()
    conf = workdir / "unbound.conf"
    conf.write_text(
        UNBOUND_CONF.format(port=port, workdir=workdir, zonefile=zonefile, node_dns_port=node_dns.dns_port)
    )
    daemon = _Daemon([binary, "-d", "-c", str(conf)], workdir, port)
    try:
        daemon.wait_answering("example.net")
        yield daemon
    finally:
        daemon.stop()


@pytest.mark.parametrize("resolver", ["coredns", "unbound"])
def test_service_cname_resolves_to_healthy_area_addresses(
    resolver: str, request: pytest.FixtureRequest
) -> None:
    daemon: _Daemon = request.getfixturevalue(resolver)
    response = _query(daemon.port, "git.example.net", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert _cnames(response) == {"home.lb.example.net."}
    assert _addresses(response, "A") == {"192.0.2.71", "192.0.2.72"}


@pytest.mark.parametrize("resolver", ["coredns", "unbound"])
def test_service_cname_resolves_aaaa(resolver: str, request: pytest.FixtureRequest) -> None:
    daemon: _Daemon = request.getfixturevalue(resolver)
    response = _query(daemon.port, "git.example.net", "AAAA")
    assert _addresses(response, "AAAA") == {"2001:db8::72"}


@pytest.mark.parametrize("resolver", ["coredns", "unbound"])
def test_not_ready_node_leaves_the_resolved_answer(
    resolver: str, request: pytest.FixtureRequest, control_plane: ControlPlane, home_nodes: list[str]
) -> None:
    daemon: _Daemon = request.getfixturevalue(resolver)
    control_plane.set_ready(home_nodes[0], False)
    try:
        _wait_for(lambda: _addresses(_query(daemon.port, "git.example.net", "A"), "A") == {"192.0.2.72"})
    finally:
        control_plane.set_ready(home_nodes[0], True)
    _wait_for(
        lambda: _addresses(_query(daemon.port, "git.example.net", "A"), "A") == {"192.0.2.71", "192.0.2.72"}
    )


@pytest.mark.parametrize("resolver", ["coredns", "unbound"])
def test_unknown_area_is_nxdomain_through_the_resolver(resolver: str, request: pytest.FixtureRequest) -> None:
    daemon: _Daemon = request.getfixturevalue(resolver)
    response = _query(daemon.port, "nowhere.lb.example.net", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
