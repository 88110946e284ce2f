"""Credentials against the real apiserver: the kubeconfig forms node-dns reads itself (token,
tokenFile relative to the kubeconfig, CA data) and the ones it hands to kubernetes-asyncio (an
exec plugin), each reaching an authoritative zone with a node's address in it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import AREAS_ANNOTATION, IPS_ANNOTATION, answers, node_reader, unique, wait_for

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
