"""ip_sources: node IPs from the annotation, ExternalIP or InternalIP; the first that has any wins."""

from __future__ import annotations

import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration import recordkit as rk

pytestmark = pytest.mark.controlplane


def test_the_first_source_with_an_address_wins_per_node(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("mixed")
    annotated = rk.node(
        kube,
        areas=area,
        ips="192.0.2.201",
        addresses=[("ExternalIP", "198.51.100.1"), ("InternalIP", "10.0.0.1")],
    )
    external = rk.node(
        kube, areas=area, addresses=[("ExternalIP", "198.51.100.2"), ("InternalIP", "10.0.0.2")]
    )
    internal = rk.node(kube, areas=area, addresses=[("InternalIP", "10.0.0.3"), ("Hostname", "n3")])

    args = ["--ip-sources=annotation,external,internal"]
    with NodeDns(control_plane.kubeconfig, extra_args=args) as server:
        rk.converge(server, area, ("NOERROR", ["10.0.0.3", "192.0.2.201", "198.51.100.2"]))

        # Status changes move the answer: the kubelet reports a new external address.
        kube.set_addresses(external, [("ExternalIP", "198.51.100.22"), ("InternalIP", "10.0.0.2")])
        rk.converge(server, area, ("NOERROR", ["10.0.0.3", "192.0.2.201", "198.51.100.22"]))

        # The node with only an InternalIP gets an ExternalIP: it wins over the internal one.
        kube.set_addresses(internal, [("ExternalIP", "198.51.100.3"), ("InternalIP", "10.0.0.3")])
        rk.converge(server, area, ("NOERROR", ["192.0.2.201", "198.51.100.22", "198.51.100.3"]))

        # Dropping the annotation falls back to the next source.
        kube.annotate(annotated, {rk.IPS_ANNOTATION: None})
        rk.converge(server, area, ("NOERROR", ["198.51.100.1", "198.51.100.22", "198.51.100.3"]))


def test_annotation_only_is_the_default(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("default")
    rk.node(kube, areas=area, ips="192.0.2.211", addresses=[("ExternalIP", "198.51.100.11")])
    rk.node(kube, areas=area, addresses=[("ExternalIP", "198.51.100.12")])

    with NodeDns(control_plane.kubeconfig) as server:
        rk.converge(server, area, ("NOERROR", ["192.0.2.211"]))


def test_internal_only_ignores_the_annotation(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("internal")
    rk.node(
        kube, areas=area, ips="192.0.2.221", addresses=[("InternalIP", "10.1.0.1"), ("InternalIP", "fd00::1")]
    )

    with NodeDns(control_plane.kubeconfig, extra_args=["--ip-sources=internal"]) as server:
        rk.converge(server, area, ("NOERROR", ["10.1.0.1"]))
        rk.converge(server, area, ("NOERROR", ["fd00::1"]), rdtype="AAAA")


def test_a_bad_source_name_is_a_settings_error(control_plane: ControlPlane) -> None:
    server = NodeDns(control_plane.kubeconfig, extra_args=["--ip-sources=annotation,hostname"])
    server.start()
    rk.wait_for(lambda: not server.running, timeout=15, what="exit")
    assert server.returncode == 2
    assert "--ip-sources (NODE_DNS_IP_SOURCES)" in server.logs()
    server.stop()
