"""The test harness itself: a real apiserver that enforces RBAC, streams watches, validates
schemas strictly, survives restarts, and leaves nothing behind."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from tests.harness import ControlPlane, Kube, KubeError, NodeDns, flip, free_dns_port, versions
from tests.harness.kube import wait_for

pytestmark = pytest.mark.controlplane

NODE_READER = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]


def _ready_status(node: dict) -> str | None:
    conditions = node.get("status", {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == "Ready"), None)


@pytest.fixture
def service_account(kube: Kube, unique_name: Callable[[str], str]) -> tuple[str, str]:
    """A fresh namespace with one ServiceAccount that has no bindings."""
    namespace, name = unique_name("ns"), unique_name("sa")
    kube.create_namespace(namespace)
    kube.create_service_account(namespace, name)
    return namespace, name


@pytest.fixture
def own_plane() -> Iterator[ControlPlane]:
    """A control plane of the test's own (with an audit log), for tests that restart it."""
    with ControlPlane(audit=True) as plane:
        yield plane


# --- the apiserver --------------------------------------------------------------------------


def test_apiserver_answers_readyz(kube: Kube) -> None:
    status, body = kube.request("GET", "/readyz")
    assert (status, body) == (200, "ok")


def test_apiserver_reports_the_version_pinned_in_versions_env(kube: Kube) -> None:
    assert kube.call("GET", "/version")["gitVersion"] == versions()["KUBERNETES_VERSION"]


