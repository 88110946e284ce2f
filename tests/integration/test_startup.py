"""Startup: until a complete node list has been received node-dns answers SERVFAIL (never
NXDOMAIN or NODATA) and /readyz is 503, whatever keeps the list from arriving; bad settings end
the process at once with exit code 2 and one line on stderr."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.harness.controlplane import ControlPlane, make_workdir
from tests.harness.kube import write_kubeconfig
from tests.harness.nodedns import NodeDns
from tests.harness.ports import free_dns_port, free_port
from tests.integration.livedns import (
    AREAS_ANNOTATION,
    IPS_ANNOTATION,
    NODE_READER,
    answers,
    fqdn,
    node_reader,
    udp,
    unbound_identity,
    unique,
    wait_for,
)

pytestmark = pytest.mark.controlplane

OBSERVE = 1.5  # seconds a blind server is watched for; it retries its list about every second


def _answering(server: NodeDns) -> bool:
    try:
        udp(server, f"probe.{server.zone}")
    except dns.exception.Timeout:
        return False
    return True


def _blind_rcodes(server: NodeDns, area: str) -> set[tuple[str, str, int]]:
    """Every rcode seen for in-zone names during OBSERVE seconds (the process must stay up)."""
    seen: set[tuple[str, str, int]] = set()
    deadline = time.monotonic() + OBSERVE
    while time.monotonic() < deadline:
        for qname, rdtype in (
            (fqdn(area, server), "A"),
            (f"nosuch.{server.zone}", "A"),
            (server.zone, "SOA"),
        ):
            seen.add((qname, rdtype, udp(server, qname, rdtype).rcode()))
        time.sleep(0.1)
    assert server.running
    return seen


def _assert_blind(server: NodeDns, area: str) -> None:
    wait_for(lambda: _answering(server), timeout=10, what="DNS listener up")

    rcodes = {rcode for _, _, rcode in _blind_rcodes(server, area)}
    status, body = server.http_get("/readyz")
    live, _ = server.http_get("/healthz")

    assert rcodes == {dns.rcode.SERVFAIL}
    assert status == 503
    assert json.loads(body)["synced"] is False
    assert live == 200  # alive: restarting would not help, the apiserver is the problem
    assert udp(server, ".", "NS").rcode() == dns.rcode.REFUSED  # out of zone stays fast and exact


@pytest.fixture
def area(control_plane: ControlPlane) -> Iterator[str]:
    """An area with one ready node in the cluster, so a blind server would have something to hide."""
    name, area = unique("node"), unique("area")
    control_plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.1"})
    yield area
    control_plane.delete_node(name, missing_ok=True)


# --- blind starts ------------------------------------------------------------------------------------


def test_servfail_and_not_ready_while_nothing_listens_on_the_apiserver_port(
    control_plane: ControlPlane, area: str, tmp_path: Path
) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    kubeconfig = write_kubeconfig(tmp_path / "dead.yaml", dead, "token", ca_data=control_plane.ca_data)
    server = NodeDns(kubeconfig).start()
    try:
        _assert_blind(server, area)
    finally:
        server.stop()


def test_servfail_and_not_ready_with_a_token_that_is_forbidden_to_list_nodes(
    control_plane: ControlPlane, area: str
) -> None:
    kubeconfig, _, _ = unbound_identity(control_plane, "forbidden")
    server = NodeDns(kubeconfig).start()
    try:
        _assert_blind(server, area)
    finally:
        server.stop()


def test_forbidden_start_serves_once_the_binding_appears(control_plane: ControlPlane, area: str) -> None:
    kubeconfig, namespace, account = unbound_identity(control_plane, "late-bind")
    server = NodeDns(kubeconfig).start()
    try:
        wait_for(lambda: _answering(server), timeout=10, what="DNS listener up")
        assert udp(server, fqdn(area, server)).rcode() == dns.rcode.SERVFAIL
        role = unique("reader")
        control_plane.create_cluster_role(role, NODE_READER)

        control_plane.bind_cluster_role(role, namespace, account)

        server.wait_ready(timeout=15)
        assert answers(server, area) == {"192.0.2.1"}
        # and the watch works too: a change after recovery is seen
        late, late_area = unique("node"), unique("area")
        control_plane.create_node(
            late, annotations={AREAS_ANNOTATION: late_area, IPS_ANNOTATION: "192.0.2.2"}
        )
        try:
            wait_for(lambda: answers(server, late_area) == {"192.0.2.2"}, timeout=15, what="watch recovered")
        finally:
            control_plane.delete_node(late, missing_ok=True)
    finally:
        server.stop()


def test_startup_answers_servfail_or_the_full_answer_never_nxdomain(
    control_plane: ControlPlane, area: str
) -> None:
    kubeconfig, _ = node_reader(control_plane, "race")
    server = NodeDns(kubeconfig).start()
    request = dns.message.make_query(fqdn(area, server), "A")
    seen: list[tuple[int, frozenset[str]]] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                reply = dns.query.udp(request, "127.0.0.1", port=server.dns_port, timeout=0.2)
            except (dns.exception.Timeout, OSError):
                continue  # not listening yet
            addresses = frozenset(rd.to_text() for rrset in reply.answer for rd in rrset)
            seen.append((reply.rcode(), addresses))
            if reply.rcode() == dns.rcode.NOERROR:
                break
        assert server.ready()
    finally:
        server.stop()

    assert seen, "node-dns never answered"
    assert set(seen) <= {(dns.rcode.SERVFAIL, frozenset()), (dns.rcode.NOERROR, frozenset({"192.0.2.1"}))}
    assert seen[-1] == (dns.rcode.NOERROR, frozenset({"192.0.2.1"}))


def test_readyz_reports_synced_and_the_serial_once_listed(control_plane: ControlPlane) -> None:
    kubeconfig, _ = node_reader(control_plane, "ready")
    with NodeDns(kubeconfig) as server:
        status, body = server.http_get("/readyz")

    detail = json.loads(body)
    assert status == 200
    assert detail["synced"] is True
    assert detail["serial"] > 0


# --- bad settings ------------------------------------------------------------------------------------


def _run_cli(
    *flags: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    workdir = make_workdir("node-dns-cli-")
    port = free_dns_port()
    argv = [
        sys.executable,
        "-m",
        "node_dns",
        "serve",
        "--zone=lb.example.net",
        "--nameservers=ns1.lb.example.net=127.0.0.1",
        "--soa-email=hostmaster@example.net",
        "--dns-address=127.0.0.1",
        f"--dns-port={port}",
        "--http-address=127.0.0.1",
        f"--http-port={free_port()}",
        *flags,
    ]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NODE_DNS_")}
    clean["KUBECONFIG"] = str(workdir / "missing-kubeconfig")
    started = time.monotonic()
    done = subprocess.run(argv, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    # nothing was bound: the port is still free for UDP and TCP
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", port))
    return done, elapsed


@pytest.mark.parametrize(
    ("flags", "env", "named"),
    [
        (["--record-ttl=-5"], {}, "record-ttl"),
        (["--zone=not_a_zone"], {}, "zone"),
        ([], {"NODE_DNS_EDNS_UDP_SIZE": "100"}, "edns-udp-size"),
        (["--nameservers=ns1.lb.example.net"], {}, "nameservers"),
        (["--kubeconfig=/nonexistent/kubeconfig"], {}, "kubeconfig"),
    ],
    ids=["flag", "zone", "env", "cross-field", "kubeconfig"],
)
def test_bad_setting_exits_2_with_one_stderr_line(flags: list[str], env: dict[str, str], named: str) -> None:
    done, elapsed = _run_cli(*flags, env=env)

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"--{named}" in lines[0]
    assert "NODE_DNS_" + named.replace("-", "_").upper() in lines[0]
    assert elapsed < 10
