"""Fail-open in the real process: an area whose nodes all turn NotReady keeps its addresses."""

from __future__ import annotations

from collections.abc import Callable

import dns.rcode
import pytest

from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION
from tests.reliability.common import addresses, ask, metric, wait_until

pytestmark = pytest.mark.controlplane


def test_all_nodes_not_ready_serves_all_addresses_and_fail_open_off_serves_nodata(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    area = unique_name("fo")
    nodes = {unique_name("node"): "192.0.2.81", unique_name("node"): "192.0.2.82"}
    for node, ip in nodes.items():
        control_plane.create_node(node, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ip})
    name = f"{area}.{DEFAULT_ZONE}"
    every = set(nodes.values())
    with (
        NodeDns(control_plane.kubeconfig) as open_,
        NodeDns(control_plane.kubeconfig, extra_args=["--no-fail-open"]) as strict,
    ):
        for server in (open_, strict):
            wait_until(lambda s=server: addresses(ask(s.dns_address, name)) == every, timeout=10, what="both")
        first, second = list(nodes)
        control_plane.set_ready(first, False)
        for server in (open_, strict):  # one healthy node left: it alone, in both modes
            wait_until(lambda s=server: addresses(ask(s.dns_address, name)) == {nodes[second]}, timeout=10)
        control_plane.set_ready(second, False)

        reply = wait_until(lambda: ask(strict.dns_address, name), timeout=10)
        wait_until(lambda: not ask(strict.dns_address, name).answer, timeout=10, what="strict NODATA")
        reply = ask(strict.dns_address, name)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer == []
        assert [rrset.rdtype for rrset in reply.authority] == [6]  # SOA: NODATA, not NXDOMAIN

        wait_until(lambda: addresses(ask(open_.dns_address, name)) == every, timeout=10, what="fail-open")
        _, text = open_.http_get("/metrics")
        assert metric(text, "node_dns_area_failed_open", f'area="{area}"') == 1.0
        _, text = strict.http_get("/metrics")
        assert metric(text, "node_dns_area_failed_open", f'area="{area}"') is None
        assert sum(f"area {area} has 0 of 2 nodes healthy" in line for line in open_.logs().splitlines()) == 1

        control_plane.set_ready(first, True)
        wait_until(lambda: addresses(ask(open_.dns_address, name)) == {nodes[first]}, timeout=10)
        wait_until(
            lambda: (
                metric(open_.http_get("/metrics")[1], "node_dns_area_failed_open", f'area="{area}"') is None
            ),
            timeout=5,
        )
        assert f"area {area} is back above the fail-open threshold" in open_.logs()
