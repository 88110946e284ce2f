"""max_answers: UDP answers carry a rotating window of a large area; TCP carries all of it."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import dns.flags
import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, NodeSpec
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns
from tests.integration import recordkit as rk

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def server(control_plane: ControlPlane) -> Iterator[NodeDns]:
    with NodeDns(control_plane.kubeconfig, extra_args=["--max-answers=3"]) as running:
        yield running


def area_of(kube: Kube, count: int, prefix: str = "192.0.2") -> tuple[str, list[str]]:
    area = rk.unique("big")
    ips = [f"{prefix}.{i + 1}" for i in range(count)]
    kube.create_nodes(
        NodeSpec(rk.unique("node"), annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ip}) for ip in ips
    )
    return area, sorted(ips)


def test_udp_rotates_windows_over_every_record_and_tcp_has_them_all(kube: Kube, server: NodeDns) -> None:
    area, ips = area_of(kube, 8)
    rk.wait_for(lambda: rk.addresses(rk.ask(server, area, tcp=True)) == ips, timeout=10, what="8 nodes")

    windows = [rk.addresses(rk.ask(server, area)) for _ in range(8)]

    assert all(len(window) == 3 for window in windows)
    counts = collections.Counter(ip for window in windows for ip in window)
    assert set(counts) == set(ips), "every record is handed out"
    assert set(counts.values()) == {3}, "and equally often over one cycle"
    assert len({tuple(w) for w in windows}) == 8, "consecutive answers differ"
    for _ in range(3):
        assert rk.addresses(rk.ask(server, area, tcp=True)) == ips


def test_small_areas_are_answered_whole(kube: Kube, server: NodeDns) -> None:
    area, ips = area_of(kube, 3, prefix="198.51.100")
    rk.converge(server, area, ("NOERROR", ips))

    for _ in range(4):
        assert rk.addresses(rk.ask(server, area)) == ips


def test_the_limit_keeps_a_large_area_under_512_bytes_without_edns(control_plane: ControlPlane) -> None:
    area, ips = area_of(control_plane.kube, 60, prefix="203.0.113")

    with (
        NodeDns(control_plane.kubeconfig) as unlimited,
        NodeDns(control_plane.kubeconfig, extra_args=["--max-answers=20"]) as limited,
    ):
        rk.wait_for(lambda: len(rk.addresses(rk.ask(limited, area, tcp=True))) == 60, timeout=10, what="60")
        assert rk.ask(unlimited, area).flags & dns.flags.TC, "60 A records do not fit in 512 bytes"

        seen: set[str] = set()
        for _ in range(3):
            reply = rk.ask(limited, area)
            assert not reply.flags & dns.flags.TC
            assert len(reply.to_wire()) <= 512
            assert len(rk.addresses(reply)) == 20
            seen.update(rk.addresses(reply))
        assert seen == set(ips)


def test_membership_changes_keep_rotating(kube: Kube, server: NodeDns) -> None:
    area, ips = area_of(kube, 5, prefix="192.0.2")
    rk.wait_for(lambda: rk.addresses(rk.ask(server, area, tcp=True)) == ips, timeout=10, what="5 nodes")
    extra = rk.node(kube, areas=area, ips="192.0.2.99")
    ips = sorted([*ips, "192.0.2.99"])
    rk.wait_for(lambda: rk.addresses(rk.ask(server, area, tcp=True)) == ips, timeout=10, what="6 nodes")

    seen = collections.Counter(ip for _ in range(2) for ip in rk.addresses(rk.ask(server, area)))

    assert set(seen) == set(ips) and set(seen.values()) == {1}
    kube.delete_node(extra)
