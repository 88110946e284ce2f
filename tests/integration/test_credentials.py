"""Credentials against the real apiserver: the kubeconfig forms node-dns reads itself (token,
tokenFile relative to the kubeconfig, CA data) and the ones it hands to kubernetes-asyncio (an
exec plugin), each reaching an authoritative zone with a node's address in it."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import (
    AREAS_ANNOTATION,
    IPS_ANNOTATION,
    NODE_READER,
    answers,
    metric,
    node_reader,
    unique,
    wait_for,
)

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def area(control_plane: ControlPlane) -> Iterator[str]:
    """One Ready node in its own area, at 192.0.2.77."""
    name, area = unique("cred-node"), unique("cred")
    control_plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.77"})
    yield area
    control_plane.delete_nodes([name])


def _rewrite_user(kubeconfig: Path, target: Path, user: dict[str, Any]) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"] = user
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return target


def _token(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])


def _serves(kubeconfig: Path, area: str) -> None:
    with NodeDns(kubeconfig) as server:
        wait_for(lambda: answers(server, area) == {"192.0.2.77"}, timeout=10, what="the node's A record")
        status, body = server.http_get("/readyz")
        assert status == 200
        assert json.loads(body)["synced"] is True


def test_a_token_file_named_relative_to_the_kubeconfig_is_read(
    control_plane: ControlPlane, area: str, tmp_path: Path
) -> None:
    kubeconfig, _ = node_reader(control_plane, "tokenfile")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(_token(kubeconfig) + "\n")
    rewritten = _rewrite_user(kubeconfig, tmp_path / "kubeconfig", {"tokenFile": "secrets/token"})

    _serves(rewritten, area)


def test_an_exec_plugin_kubeconfig_gets_its_token_from_the_plugin(
    control_plane: ControlPlane, area: str, tmp_path: Path
) -> None:
    kubeconfig, _ = node_reader(control_plane, "exec")
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": _token(kubeconfig)},
        }
    )
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "sh",
        "args": ["-c", f"printf '%s' {shlex.quote(credential)}"],
        "interactiveMode": "Never",
    }
    rewritten = _rewrite_user(kubeconfig, tmp_path / "kubeconfig", {"exec": plugin})

    _serves(rewritten, area)


def test_a_rotated_token_file_is_read_again_once_the_old_token_stops_working(
    control_plane: ControlPlane, area: str, tmp_path: Path
) -> None:
    """As kubelet rotates a projected token: the file gets a new token, the old one dies."""
    kube = control_plane.kube
    namespace, account, role = unique("rot-ns"), unique("rot-sa"), unique("rot-reader")
    kube.create_namespace(namespace)
    kube.create_service_account(namespace, account)
    kube.create_cluster_role(role, NODE_READER)
    kube.bind_cluster_role(role, namespace, account)
    token_file = tmp_path / "token"
    token_file.write_text(kube.mint_token(namespace, account))
    kubeconfig, _ = node_reader(control_plane, "rot-template")
    rewritten = _rewrite_user(kubeconfig, tmp_path / "kubeconfig", {"tokenFile": str(token_file)})

    with NodeDns(rewritten) as server:
        wait_for(lambda: answers(server, area) == {"192.0.2.77"}, timeout=10, what="first answer")
        # Recreating the ServiceAccount invalidates every token of the old one (bound to its uid).
        kube.call("DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}")
        kube.create_service_account(namespace, account)
        # The apiserver keeps accepting a token it validated in the last 10 s (its token success
        # cache), and node-dns asks every 2 s: the refusal can take 12 s and more on a busy machine.
        wait_for(
            lambda: (metric(server, "node_dns_node_lists_total", result="error") or 0.0) > 0,
            timeout=30,
            what="the old token rejected",
        )
        token_file.write_text(kube.mint_token(namespace, account))
        later_area, later = unique("rot"), unique("rot-node")
        control_plane.create_node(
            later, annotations={AREAS_ANNOTATION: later_area, IPS_ANNOTATION: "192.0.2.78"}
        )
        try:
            # reachable again: only a request with the token now in the file can succeed
            wait_for(
                lambda: metric(server, "node_dns_apiserver_reachable") == 1.0,
                timeout=15,
                what="the apiserver accepting the rotated token",
            )
            assert "apiserver reachable again" in server.logs()
            wait_for(
                lambda: answers(server, later_area) == {"192.0.2.78"}, timeout=20, what="node after rotation"
            )
            assert server.http_get("/readyz")[0] == 200
        finally:
            control_plane.delete_nodes([later])


def test_a_client_certificate_kubeconfig_authenticates_as_its_user(
    control_plane: ControlPlane, area: str, tmp_path: Path
) -> None:
    """As kubeadm's admin.conf does: client-certificate-data and client-key-data, no token."""
    kube = control_plane.kube
    user, role = unique("cert-user"), unique("cert-reader")
    kube.create_cluster_role(role, NODE_READER)
    kube.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    cert, key = control_plane.client_certificate(user)
    kubeconfig, _ = node_reader(control_plane, "cert-template")
    rewritten = _rewrite_user(
        kubeconfig,
        tmp_path / "kubeconfig",
        {
            "client-certificate-data": base64.b64encode(cert.encode()).decode(),
            "client-key-data": base64.b64encode(key.encode()).decode(),
        },
    )

    _serves(rewritten, area)
