"""A node for the agent: a network namespace, the apiserver reachable from it, and an identity.

:func:`agent_world` builds what the end-to-end tests and the agent benchmark share: a network
namespace with an uplink to the host, a control plane whose serving certificate names the
uplink's host address, a relay from that address to the apiserver on loopback, the chart's
agent objects (ServiceAccount, ClusterRole, admission policy) applied as rendered, a Node, a Pod
of the agent's ServiceAccount on it, and a kubeconfig with a token bound to that Pod, as the
kubelet's projected token is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.controlplane import ControlPlane
from tests.harness.helm import Helm
from tests.harness.kube import write_kubeconfig
from tests.harness.netns import Netns, TcpRelay

NAMESPACE = "node-dns"
RELEASE = "dns"
REQUIRED_VALUES: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": [{"name": "ns1.example.org"}],
    "soa": {"email": "hostmaster@example.net"},
}


def agent_objects(helm: Helm, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """What the chart renders for the agent, less the DaemonSet (no kubelet runs here)."""
    given = {**REQUIRED_VALUES, **(values or {}), "agent": {"enabled": True}}
    rendered = helm.template(given, release=RELEASE, namespace=NAMESPACE)
    return [
        obj
        for obj in rendered
        if (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "agent"
        and obj["kind"] != "DaemonSet"
    ]


def pod_on(plane: ControlPlane, node: str, service_account: str) -> dict[str, Any]:
    """A Pod of ``service_account`` bound to ``node`` (nothing runs it; tokens are bound to it)."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"agent-{node}", "namespace": NAMESPACE},
        "spec": {
            "nodeName": node,
            "serviceAccountName": service_account,
            "containers": [{"name": "agent", "image": "node-dns:test"}],
        },
    }
    pod: dict[str, Any] = plane.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", body)
    return pod


def token_bound_to(plane: ControlPlane, pod: dict[str, Any] | None, service_account: str) -> str:
    """A TokenRequest as the kubelet makes for a projected volume (bound to the Pod)."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if pod is not None:
        spec["boundObjectRef"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        }
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{service_account}/token"
    token: str = plane.call("POST", path, body)["status"]["token"]
    return token


@dataclass
class AgentWorld:
    plane: ControlPlane
    ns: Netns
    node: str
    kubeconfig: Path
    """The agent's kubeconfig: the apiserver through the uplink, a token bound to its Pod."""
    relay: TcpRelay
    """The agent's only way to the apiserver: :meth:`TcpRelay.block` makes it unreachable."""


@contextmanager
def agent_world(
    annotations: Mapping[str, str] | None = None, *, label: str = "agent", audit: bool = False
) -> Iterator[AgentWorld]:
    """Everything above, torn down in reverse order on exit."""
    with Helm() as helm:
        objects = agent_objects(helm)
    with Netns.create(label) as ns:
        uplink = ns.add_uplink()
        # The apiserver's serving certificate then also names the uplink's host address.
        with ControlPlane(apiserver_args=[f"--advertise-address={uplink.host_ip}"], audit=audit) as plane:
            assert plane.workdir is not None
            with TcpRelay(uplink.host_ip, ("127.0.0.1", plane.apiserver_port)) as relay:
                plane.create_namespace(NAMESPACE)
                plane.apply_manifests(objects, namespace=NAMESPACE)
                account = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
                node = f"edge-{uuid.uuid4().hex[:6]}"
                plane.create_node(node, annotations=dict(annotations or {}))
                token = token_bound_to(plane, pod_on(plane, node, account), account)
                kubeconfig = write_kubeconfig(
                    plane.workdir / "agent-kubeconfig.yaml",
                    f"https://{uplink.host_ip}:{relay.port}",
                    token,
                    ca_data=plane.ca_data,
                    user="agent",
                )
                yield AgentWorld(plane, ns, node, kubeconfig, relay)
