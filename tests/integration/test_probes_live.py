"""Reachability probes end to end: a real apiserver, node-dns as a process, nodes whose addresses
are loopback aliases (or namespace addresses) with real listeners, answers read with dnspython.

Only areas named in this module's probe file are probed (no default probe), so node-dns never
probes the documentation addresses other tests give their nodes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness import probe_targets as targets
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.harness.ports import free_port
from tests.integration.livedns import (
    AREAS_ANNOTATION,
    IPS_ANNOTATION,
    answers,
    metric,
    node_reader,
    unique,
    wait_for,
)

pytestmark = pytest.mark.controlplane

INTERVAL, FALL, RISE = 0.5, 2, 2
SUFFIX = unique("p")
TCP_AREA, WEB_AREA, TLS_AREA, DUAL_AREA, HOLE_AREA, FREE_AREA = (
    f"{word}-{SUFFIX}" for word in ("tcp", "web", "tls", "dual", "hole", "free")
)
TCP_HOSTS = [f"127.0.0.{51 + n}" for n in range(4)]
WEB_HOST, TLS_HOST, DUAL_V4 = "127.0.0.61", "127.0.0.62", "127.0.0.63"
CONVERGE = 15.0


class Ports:
    tcp = free_port(TCP_HOSTS[0])
    web = free_port(WEB_HOST)
    tls = free_port(TLS_HOST)
    dual = free_port("::1")
    hole = 8080


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> targets.Certificates:
    return targets.make_certificates(tmp_path_factory.mktemp("tls"), TLS_HOST, "node.probe.test")


@pytest.fixture(scope="module")
def namespace() -> Iterator[targets.Namespace]:
    with targets.Namespace() as ns, ns.tcp_listeners(Ports.hole):
        yield ns


@pytest.fixture(scope="module")
def server(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, certificates: targets.Certificates
) -> Iterator[NodeDns]:
    probe_file = tmp_path_factory.mktemp("probes") / "probes.yaml"
    probe_file.write_text(
        yaml.safe_dump(
            {
                "areas": {
                    TCP_AREA: f"tcp:{Ports.tcp}",
                    WEB_AREA: f"http://:{Ports.web}/healthz",
                    TLS_AREA: {"probe": f"https://:{Ports.tls}/", "ca_file": str(certificates.ca)},
                    DUAL_AREA: f"tcp:{Ports.dual}",
                    HOLE_AREA: {"probe": f"tcp:{Ports.hole}", "timeout": 0.25},
                    FREE_AREA: "none",
                }
            }
        )
    )
    kubeconfig, _ = node_reader(control_plane, "probes")
    args = [
        f"--probe-file={probe_file}",
        f"--probe-interval={INTERVAL}",
        "--probe-timeout=0.4",
        f"--probe-fall={FALL}",
        f"--probe-rise={RISE}",
        "--no-fail-open",
        "--debug-endpoints",
    ]
    with NodeDns(kubeconfig, extra_args=args) as running:
        yield running


CREATED: list[str] = []


def add_node(plane: ControlPlane, area: str, ips: str) -> str:
    name = unique("pnode")
    plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ips})
    CREATED.append(name)
    return name


@pytest.fixture(autouse=True)
def _delete_nodes(control_plane: ControlPlane) -> Iterator[None]:
    """Nodes of a test go with it: their addresses stop being probed (their listeners are gone,
    and a pile of failing targets would look like a self-fault to the next test)."""
    CREATED.clear()
    yield
    control_plane.delete_nodes(list(CREATED))


def converge(server: NodeDns, area: str, expected: set[str], rdtype: str = "A") -> float:
    """Wait until the area answers ``expected``; returns when it was first seen (monotonic)."""
    try:
        wait_for(
            lambda: answers(server, area, rdtype) == expected, timeout=CONVERGE, interval=0.02, what=area
        )
    except TimeoutError as error:
        seen = answers(server, area, rdtype)
        log = [line for line in server.logs().splitlines() if area in line or "probe" in line][-15:]
        raise AssertionError(
            f"{error}: wanted {expected}, answered {seen}; log:\n" + "\n".join(log)
        ) from None
    return time.monotonic()


@pytest.fixture(scope="module")
def tcp_targets() -> Iterator[list[targets.ThreadedTarget]]:
    running = [targets.ThreadedTarget(host, Ports.tcp).start() for host in TCP_HOSTS]
    yield running
    for target in running:
        target.stop()


def test_stopped_listener_leaves_within_fall_intervals_and_returns_after_rise(
    control_plane: ControlPlane, server: NodeDns, tcp_targets: list[targets.ThreadedTarget]
) -> None:
    for host in TCP_HOSTS:
        add_node(control_plane, TCP_AREA, host)
    converge(server, TCP_AREA, set(TCP_HOSTS))

    stopped = time.monotonic()
    tcp_targets[1].stop()
    left = converge(server, TCP_AREA, set(TCP_HOSTS) - {TCP_HOSTS[1]})
    # fall probes at a fixed cadence, plus the interval the stop may fall into; the slack covers a
    # loaded machine (the benchmark measures the distribution: docs/benchmarks.md).
    assert left - stopped <= FALL * INTERVAL + INTERVAL + 1.0

    tcp_targets[1].start()
    started = time.monotonic()
    back = converge(server, TCP_AREA, set(TCP_HOSTS))
    assert back - started <= RISE * INTERVAL + INTERVAL + 1.0
    assert metric(server, "node_dns_probe_results_total", area=TCP_AREA, result="failure")


def test_debug_zone_says_why_a_node_is_out_and_metrics_count_it(
    control_plane: ControlPlane, server: NodeDns, tcp_targets: list[targets.ThreadedTarget]
) -> None:
    area = TCP_AREA
    for host in TCP_HOSTS:
        add_node(control_plane, area, host)
    converge(server, area, set(TCP_HOSTS))
    tcp_targets[3].stop()
    try:
        converge(server, area, set(TCP_HOSTS) - {TCP_HOSTS[3]})
        status, text = server.http_get("/debug/zone")
        assert status == 200
        line = next(line for line in text.splitlines() if f" {area}: out" in line)
        assert f"{TCP_HOSTS[3]} not served (tcp:{Ports.tcp}: unreachable)" in line
        assert any(f" {area}: in: healthy; {TCP_HOSTS[0]} served" in x for x in text.splitlines())
        assert metric(server, "node_dns_probe_excluded_nodes", area=area) == 1
        assert metric(server, "node_dns_probe_verdicts_available") == 1
    finally:
        tcp_targets[3].start()
    converge(server, area, set(TCP_HOSTS))


def test_http_500_counts_as_down(control_plane: ControlPlane, server: NodeDns) -> None:
    web = targets.ThreadedTarget(WEB_HOST, Ports.web, http_status=200).start()
    helper = targets.ThreadedTarget("127.0.0.64", Ports.web, http_status=200).start()
    try:
        add_node(control_plane, WEB_AREA, WEB_HOST)
        add_node(control_plane, WEB_AREA, "127.0.0.64")
        converge(server, WEB_AREA, {WEB_HOST, "127.0.0.64"})
        web.http_status = 500
        converge(server, WEB_AREA, {"127.0.0.64"})
        web.http_status = 204
        converge(server, WEB_AREA, {WEB_HOST, "127.0.0.64"})
    finally:
        web.stop()
        helper.stop()


def test_tls_failure_counts_as_down(
    control_plane: ControlPlane, server: NodeDns, certificates: targets.Certificates, tmp_path: Path
) -> None:
    good = targets.ThreadedTarget(
        TLS_HOST, Ports.tls, http_status=200, tls=certificates.server_context()
    ).start()
    # Same port on another address, with a certificate from a CA the probe does not trust.
    other_ca = targets.make_certificates(tmp_path, "127.0.0.65", "node.probe.test")
    bad = targets.ThreadedTarget(
        "127.0.0.65", Ports.tls, http_status=200, tls=other_ca.server_context()
    ).start()
    try:
        add_node(control_plane, TLS_AREA, TLS_HOST)
        add_node(control_plane, TLS_AREA, "127.0.0.65")
        converge(server, TLS_AREA, {TLS_HOST})
    finally:
        good.stop()
        bad.stop()


def test_dead_ipv6_path_keeps_the_ipv4_answer(control_plane: ControlPlane, server: NodeDns) -> None:
    v4 = targets.ThreadedTarget(DUAL_V4, Ports.dual).start()
    v6 = targets.ThreadedTarget("::1", Ports.dual).start()
    try:
        add_node(control_plane, DUAL_AREA, f"{DUAL_V4},::1")
        converge(server, DUAL_AREA, {"::1"}, "AAAA")
        v6.stop()
        converge(server, DUAL_AREA, set(), "AAAA")
        assert answers(server, DUAL_AREA) == {DUAL_V4}
    finally:
        v4.stop()
        v6.stop()


def test_blackholed_address_is_down_by_timeout(
    control_plane: ControlPlane, server: NodeDns, namespace: targets.Namespace
) -> None:
    helper = targets.ThreadedTarget("127.0.0.66", Ports.hole).start()
    try:
        add_node(control_plane, HOLE_AREA, namespace.ns_ip)
        add_node(control_plane, HOLE_AREA, "127.0.0.66")
        converge(server, HOLE_AREA, {namespace.ns_ip, "127.0.0.66"})
        namespace.blackhole()
        converge(server, HOLE_AREA, {"127.0.0.66"})
        assert "timeout" in server.logs()
    finally:
        helper.stop()


def test_an_area_without_a_probe_is_never_touched(control_plane: ControlPlane, server: NodeDns) -> None:
    add_node(control_plane, FREE_AREA, "127.0.0.67")  # nothing listens there
    converge(server, FREE_AREA, {"127.0.0.67"})
    _, text = server.http_get("/debug/zone")
    assert f" {FREE_AREA}: in: healthy; 127.0.0.67 served (not probed)" in text


def test_cutting_our_own_path_to_every_target_empties_no_area(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A node-dns of its own (the guard counts every target it probes): four nodes whose
    addresses live in a namespace; our link to it goes down, then comes back."""
    area = f"self-{SUFFIX}"
    probe_file = tmp_path / "probes.yaml"
    probe_file.write_text(yaml.safe_dump({"areas": {area: "tcp:8081"}}))
    kubeconfig, _ = node_reader(control_plane, "selffault")
    args = [
        f"--probe-file={probe_file}",
        f"--probe-interval={INTERVAL}",
        "--probe-timeout=0.25",
        f"--probe-fall={FALL}",
        f"--probe-rise={RISE}",
        "--no-fail-open",
    ]
    with (
        targets.Namespace(extra=3) as ns,
        ns.tcp_listeners(8081),
        NodeDns(kubeconfig, extra_args=args) as server,
    ):
        for address in ns.ns_ips:
            add_node(control_plane, area, address)
        converge(server, area, set(ns.ns_ips))
        # The first round completes: every address has its verdict (reachable).
        wait_for(
            lambda: (metric(server, "node_dns_probe_results_total", area=area, result="success") or 0) >= 4,
            timeout=CONVERGE,
            what="first round",
        )
        assert metric(server, "node_dns_probe_self_fault") == 0
        failures = metric(server, "node_dns_probe_results_total", area=area, result="failure") or 0.0
        ns.cut()
        wait_for(
            lambda: metric(server, "node_dns_probe_self_fault") == 1, timeout=CONVERGE, what="self-fault"
        )
        # Every target fails fall times over and more: the answer stays whole.
        wait_for(
            lambda: (
                (metric(server, "node_dns_probe_results_total", area=area, result="failure") or 0)
                >= failures + len(ns.ns_ips) * (FALL + 2)
            ),
            timeout=CONVERGE,
            what="failures piling up",
        )
        assert answers(server, area) == set(ns.ns_ips), server.logs()[-3000:]
        assert metric(server, "node_dns_probe_self_faults_total") == 1
        ns.restore()
        wait_for(lambda: metric(server, "node_dns_probe_self_fault") == 0, timeout=CONVERGE, what="recovery")
        successes = metric(server, "node_dns_probe_results_total", area=area, result="success") or 0.0
        wait_for(
            lambda: (
                (metric(server, "node_dns_probe_results_total", area=area, result="success") or 0)
                >= successes + 2 * len(ns.ns_ips)
            ),
            timeout=CONVERGE,
            what="probes passing again",
        )
        assert answers(server, area) == set(ns.ns_ips)
        assert server.logs().count("self-fault:") == 1  # logged once
