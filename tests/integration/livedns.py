"""Helpers for live tests: a read-only identity for node-dns, DNS clients (dnspython and dig),
metrics scraping, and unique names. Kept small so each test reads as the rule it checks."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import wait_for
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns

__all__ = ["AREAS_ANNOTATION", "IPS_ANNOTATION", "wait_for"]

NODE_READER = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
HOST = "127.0.0.1"
TIMEOUT = 2.0
DIG = shutil.which("dig")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def node_reader(plane: ControlPlane, prefix: str = "node-dns") -> tuple[Path, str]:
    """A ServiceAccount bound only to get/list/watch on nodes; its kubeconfig and user name."""
    namespace, account, role = unique(f"{prefix}-ns"), unique(f"{prefix}-sa"), unique(f"{prefix}-reader")
    plane.create_namespace(namespace)
    plane.create_service_account(namespace, account)
    plane.create_cluster_role(role, NODE_READER)
    plane.bind_cluster_role(role, namespace, account)
    token = plane.mint_token(namespace, account)
    as_sa = plane.kube.for_token(token)
    try:
        # RBAC decisions come from an informer cache: wait until the binding is visible.
        wait_for(lambda: as_sa.request("GET", "/api/v1/nodes?limit=1")[0] == 200, timeout=10, what="RBAC")
    finally:
        as_sa.close()
    return plane.kube.kubeconfig_for_token(token), f"system:serviceaccount:{namespace}:{account}"


def unbound_identity(plane: ControlPlane, prefix: str = "node-dns") -> tuple[Path, str, str]:
    """A ServiceAccount with no bindings at all: every API call it makes is answered 403."""
    namespace, account = unique(f"{prefix}-ns"), unique(f"{prefix}-sa")
    plane.create_namespace(namespace)
    plane.create_service_account(namespace, account)
    return plane.kube.kubeconfig_for_token(plane.mint_token(namespace, account)), namespace, account


def fqdn(area: str, server: NodeDns) -> str:
    return f"{area}.{server.zone}"


def udp(server: NodeDns, qname: str, rdtype: str = "A", **kwargs: object) -> dns.message.Message:
    request = dns.message.make_query(qname, rdtype, **kwargs)  # type: ignore[arg-type]
    return dns.query.udp(request, HOST, port=server.dns_port, timeout=TIMEOUT)


def tcp(server: NodeDns, qname: str, rdtype: str = "A", **kwargs: object) -> dns.message.Message:
    request = dns.message.make_query(qname, rdtype, **kwargs)  # type: ignore[arg-type]
    return dns.query.tcp(request, HOST, port=server.dns_port, timeout=TIMEOUT)


def addresses(reply: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in reply.answer for rd in rrset}


def answers(server: NodeDns, area: str, rdtype: str = "A") -> set[str] | None:
    """Addresses over UDP, None unless the reply is a NOERROR (so NXDOMAIN never looks empty)."""
    reply = udp(server, fqdn(area, server), rdtype)
    if reply.rcode() != dns.rcode.NOERROR:
        return None
    return addresses(reply)


def both_transports(server: NodeDns, area: str, rdtype: str = "A") -> tuple[set[str], set[str]]:
    name = fqdn(area, server)
    return addresses(udp(server, name, rdtype)), addresses(tcp(server, name, rdtype))


def rcode(server: NodeDns, qname: str, rdtype: str = "A") -> int:
    return udp(server, qname, rdtype).rcode()


def serial(server: NodeDns) -> int:
    reply = udp(server, server.zone, "SOA")
    assert reply.rcode() == dns.rcode.NOERROR
    return int(reply.answer[0][0].serial)


def dig(server: NodeDns, *args: str) -> str:
    """Debian's dig against node-dns; returns its full text output."""
    assert DIG is not None, "dig is not installed (make apt)"
    command = [DIG, f"@{HOST}", "-p", str(server.dns_port), "+time=2", "+tries=1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=15, check=True).stdout


def dig_answers(output: str) -> list[tuple[str, str, str]]:
    """(owner, type, rdata) of the answer lines in dig +noall +answer output."""
    rows = []
    for line in output.splitlines():
        if line.strip() and not line.startswith(";"):
            owner, _ttl, _class, rtype, rdata = line.split(None, 4)
            rows.append((owner, rtype, rdata.strip()))
    return rows


def metric(server: NodeDns, name: str, **labels: str) -> float | None:
    """One sample from /metrics, or None when it is not exported."""
    status, body = server.http_get("/metrics")
    assert status == 200
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$")
    for line in body.splitlines():
        found = pattern.match(line)
        if found and (found.group(1) or "") == wanted:
            return float(found.group(2))
    return None


def is_nodata(reply: dns.message.Message) -> bool:
    return (
        reply.rcode() == dns.rcode.NOERROR
        and not reply.answer
        and [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]
    )
