"""static_records: extra IPs per area, always served, never counted by the fail-open rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.nodedns import NodeDns
from tests.integration import recordkit as rk

pytestmark = pytest.mark.controlplane

STATIC_ONLY = rk.unique("static")
MIXED = rk.unique("mixed")
STATIC = f"{STATIC_ONLY}=192.0.2.250,2001:db8::250; {MIXED}=192.0.2.251"


@pytest.fixture(scope="module")
def failing_open(control_plane: ControlPlane) -> Iterator[NodeDns]:
    """Default fail-open rule: an area with no healthy node serves all its node IPs."""
    with NodeDns(control_plane.kubeconfig, extra_args=[f"--static-records={STATIC}"]) as running:
        yield running


def test_an_area_of_static_records_only_is_served(failing_open: NodeDns) -> None:
    assert rk.answer(failing_open, STATIC_ONLY) == ("NOERROR", ["192.0.2.250"])
    assert rk.answer(failing_open, STATIC_ONLY, "AAAA") == ("NOERROR", ["2001:db8::250"])
    assert rk.answer(failing_open, f"v6.{STATIC_ONLY}", "AAAA") == ("NOERROR", ["2001:db8::250"])


def test_static_ips_join_node_ips_and_do_not_count_for_fail_open(kube: Kube, failing_open: NodeDns) -> None:
    n1 = rk.node(kube, areas=MIXED, ips="192.0.2.1")
    n2 = rk.node(kube, areas=MIXED, ips="192.0.2.2")
    rk.converge(failing_open, MIXED, ("NOERROR", ["192.0.2.1", "192.0.2.2", "192.0.2.251"]))

    kube.set_ready(n1, False)
    rk.converge(failing_open, MIXED, ("NOERROR", ["192.0.2.2", "192.0.2.251"]))

    # The last healthy node goes: the static IP does not count as healthy, so the area fails
    # open (all node IPs) and the static IP is still added.
    kube.set_ready(n2, False)
    rk.converge(failing_open, MIXED, ("NOERROR", ["192.0.2.1", "192.0.2.2", "192.0.2.251"]))

    kube.delete_nodes([n1, n2])
    rk.converge(failing_open, MIXED, ("NOERROR", ["192.0.2.251"]))


def test_strict_areas_keep_only_static_ips_when_no_node_is_healthy(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("strict")
    n1 = rk.node(kube, areas=area, ips="192.0.2.3")
    args = [f"--static-records={area}=192.0.2.252", "--no-fail-open"]

    with NodeDns(control_plane.kubeconfig, extra_args=args) as strict:
        rk.converge(strict, area, ("NOERROR", ["192.0.2.252", "192.0.2.3"]))
        kube.set_ready(n1, False)
        rk.converge(strict, area, ("NOERROR", ["192.0.2.252"]))
