"""Own node only, enforced by the apiserver: the chart's agent RBAC and ValidatingAdmissionPolicy,
applied as rendered to a real kube-apiserver, with tokens bound to Pods the way the kubelet's
projected token is bound.

A token bound to a Pod on node A may patch A's discovered-IPs annotation and nothing else: every
other change is refused, each with the apiserver's own message checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness.agentworld import NAMESPACE, agent_objects, pod_on, token_bound_to
from tests.harness.controlplane import ControlPlane
from tests.harness.helm import Helm
from tests.harness.kube import MERGE_PATCH, Kube, wait_for

pytestmark = pytest.mark.controlplane

KEY = "node-dns/discovered-ips"
AGENT_USER = "system:serviceaccount:node-dns:dns-node-dns-agent"


@dataclass
class Cluster:
    plane: ControlPlane
    node_a: str
    node_b: str
    agent_a: Kube
    """Acting as the agent's ServiceAccount with a token bound to its Pod on node A."""
    unbound: Kube
    """The same ServiceAccount with a token bound to no Pod (no node claim)."""


def patch(client: Kube, node: str, body: dict[str, Any], subresource: str = "") -> tuple[int, Any]:
    path = f"/api/v1/nodes/{node}" + (f"/{subresource}" if subresource else "")
    return client.request("PATCH", path, body, content_type=MERGE_PATCH)


def annotate(key: str, value: str | None) -> dict[str, Any]:
    return {"metadata": {"annotations": {key: value}}}


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


@pytest.fixture(scope="module")
def cluster(helm: Helm) -> Iterator[Cluster]:
    objects = agent_objects(helm)
    with ControlPlane() as plane:
        plane.create_namespace(NAMESPACE)
        plane.apply_manifests(objects, namespace=NAMESPACE)
        account = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
        suffix = uuid.uuid4().hex[:6]
        node_a, node_b = f"node-a-{suffix}", f"node-b-{suffix}"
        for node in (node_a, node_b):
            plane.create_node(
                node,
                annotations={"node-dns/areas": "home", KEY: "192.0.2.1"},
                labels={"topology.kubernetes.io/zone": "one"},
            )
        agent_a = plane.for_token(token_bound_to(plane, pod_on(plane, node_a, account), account))
        unbound = plane.for_token(token_bound_to(plane, None, account))
        # The policy takes effect a moment after it is created: wait until it refuses.
        wait_for(
            lambda: patch(agent_a, node_b, annotate(KEY, "192.0.2.1"))[0] == 403,  # its value already
            timeout=30,
            what="the admission policy in force",
        )
        try:
            yield Cluster(plane, node_a, node_b, agent_a, unbound)
        finally:
            agent_a.close()
            unbound.close()


def message(answer: tuple[int, Any]) -> str:
    status, body = answer
    assert status == 403, (status, body)
    return str(body["message"])


def test_chart_renders_the_policy_for_the_agent_service_account(helm: Helm) -> None:
    objects = agent_objects(helm)
    policy = next(o for o in objects if o["kind"] == "ValidatingAdmissionPolicy")

    assert [c["expression"] for c in policy["spec"]["matchConditions"]] == [
        f'request.userInfo.username == "{AGENT_USER}"'
    ]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert {o["kind"] for o in objects} == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }


def test_chart_grants_the_agent_only_get_and_patch_on_nodes(helm: Helm) -> None:
    role = next(o for o in agent_objects(helm) if o["kind"] == "ClusterRole")

    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]


def test_agent_may_set_its_own_nodes_annotation(cluster: Cluster) -> None:
    status, body = patch(cluster.agent_a, cluster.node_a, annotate(KEY, "198.51.100.7,2001:db8::7"))

    assert status == 200, body
    assert (
        cluster.plane.get_node(cluster.node_a)["metadata"]["annotations"][KEY] == "198.51.100.7,2001:db8::7"
    )


def test_agent_may_remove_its_own_nodes_annotation(cluster: Cluster) -> None:
    status, body = patch(cluster.agent_a, cluster.node_a, annotate(KEY, None))

    assert status == 200, body
    assert KEY not in cluster.plane.get_node(cluster.node_a)["metadata"]["annotations"]


def test_agent_may_read_its_own_node(cluster: Cluster) -> None:
    status, body = cluster.agent_a.request("GET", f"/api/v1/nodes/{cluster.node_a}")

    assert status == 200, body


def test_agent_may_not_patch_another_node(cluster: Cluster) -> None:
    answer = patch(cluster.agent_a, cluster.node_b, annotate(KEY, "198.51.100.8"))

    assert f"the node-dns agent on node {cluster.node_a} may not change node {cluster.node_b}" in message(
        answer
    )
    assert cluster.plane.get_node(cluster.node_b)["metadata"]["annotations"][KEY] == "192.0.2.1"


