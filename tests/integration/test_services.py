"""Service records against a real apiserver: <service>.<namespace>.<zone> follows its endpoints.

No controller-manager runs, so each test writes what it would: Pods bound to nodes (reported
Ready as a kubelet would) and the Service's EndpointSlice pointing at them. Moving a pod means
deleting it, creating it on another node and rewriting the slice, as a rollout does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dns.rcode
import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.logs import denials
from tests.harness.nodedns import NodeDns
from tests.integration import recordkit as rk
from tests.integration.livedns import metric

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def server(control_plane: ControlPlane) -> Iterator[NodeDns]:
    with NodeDns(control_plane.kubeconfig, extra_args=["--services"]) as running:
        yield running


def test_an_opted_in_service_follows_its_pod_from_node_to_node(kube: Kube, server: NodeDns) -> None:
    n1, n2 = rk.node(kube, ips="192.0.2.11"), rk.node(kube, ips="192.0.2.12,2001:db8::12")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    qname = f"web.{ns}"
    rk.converge(server, qname, ("NOERROR", []))  # opted in, no endpoint yet: NODATA

    first = rk.pod(kube, ns, "web", n1, "10.244.1.5")
    rk.write_slice(kube, ns, "web", [rk.endpoint(first, "10.244.1.5")])
    rk.converge(server, qname, ("NOERROR", ["192.0.2.11"]))

    # Roll the pod to n2: new pod Ready on n2, old one deleted, slice rewritten.
    second = rk.pod(kube, ns, "web", n2, "10.244.2.7")
    rk.write_slice(kube, ns, "web", [rk.endpoint(first, "10.244.1.5"), rk.endpoint(second, "10.244.2.7")])
    rk.converge(server, qname, ("NOERROR", ["192.0.2.11", "192.0.2.12"]))
    rk.delete_pod(kube, ns, first["metadata"]["name"])
    rk.write_slice(kube, ns, "web", [rk.endpoint(second, "10.244.2.7")])

    rk.converge(server, qname, ("NOERROR", ["192.0.2.12"]))
    rk.converge(server, qname, ("NOERROR", ["2001:db8::12"]), rdtype="AAAA")


def test_terminating_endpoints_are_the_fallback_then_nodata_then_gone(kube: Kube, server: NodeDns) -> None:
    n1, n2 = rk.node(kube, ips="192.0.2.21"), rk.node(kube, ips="192.0.2.22")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "api")
    old = rk.pod(kube, ns, "api", n1, "10.244.1.9")
    new = rk.pod(kube, ns, "api", n2, "10.244.2.9")
    rk.write_slice(
        kube, ns, "api", [rk.endpoint(old, "10.244.1.9"), rk.endpoint(new, "10.244.2.9", ready=False)]
    )
    rk.converge(server, f"api.{ns}", ("NOERROR", ["192.0.2.21"]))

    # The old pod is deleted with a grace period: it stays Terminating but still serves, and
    # the new one is not ready yet. With no ready endpoint the terminating one is served.
    rk.delete_pod(kube, ns, old["metadata"]["name"], grace=300)
    rk.write_slice(
        kube,
        ns,
        "api",
        [
            rk.endpoint(old, "10.244.1.9", ready=False, serving=True, terminating=True),
            rk.endpoint(new, "10.244.2.9", ready=False),
        ],
    )
    rk.converge(server, f"api.{ns}", ("NOERROR", ["192.0.2.21"]))

    # As soon as the new pod is ready, the terminating one is no longer served.
    rk.write_slice(
        kube,
        ns,
        "api",
        [
            rk.endpoint(old, "10.244.1.9", ready=False, serving=True, terminating=True),
            rk.endpoint(new, "10.244.2.9"),
        ],
    )
    rk.converge(server, f"api.{ns}", ("NOERROR", ["192.0.2.22"]))

    # No endpoints at all: the name still exists while the Service is opted in (NODATA + SOA).
    rk.write_slice(kube, ns, "api", [])
    rk.converge(server, f"api.{ns}", ("NOERROR", []))
    assert rk.nodata(rk.ask(server, f"api.{ns}"))

    rk.expose(kube, ns, "api", None)
    rk.converge(server, f"api.{ns}", ("NXDOMAIN", []))


def test_endpoints_on_unhealthy_nodes_are_not_served(kube: Kube, server: NodeDns) -> None:
    n1, n2 = rk.node(kube, ips="192.0.2.31"), rk.node(kube, ips="192.0.2.32")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    first, second = rk.pod(kube, ns, "web", n1, "10.244.1.3"), rk.pod(kube, ns, "web", n2, "10.244.2.3")
    rk.write_slice(kube, ns, "web", [rk.endpoint(first, "10.244.1.3"), rk.endpoint(second, "10.244.2.3")])
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.31", "192.0.2.32"]))

    kube.set_ready(n1, False)
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.32"]))
    kube.set_ready(n1, True)
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.31", "192.0.2.32"]))

    kube.delete_node(n1)
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.32"]))


def _service_on_two_nodes(kube: Kube, first_ip: str, second_ip: str) -> tuple[str, str, str]:
    n1, n2 = rk.node(kube, ips=first_ip), rk.node(kube, ips=second_ip)
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    first, second = rk.pod(kube, ns, "web", n1, "10.244.1.7"), rk.pod(kube, ns, "web", n2, "10.244.2.7")
    rk.write_slice(kube, ns, "web", [rk.endpoint(first, "10.244.1.7"), rk.endpoint(second, "10.244.2.7")])
    return ns, n1, n2


def test_a_service_whose_endpoint_nodes_all_look_unhealthy_fails_open(kube: Kube, server: NodeDns) -> None:
    ns, n1, n2 = _service_on_two_nodes(kube, "192.0.2.33", "192.0.2.34")
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.33", "192.0.2.34"]))

    kube.set_ready(n1, False)
    kube.cordon(n2)
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.33", "192.0.2.34"]))
    assert metric(server, "node_dns_service_failed_open", namespace=ns, service="web") == 1.0

    kube.uncordon(n2)
    rk.converge(server, f"web.{ns}", ("NOERROR", ["192.0.2.34"]))
    assert metric(server, "node_dns_service_failed_open", namespace=ns, service="web") is None


def test_without_fail_open_unhealthy_endpoint_nodes_give_nodata(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    ns, n1, n2 = _service_on_two_nodes(kube, "192.0.2.35", "192.0.2.36")
    kube.set_ready(n1, False)
    kube.set_ready(n2, False)

    with NodeDns(control_plane.kubeconfig, extra_args=["--services", "--no-fail-open"]) as strict:
        rk.converge(strict, f"web.{ns}", ("NOERROR", []))


def test_services_without_the_annotation_or_with_another_value_are_not_served(
    kube: Kube, server: NodeDns
) -> None:
    n1 = rk.node(kube, ips="192.0.2.41")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "quiet", exposed=False)
    rk.service(kube, ns, "loud")
    for name in ("quiet", "loud"):
        p = rk.pod(kube, ns, name, n1, "10.244.1.4")
        rk.write_slice(kube, ns, name, [rk.endpoint(p, "10.244.1.4")])
    rk.converge(server, f"loud.{ns}", ("NOERROR", ["192.0.2.41"]))
    assert rk.answer(server, f"quiet.{ns}") == ("NXDOMAIN", [])

    rk.expose(kube, ns, "loud", "no")
    rk.converge(server, f"loud.{ns}", ("NXDOMAIN", []))
    rk.expose(kube, ns, "quiet", "true")
    rk.converge(server, f"quiet.{ns}", ("NOERROR", ["192.0.2.41"]))

    kube.call("DELETE", f"/api/v1/namespaces/{ns}/services/quiet")
    rk.converge(server, f"quiet.{ns}", ("NXDOMAIN", []))


def test_services_are_off_by_default(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    n1 = rk.node(kube, ips="192.0.2.51")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    p = rk.pod(kube, ns, "web", n1, "10.244.1.5")
    rk.write_slice(kube, ns, "web", [rk.endpoint(p, "10.244.1.5")])

    with NodeDns(control_plane.kubeconfig) as plain:
        assert rk.answer(plain, f"web.{ns}") == ("NXDOMAIN", [])


def test_a_service_restart_lists_services_before_answering(control_plane: ControlPlane) -> None:
    """The synced gate includes Services: the first answer after start already has them."""
    kube = control_plane.kube
    n1 = rk.node(kube, ips="192.0.2.61")
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    p = rk.pod(kube, ns, "web", n1, "10.244.1.6")
    rk.write_slice(kube, ns, "web", [rk.endpoint(p, "10.244.1.6")])

    with NodeDns(control_plane.kubeconfig, extra_args=["--services"]) as fresh:
        # No converge: /readyz is 200, so the very first answer must be complete.
        assert rk.answer(fresh, f"web.{ns}") == ("NOERROR", ["192.0.2.61"])


def test_namespace_scoped_mode_needs_only_roles_in_those_namespaces(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    n1 = rk.node(kube, ips="192.0.2.71")
    watched, other = rk.namespace(kube), rk.namespace(kube)
    for ns in (watched, other):
        rk.service(kube, ns, "web")
        p = rk.pod(kube, ns, "web", n1, "10.244.1.7")
        rk.write_slice(kube, ns, "web", [rk.endpoint(p, "10.244.1.7")])
    # Nodes cluster-wide; Services and EndpointSlices only in `watched` (what the chart renders).
    kubeconfig, _ = rk.identity(
        control_plane, cluster_rules=[rk.NODE_READER], roles={watched: rk.SERVICE_READER}
    )

    args = ["--services", f"--service-namespaces={watched}"]
    with NodeDns(kubeconfig, extra_args=args) as scoped:
        assert rk.answer(scoped, f"web.{watched}") == ("NOERROR", ["192.0.2.71"])
        assert rk.answer(scoped, f"web.{other}") == ("NXDOMAIN", [])
        # Watches work too, not only the lists.
        n2 = rk.node(kube, ips="192.0.2.72")
        p2 = rk.pod(kube, watched, "web", n2, "10.244.2.7")
        rk.write_slice(kube, watched, "web", [rk.endpoint(p2, "10.244.2.7")])
        rk.converge(scoped, f"web.{watched}", ("NOERROR", ["192.0.2.72"]))
        logs = scoped.logs()

    assert not denials(logs), logs[-3000:]
    assert "ERROR" not in logs, logs[-3000:]


def test_without_rbac_for_services_it_never_becomes_ready(control_plane: ControlPlane) -> None:
    """The Service lists are part of the synced gate: no silent zone without Services."""
    kubeconfig, _ = rk.identity(control_plane, cluster_rules=[rk.NODE_READER], roles={})
    server = NodeDns(kubeconfig, extra_args=["--services"])
    server.start()
    try:
        assert rk.never(server.ready, seconds=4.0)
        assert rk.ask(server, "anything").rcode() == dns.rcode.SERVFAIL
    finally:
        server.stop()


def test_a_service_deleted_during_a_watch_gap_with_410_disappears() -> None:
    """kopf re-lists after 410 Gone without a DELETED event: node-dns' own re-list removes it."""
    from tests.reliability.test_outage import second_apiserver

    with ControlPlane(apiserver_args=["--etcd-compaction-interval=5s", "--watch-cache=false"]) as plane:
        kube = plane.kube
        n1, n2 = rk.node(kube, ips="192.0.2.81"), rk.node(kube, ips="192.0.2.82")
        ns = rk.namespace(kube)
        slices = {}
        for name in ("stays", "goes"):
            rk.service(kube, ns, name)
            p = rk.pod(kube, ns, name, n1, "10.244.1.8")
            slices[name] = rk.write_slice(kube, ns, name, [rk.endpoint(p, "10.244.1.8")])
        with NodeDns(plane.kubeconfig, extra_args=["--services", "--resync-interval=3600"]) as server:
            rk.converge(server, f"goes.{ns}", ("NOERROR", ["192.0.2.81"]))
            rk.converge(server, f"stays.{ns}", ("NOERROR", ["192.0.2.81"]))
            plane.stop_apiserver()
            with second_apiserver(plane) as other:
                other.call("DELETE", f"/api/v1/namespaces/{ns}/services/goes")
                rk.delete_slice(other, ns, slices["goes"])
                moved = rk.pod(other, ns, "stays", n2, "10.244.2.8")
                rk.write_slice(other, ns, "stays", [rk.endpoint(moved, "10.244.2.8")])
                for index in range(20):  # move etcd's revision well past what node-dns saw
                    other.annotate(n2, {"example.net/churn": str(index)})
                time.sleep(12)  # two compaction rounds
            assert rk.answer(server, f"goes.{ns}") == ("NOERROR", ["192.0.2.81"]), "stale while cut off"
            plane.start_apiserver()
            rk.converge(server, f"goes.{ns}", ("NXDOMAIN", []))
            rk.converge(server, f"stays.{ns}", ("NOERROR", ["192.0.2.82"]))