async def test_admin_kubeconfig_verifies_tls_and_works_with_kubernetes_asyncio(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("node")
    control_plane.create_node(name)
    configuration = k8s_client.Configuration()

    await k8s_config.load_kube_config(str(control_plane.kubeconfig), client_configuration=configuration)
    async with k8s_client.ApiClient(configuration) as api:
        node = await k8s_client.CoreV1Api(api).read_node(name)

    assert configuration.verify_ssl
    assert node.metadata.name == name


# --- RBAC and tokens -------------------------------------------------------------------------


def test_token_without_bindings_is_forbidden_to_list_nodes(
    kube: Kube, service_account: tuple[str, str]
) -> None:
    as_sa = kube.for_token(kube.mint_token(*service_account))
    status, _ = as_sa.request("GET", "/api/v1/nodes")
    assert status == 403


def test_token_bound_to_node_reader_lists_nodes(
    kube: Kube, service_account: tuple[str, str], unique_name: Callable[[str], str]
) -> None:
    namespace, sa = service_account
    as_sa = kube.for_token(kube.mint_token(namespace, sa))
    role = unique_name("node-reader")
    kube.create_cluster_role(role, NODE_READER)
    kube.bind_cluster_role(role, namespace, sa)

    # RBAC decisions come from an informer cache: allow it a moment to see the binding.
    wait_for(lambda: as_sa.request("GET", "/api/v1/nodes")[0] == 200, timeout=10, what="200 on nodes")


def test_node_reader_token_cannot_change_nodes(
    kube: Kube, service_account: tuple[str, str], unique_name: Callable[[str], str]
) -> None:
    namespace, sa = service_account
    node = unique_name("node")
    kube.create_node(node)
    role = unique_name("node-reader")
    kube.create_cluster_role(role, NODE_READER)
    kube.bind_cluster_role(role, namespace, sa)
    as_sa = kube.for_token(kube.mint_token(namespace, sa))
    wait_for(lambda: as_sa.request("GET", f"/api/v1/nodes/{node}")[0] == 200, timeout=10, what="read")

    with pytest.raises(KubeError) as denied:
        as_sa.annotate(node, {"example.net/x": "y"})
    assert denied.value.status == 403


def test_kubeconfig_for_token_authenticates_as_that_token(
    kube: Kube, service_account: tuple[str, str]
) -> None:
    token = kube.mint_token(*service_account)
    from_file = Kube.from_kubeconfig(kube.kubeconfig_for_token(token))
    review = from_file.call(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    namespace, name = service_account
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:{name}"


# --- nodes -----------------------------------------------------------------------------------


def test_create_node_sets_annotations_addresses_readiness_and_cordon(
    kube: Kube, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("node")
    kube.create_node(
        name,
        annotations={"example.net/node-areas": "home"},
        labels={"role": "edge"},
        ready="Unknown",
        addresses=[("ExternalIP", "192.0.2.10"), ("ExternalIP", "2001:db8::10")],
        unschedulable=True,
    )

    node = kube.get_node(name)
    assert node["metadata"]["annotations"] == {"example.net/node-areas": "home"}
    assert node["metadata"]["labels"]["role"] == "edge"
    assert _ready_status(node) == "Unknown"
    assert node["status"]["addresses"] == [
        {"type": "ExternalIP", "address": "192.0.2.10"},
        {"type": "ExternalIP", "address": "2001:db8::10"},
    ]
    assert node["spec"]["unschedulable"] is True


def test_set_ready_changes_only_the_ready_condition(kube: Kube, unique_name: Callable[[str], str]) -> None:
    name = unique_name("node")
    kube.create_node(name)
    pressure = {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"}
    kube.call(
        "PATCH",
        f"/api/v1/nodes/{name}/status",
        {"status": {"conditions": [pressure]}},
        content_type="application/strategic-merge-patch+json",
    )

    kube.set_ready(name, False)

    conditions = {c["type"]: c["status"] for c in kube.get_node(name)["status"]["conditions"]}
    assert conditions == {"Ready": "False", "MemoryPressure": "False"}


def test_cordon_and_uncordon_toggle_unschedulable(kube: Kube, unique_name: Callable[[str], str]) -> None:
    name = unique_name("node")
    kube.create_node(name)

    assert kube.cordon(name)["spec"]["unschedulable"] is True
    assert "unschedulable" not in kube.uncordon(name)["spec"]


def test_annotate_with_none_removes_the_key(kube: Kube, unique_name: Callable[[str], str]) -> None:
    name = unique_name("node")
    kube.create_node(name, annotations={"a.example/x": "1", "a.example/y": "2"})

    node = kube.annotate(name, {"a.example/x": None, "a.example/z": "3"})

    assert node["metadata"]["annotations"] == {"a.example/y": "2", "a.example/z": "3"}


def test_control_plane_forwards_node_helpers_to_its_client(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("node")
    control_plane.create_node(name)
    control_plane.delete_node(name)

    with pytest.raises(KubeError) as missing:
        control_plane.get_node(name)
    assert missing.value.status == 404


def test_create_nodes_in_bulk_then_list_them_across_pages(
    kube: Kube, unique_name: Callable[[str], str]
) -> None:
    batch = unique_name("batch")
    specs = [{"name": f"{batch}-{i}", "labels": {"batch": batch}} for i in range(300)]

    kube.create_nodes(specs, concurrency=8)

    listed = kube.list_nodes(label_selector=f"batch={batch}", page_size=100)
    assert sorted(n["metadata"]["name"] for n in listed) == sorted(s["name"] for s in specs)
    kube.delete_nodes(s["name"] for s in specs)
    assert kube.list_nodes(label_selector=f"batch={batch}") == []


def test_watch_sees_a_readiness_change_made_with_set_ready(
    kube: Kube, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("node")
    created = kube.create_node(name, ready=True)
    params = {
        "fieldSelector": f"metadata.name={name}",
        "resourceVersion": created["metadata"]["resourceVersion"],
    }

    with kube.watch("/api/v1/nodes", params=params, timeout=10) as events:
        kube.set_ready(name, False)
        event = next(events)

    assert event["type"] == "MODIFIED"
    assert _ready_status(event["object"]) == "False"


def test_flip_cli_changes_readiness_through_a_kubeconfig(
    control_plane: ControlPlane, unique_name: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("node")
    control_plane.create_node(name, ready=True)

    exit_code = flip.main(["--kubeconfig", str(control_plane.kubeconfig), name, "False"])

    assert exit_code == 0
    assert capsys.readouterr().out.strip() == f"{name}: Ready=False"
    assert _ready_status(control_plane.get_node(name)) == "False"


# --- manifests -------------------------------------------------------------------------------


def _manifests(namespace: str) -> list[dict]:
    labels = {"app": "demo"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "demo"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{namespace}-reader"},
            "rules": NODE_READER,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "demo", "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "demo", "image": "example.invalid/demo:1"}]},
                },
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "demo"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "demo"},
            "spec": {"holderIdentity": "nobody"},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "demo-1"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.7"]}],
        },
        None,  # an empty YAML document, as rendered templates produce
    ]


def test_apply_manifests_creates_objects_in_their_api_groups(
    kube: Kube, unique_name: Callable[[str], str]
) -> None:
    namespace = unique_name("ns")

    applied = kube.apply_manifests(_manifests(namespace), namespace=namespace)

    assert [o["kind"] for o in applied][:3] == ["Namespace", "ServiceAccount", "ClusterRole"]
    assert kube.call("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/demo")
    assert kube.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/demo")
    assert kube.call("GET", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{namespace}-reader")


def test_apply_manifests_twice_replaces_existing_objects(
    kube: Kube, unique_name: Callable[[str], str]
) -> None:
    namespace = unique_name("ns")
    kube.apply_manifests(_manifests(namespace), namespace=namespace)
    changed = _manifests(namespace)
    changed[5]["spec"]["holderIdentity"] = "somebody"

    kube.apply_manifests(changed, namespace=namespace)

    lease = kube.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/demo")
    assert lease["spec"]["holderIdentity"] == "somebody"


def test_apply_manifests_rejects_unknown_fields(kube: Kube, unique_name: Callable[[str], str]) -> None:
    typo = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": unique_name("cm")},
        "dta": {"key": "value"},
    }

    with pytest.raises(KubeError) as rejected:
        kube.apply_manifests([typo])
    assert rejected.value.status == 400
    assert "unknown field" in str(rejected.value)


# --- outages and teardown --------------------------------------------------------------------


def test_restarted_apiserver_keeps_data_and_clients_reconnect(
    own_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("node")
    own_plane.create_node(name)
    port = own_plane.apiserver_port

    own_plane.stop_apiserver()
    with pytest.raises(OSError):
        own_plane.kube.request("GET", "/readyz")
    own_plane.start_apiserver()

    assert own_plane.apiserver_port == port
    assert own_plane.get_node(name)["metadata"]["name"] == name


def test_audit_log_records_who_did_what(own_plane: ControlPlane, unique_name: Callable[[str], str]) -> None:
    name = unique_name("node")
    own_plane.create_node(name)

    creates = [
        e
        for e in own_plane.audit_events()
        if e["verb"] == "create" and e.get("objectRef", {}).get("name") == name
    ]
    assert [e["user"]["username"] for e in creates] == ["harness-admin"]


def test_stop_leaves_no_process_and_no_directory_behind() -> None:
    plane = ControlPlane().start()
    pids, workdir = plane.pids, plane.workdir
    assert workdir is not None
    assert len(pids) == 2
    assert all(psutil.pid_exists(pid) for pid in pids)

    plane.stop()

    assert not any(psutil.pid_exists(pid) for pid in pids)
    assert not workdir.exists()
    leftovers = [
        p.pid for p in psutil.process_iter(["cmdline"]) if str(workdir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_free_dns_port_is_free_for_udp_and_tcp() -> None:
    port = free_dns_port()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", port))


# --- node-dns runner -------------------------------------------------------------------------


def test_node_dns_runner_waits_for_readiness_and_stops_cleanly(
    kube: Kube, service_account: tuple[str, str], unique_name: Callable[[str], str]
) -> None:
    namespace, sa = service_account
    role = unique_name("node-reader")
    kube.create_cluster_role(role, NODE_READER)
    kube.bind_cluster_role(role, namespace, sa)
    kubeconfig: Path = kube.kubeconfig_for_token(kube.mint_token(namespace, sa))

    with NodeDns(kubeconfig) as node_dns:
        assert node_dns.http_get("/readyz")[0] == 200
        exit_code = node_dns.stop()

    assert exit_code == 0
