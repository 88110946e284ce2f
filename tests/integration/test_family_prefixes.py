"""v4.<name> / v6.<name> against a running node-dns: one address family of an area or Service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.nodedns import NodeDns
from tests.integration import recordkit as rk

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def server(control_plane: ControlPlane) -> Iterator[NodeDns]:
    with NodeDns(control_plane.kubeconfig, extra_args=["--services"]) as running:
        yield running


def test_prefixes_split_a_dual_stack_area(kube: Kube, server: NodeDns) -> None:
    area = rk.unique("dual")
    rk.node(kube, areas=area, ips="192.0.2.101,2001:db8::101")
    rk.node(kube, areas=area, ips="2001:db8::102")
    # Both nodes are in once the area answers both IPv6 addresses (the A answer has one node's).
    rk.converge(server, area, ("NOERROR", ["2001:db8::101", "2001:db8::102"]), rdtype="AAAA")

    assert rk.answer(server, f"v4.{area}", "A") == ("NOERROR", ["192.0.2.101"])
    assert rk.nodata(rk.ask(server, f"v4.{area}", "AAAA"))
    assert rk.answer(server, f"v6.{area}", "AAAA") == ("NOERROR", ["2001:db8::101", "2001:db8::102"])
    assert rk.nodata(rk.ask(server, f"v6.{area}", "A"))
    assert rk.answer(server, f"V4.{area.upper()}", "A") == ("NOERROR", ["192.0.2.101"])
    assert rk.answer(server, f"v4.nothere-{area}", "A") == ("NXDOMAIN", [])


def test_prefixed_names_follow_the_area(kube: Kube, server: NodeDns) -> None:
    area = rk.unique("moving")
    name = rk.node(kube, areas=area, ips="192.0.2.111")
    rk.converge(server, f"v4.{area}", ("NOERROR", ["192.0.2.111"]))

    kube.annotate(name, {rk.IPS_ANNOTATION: "192.0.2.112,2001:db8::112"})
    rk.converge(server, f"v4.{area}", ("NOERROR", ["192.0.2.112"]))
    rk.converge(server, f"v6.{area}", ("NOERROR", ["2001:db8::112"]), rdtype="AAAA")

    kube.delete_node(name)
    rk.converge(server, f"v6.{area}", ("NXDOMAIN", []), rdtype="AAAA")


def test_prefixes_work_for_services(kube: Kube, server: NodeDns) -> None:
    n1 = rk.node(kube, ips="192.0.2.121,2001:db8::121")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    pod = rk.pod(kube, ns, "web", n1, "10.244.1.21")
    rk.write_slice(kube, ns, "web", [rk.endpoint(pod, "10.244.1.21")])

    rk.converge(server, f"v4.web.{ns}", ("NOERROR", ["192.0.2.121"]))
    assert rk.answer(server, f"v6.web.{ns}", "AAAA") == ("NOERROR", ["2001:db8::121"])
    assert rk.nodata(rk.ask(server, f"v4.web.{ns}", "AAAA"))


def test_areas_named_like_a_prefix_are_rejected_with_a_warning(kube: Kube, server: NodeDns) -> None:
    keep = rk.unique("kept")
    name = rk.node(kube, areas=f"v4,{keep},V6", ips="192.0.2.131")
    rk.converge(server, keep, ("NOERROR", ["192.0.2.131"]))

    # No area v4: v4.<zone> is not a name (it would be the IPv4 view of the apex).
    assert rk.answer(server, "v4", "A") == ("NXDOMAIN", [])
    rk.wait_for(
        lambda: (
            f"node {name}: skipped" in server.logs() and "reserved for the family prefixes" in server.logs()
        ),
        timeout=5,
        what="the warning",
    )