def test_agent_may_not_change_its_nodes_labels(cluster: Cluster) -> None:
    answer = patch(cluster.agent_a, cluster.node_a, {"metadata": {"labels": {"node-dns/serve": "yes"}}})

    assert "the node-dns agent may not change node labels" in message(answer)
    assert "node-dns/serve" not in cluster.plane.get_node(cluster.node_a)["metadata"]["labels"]


def test_agent_may_not_change_another_annotation(cluster: Cluster) -> None:
    answer = patch(cluster.agent_a, cluster.node_a, annotate("node-dns/areas", "elsewhere"))

    assert f"the node-dns agent may change no annotation but {KEY}" in message(answer)
    assert cluster.plane.get_node(cluster.node_a)["metadata"]["annotations"]["node-dns/areas"] == "home"


def test_agent_may_not_remove_another_annotation(cluster: Cluster) -> None:
    answer = patch(cluster.agent_a, cluster.node_a, annotate("node-dns/areas", None))

    assert f"the node-dns agent may change no annotation but {KEY}" in message(answer)


def test_agent_may_not_sneak_another_annotation_in_with_its_own(cluster: Cluster) -> None:
    body = {"metadata": {"annotations": {KEY: "198.51.100.9", "node-dns/ips": "198.51.100.9"}}}

    answer = patch(cluster.agent_a, cluster.node_a, body)

    assert f"the node-dns agent may change no annotation but {KEY}" in message(answer)


def test_agent_may_not_change_its_nodes_spec(cluster: Cluster) -> None:
    answer = patch(cluster.agent_a, cluster.node_a, {"spec": {"unschedulable": True}})

    assert "the node-dns agent may not change the node spec" in message(answer)
    assert not cluster.plane.get_node(cluster.node_a).get("spec", {}).get("unschedulable")


def test_agent_may_not_taint_its_node(cluster: Cluster) -> None:
    taint = {"key": "node-dns/evil", "value": "x", "effect": "NoSchedule"}

    answer = patch(cluster.agent_a, cluster.node_a, {"spec": {"taints": [taint]}})

    assert "the node-dns agent may not change the node spec" in message(answer)


def test_agent_may_not_change_its_nodes_status(cluster: Cluster) -> None:
    addresses = {"status": {"addresses": [{"type": "ExternalIP", "address": "198.51.100.66"}]}}

    answer = patch(cluster.agent_a, cluster.node_a, addresses, subresource="status")

    assert message(answer) == (
        f'nodes "{cluster.node_a}" is forbidden: User "{AGENT_USER}" cannot patch resource '
        '"nodes/status" in API group "" at the cluster scope'
    )


def test_policy_refuses_status_even_where_rbac_would_allow_it(cluster: Cluster) -> None:
    """Defence in depth: a wider role granted by someone else still meets the policy."""
    plane = cluster.plane
    role = f"extra-status-{uuid.uuid4().hex[:6]}"
    plane.create_cluster_role(role, [{"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}])
    plane.bind_cluster_role(role, NAMESPACE, "dns-node-dns-agent")
    addresses = {"status": {"addresses": [{"type": "ExternalIP", "address": "198.51.100.66"}]}}

    answer = wait_for(
        lambda: (
            (got := patch(cluster.agent_a, cluster.node_a, addresses, subresource="status"))
            and "cannot patch" not in str(got[1])
            and got
        ),
        timeout=10,
        what="the extra role in force",
    )

    assert "the node-dns agent may not change nodes/status" in message(answer)


def test_status_in_a_patch_of_the_node_itself_never_reaches_the_status(cluster: Cluster) -> None:
    before = cluster.plane.get_node(cluster.node_a)["status"]
    body = {
        **annotate(KEY, "198.51.100.10"),
        "status": {"addresses": [{"type": "ExternalIP", "address": "198.51.100.66"}]},
    }

    status, _ = patch(cluster.agent_a, cluster.node_a, body)

    assert status == 200  # the annotation changes; the apiserver drops status from such patches
    assert cluster.plane.get_node(cluster.node_a)["status"].get("addresses") == before.get("addresses")


def test_agent_may_not_delete_its_node(cluster: Cluster) -> None:
    answer = cluster.agent_a.request("DELETE", f"/api/v1/nodes/{cluster.node_a}")

    assert message(answer) == (
        f'nodes "{cluster.node_a}" is forbidden: User "{AGENT_USER}" cannot delete resource '
        '"nodes" in API group "" at the cluster scope'
    )


def test_token_without_a_node_claim_may_patch_nothing(cluster: Cluster) -> None:
    answer = patch(cluster.unbound, cluster.node_a, annotate(KEY, "198.51.100.11"))

    assert "the node-dns agent's token names no node (authentication.kubernetes.io/node-name)" in message(
        answer
    )


def test_policy_leaves_other_identities_alone(cluster: Cluster) -> None:
    cluster.plane.label(cluster.node_b, {"node-dns/serve": "yes"})

    assert cluster.plane.get_node(cluster.node_b)["metadata"]["labels"]["node-dns/serve"] == "yes"
