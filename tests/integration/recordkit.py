"""Helpers for the live record tests (Services, IP sources, static records, answer limits):
Services, EndpointSlices and Pods written the way the endpointslice controller and a kubelet
would (no controller-manager runs here), DNS questions, and identities with exactly the RBAC the
chart grants."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import MERGE_PATCH, Kube, wait_for
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns

EXPOSE = "node-dns/expose"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NODE_READER = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
SERVICE_READER = [
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
]
TIMEOUT = 2.0
CONVERGE = 10.0

__all__ = ["AREAS_ANNOTATION", "IPS_ANNOTATION", "wait_for"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- nodes ---------------------------------------------------------------------------------------


def node(kube: Kube, areas: str = "", ips: str = "", **kwargs: Any) -> str:
    """A Ready node with the given areas and IPs annotations (either may be empty)."""
    name = unique("node")
    annotations = {}
    if areas:
        annotations[AREAS_ANNOTATION] = areas
    if ips:
        annotations[IPS_ANNOTATION] = ips
    kube.create_node(name, annotations=annotations, **kwargs)
    return name


# --- workloads ------------------------------------------------------------------------------------


def namespace(kube: Kube) -> str:
    name = unique("ns")
    kube.create_namespace(name)
    return name


def service(kube: Kube, ns: str, name: str = "web", *, exposed: bool = True) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": {EXPOSE: "true"} if exposed else {}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    result: dict[str, Any] = kube.call("POST", f"/api/v1/namespaces/{ns}/services", body)
    return result


def expose(kube: Kube, ns: str, name: str, value: str | None) -> None:
    patch = {"metadata": {"annotations": {EXPOSE: value}}}
    kube.call("PATCH", f"/api/v1/namespaces/{ns}/services/{name}", patch, content_type=MERGE_PATCH)


def pod(kube: Kube, ns: str, app: str, node_name: str, ip: str) -> dict[str, Any]:
    """A Pod bound to ``node_name`` and reported Ready with ``ip``, as its kubelet would."""
    name = unique(app)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }
    created: dict[str, Any] = kube.call("POST", f"/api/v1/namespaces/{ns}/pods", body)
    status = {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    kube.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", status, content_type=MERGE_PATCH)
    return created


def delete_pod(kube: Kube, ns: str, name: str, *, grace: int = 0) -> None:
    """Delete a pod; with a grace period and no kubelet it stays Terminating (deletionTimestamp set)."""
    kube.call(
        "DELETE",
        f"/api/v1/namespaces/{ns}/pods/{name}",
        {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": grace},
        ok=(200, 202),
    )


def endpoint(
    the_pod: Mapping[str, Any],
    ip: str,
    *,
    ready: bool = True,
    serving: bool | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    """One endpoint as the endpointslice controller writes it for a pod."""
    meta = the_pod["metadata"]
    return {
        "addresses": [ip],
        "conditions": {
            "ready": ready,
            "serving": ready if serving is None else serving,
            "terminating": terminating,
        },
        "nodeName": the_pod["spec"]["nodeName"],
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }


def _slice_body(
    ns: str, service_name: str, name: str, endpoints: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                SERVICE_NAME_LABEL: service_name,
                "endpointslice.kubernetes.io/managed-by": "tests.node-dns.example",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    }


def write_slice(
    kube: Kube, ns: str, service_name: str, endpoints: Iterable[Mapping[str, Any]], *, name: str | None = None
) -> str:
    """Create or replace the EndpointSlice ``name`` (default ``<service>-tests``) of a Service."""
    name = name or f"{service_name}-tests"
    body = _slice_body(ns, service_name, name, endpoints)
    base = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
    status, current = kube.request("GET", f"{base}/{name}")
    if status == 404:
        kube.call("POST", base, body)
    else:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        kube.call("PUT", f"{base}/{name}", body)
    return name


def delete_slice(kube: Kube, ns: str, name: str) -> None:
    kube.call("DELETE", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}")


# --- identities -----------------------------------------------------------------------------------


def identity(
    plane: ControlPlane, *, cluster_rules: list[Mapping[str, Any]], roles: Mapping[str, list[Any]]
) -> tuple[Path, str]:
    """A ServiceAccount with a ClusterRole of ``cluster_rules`` and a Role per namespace in ``roles``.

    Returns a kubeconfig for its token and its user name, once RBAC lets it list nodes.
    """
    kube = plane.kube
    home, account = unique("dns-home"), unique("dns-sa")
    kube.create_namespace(home)
    kube.create_service_account(home, account)
    if cluster_rules:
        role = unique("dns-cluster")
        kube.create_cluster_role(role, cluster_rules)
        kube.bind_cluster_role(role, home, account)
    for ns, rules in roles.items():
        role = unique("dns-role")
        kube.create_role(ns, role, rules)
        kube.bind_role(ns, role, home, account)
    token = kube.mint_token(home, account)
    as_sa = kube.for_token(token)
    try:
        wait_for(lambda: as_sa.request("GET", "/api/v1/nodes?limit=1")[0] == 200, timeout=10, what="RBAC")
        for ns in roles:
            path = f"/api/v1/namespaces/{ns}/services?limit=1"
            wait_for(lambda path=path: as_sa.request("GET", path)[0] == 200, timeout=10, what="RBAC")
    finally:
        as_sa.close()
    return kube.kubeconfig_for_token(token), f"system:serviceaccount:{home}:{account}"


# --- DNS ------------------------------------------------------------------------------------------


def ask(
    server: NodeDns, qname: str, rdtype: str = "A", *, tcp: bool = False, **kwargs: Any
) -> dns.message.Message:
    name = qname if qname.endswith(".") else f"{qname}.{server.zone}."
    request = dns.message.make_query(name, rdtype, **kwargs)
    if tcp:
        return dns.query.tcp(request, server.address, port=server.dns_port, timeout=TIMEOUT)
    return dns.query.udp(request, server.address, port=server.dns_port, timeout=TIMEOUT)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def answer(server: NodeDns, qname: str, rdtype: str = "A") -> tuple[str, list[str]]:
    """(rcode name, sorted addresses): NXDOMAIN and NODATA never look alike."""
    reply = ask(server, qname, rdtype)
    return dns.rcode.to_text(reply.rcode()), addresses(reply)


def converge(server: NodeDns, qname: str, expected: tuple[str, list[str]], rdtype: str = "A") -> None:
    """Wait until ``qname`` answers ``expected``; fail with the last answer seen."""
    seen: list[tuple[str, list[str]]] = []

    def check() -> bool:
        seen.append(answer(server, qname, rdtype))
        return seen[-1] == expected

    try:
        wait_for(check, timeout=CONVERGE, interval=0.05, what=f"{qname} {rdtype} -> {expected}")
    except TimeoutError as error:
        raise AssertionError(f"{qname} {rdtype}: expected {expected}, last {seen[-1:]}") from error


def nodata(reply: dns.message.Message) -> bool:
    """NOERROR, no answer, the zone's SOA in authority (RFC 2308)."""
    return (
        reply.rcode() == dns.rcode.NOERROR
        and not reply.answer
        and any(rrset.rdtype == dns.rdatatype.SOA for rrset in reply.authority)
    )


def never(predicate: Callable[[], bool], *, seconds: float = 1.0) -> bool:
    """True if ``predicate`` stayed false for ``seconds`` (polled)."""
    try:
        wait_for(predicate, timeout=seconds, interval=0.1)
    except TimeoutError:
        return True
    return False
