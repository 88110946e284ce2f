"""The node agent's lean apiserver client (GET and PATCH on one HTTP/1.1 connection, no aiohttp)
against the real apiserver: the calls the agent makes, the statuses it acts on, credentials
read again after a 401, client certificates, one kept-alive connection, and a connection the
server closed while it was idle."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from node_dns import kube
from tests.harness.controlplane import ControlPlane
from tests.harness.netns import TcpRelay
from tests.integration.livedns import NODE_READER, node_reader, unbound_identity, unique

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def admin(control_plane: ControlPlane) -> AsyncIterator[kube.LeanClient]:
    client = kube.LeanClient(kube.CredentialsLoader(str(control_plane.kubeconfig)))
    yield client
    await client.close()


@pytest.fixture
def node(control_plane: ControlPlane) -> Iterator[str]:
    name = unique("lean-node")
    control_plane.create_node(name)
    yield name
    control_plane.delete_nodes([name])


def node_path(name: str) -> str:
    return f"/api/v1/nodes/{name}"


async def test_get_returns_the_object_and_not_found_is_its_own_error(
    admin: kube.LeanClient, node: str
) -> None:
    found = await admin.get(node_path(node))

    assert found["metadata"]["name"] == node
    with pytest.raises(kube.NotFound, match="404"):
        await admin.get(node_path(f"{node}-absent"))


async def test_a_merge_patch_sets_and_removes_one_annotation(
    admin: kube.LeanClient, control_plane: ControlPlane, node: str
) -> None:
    patched = await admin.patch(
        node_path(node), {"metadata": {"annotations": {"example.com/ips": "11.0.0.1"}}}
    )
    assert patched["metadata"]["annotations"]["example.com/ips"] == "11.0.0.1"

    await admin.patch(node_path(node), {"metadata": {"annotations": {"example.com/ips": None}}})

    annotations = control_plane.get_node(node)["metadata"].get("annotations") or {}
    assert "example.com/ips" not in annotations


async def test_a_large_object_is_read_whole(admin: kube.LeanClient, node: str) -> None:
    """The apiserver sends large answers in chunks (no Content-Length)."""
    value = "x" * 200_000
    await admin.patch(node_path(node), {"metadata": {"annotations": {"example.com/big": value}}})

    found = await admin.get(node_path(node))

    assert found["metadata"]["annotations"]["example.com/big"] == value


async def test_query_parameters_reach_the_apiserver(admin: kube.LeanClient, node: str) -> None:
    listed = await admin.get("/api/v1/nodes", params={"fieldSelector": f"metadata.name={node}"})

    assert [item["metadata"]["name"] for item in listed["items"]] == [node]


async def test_forbidden_is_an_api_error_with_the_status(control_plane: ControlPlane, node: str) -> None:
    kubeconfig, _, _ = unbound_identity(control_plane, "lean-forbidden")
    client = kube.LeanClient(kube.CredentialsLoader(str(kubeconfig)))
    try:
        with pytest.raises(kube.ApiError, match="403 Forbidden") as caught:
            await client.get(node_path(node))
    finally:
        await client.close()
    assert caught.value.status == 403


async def test_calls_share_one_kept_alive_connection(control_plane: ControlPlane, node: str) -> None:
    relay, client = relayed(control_plane)
    try:
        for _ in range(5):
            await client.get(node_path(node))
    finally:
        await client.close()
        relay.close()

    assert relay.accepted == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(
    control_plane: ControlPlane, node: str
) -> None:
    relay, client = relayed(control_plane)
    try:
        await client.get(node_path(node))
        relay.drop_connections()

        found = await client.get(node_path(node))
    finally:
        await client.close()
        relay.close()

    assert found["metadata"]["name"] == node
    assert relay.accepted == 2


async def test_no_answer_is_unreachable(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "https://127.0.0.1:9", {"token": "t"})
    client = kube.LeanClient(kube.CredentialsLoader(str(path)), timeout=5.0)
    try:
        with pytest.raises(kube.Unreachable, match="GET /version"):
            await client.get("/version")
    finally:
        await client.close()


async def test_a_server_that_never_answers_is_unreachable_after_the_timeout(tmp_path: Path) -> None:
    """A listening socket nobody reads: the connection opens, the TLS handshake never ends."""
    silent = socket.create_server(("127.0.0.1", 0))
    path = kubeconfig(tmp_path, f"https://127.0.0.1:{silent.getsockname()[1]}", {"token": "t"})
    client = kube.LeanClient(kube.CredentialsLoader(str(path)), timeout=1.0)
    try:
        with pytest.raises(kube.Unreachable, match="GET /version: TimeoutError"):
            await client.get("/version")
    finally:
        await client.close()
        silent.close()


async def test_a_rotated_token_is_read_again_after_a_401(control_plane: ControlPlane, tmp_path: Path) -> None:
    """After a 401 the client reads the credentials again and repeats the request once."""
    kube_admin = control_plane.kube
    ns, account, role = unique("lean-rot-ns"), unique("lean-rot-sa"), unique("lean-rot")
    kube_admin.create_namespace(ns)
    kube_admin.create_service_account(ns, account)
    kube_admin.create_cluster_role(role, NODE_READER)
    kube_admin.bind_cluster_role(role, ns, account)
    template, _ = node_reader(control_plane, "lean-rot-template")
    doc = yaml.safe_load(template.read_text())
    token_file = tmp_path / "token"
    token_file.write_text(kube_admin.mint_token(ns, account))
    doc["users"][0]["user"] = {"tokenFile": str(token_file)}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    client = kube.LeanClient(kube.CredentialsLoader(str(tmp_path / "kubeconfig")))
    try:
        await client.get("/api/v1/nodes", params={"limit": "1"})
        # Recreating the ServiceAccount invalidates every token of the old one (bound to its uid).
        kube_admin.call("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}")
        kube_admin.create_service_account(ns, account)
        await until_rejected(client)
        token_file.write_text(kube_admin.mint_token(ns, account))

        listed = await client.get("/api/v1/nodes", params={"limit": "1"})
    finally:
        await client.close()
    assert listed["kind"] == "NodeList"


async def test_a_client_certificate_given_as_data_authenticates(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cert, key = control_plane.client_certificate(unique("lean-cert"), groups=["system:masters"])
    assert control_plane.kubeconfig is not None
    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(cert.encode()).decode(),
        "client-key-data": base64.b64encode(key.encode()).decode(),
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    client = kube.LeanClient(kube.CredentialsLoader(str(tmp_path / "kubeconfig")))
    try:
        version = await client.get("/version")
    finally:
        await client.close()
    assert version.get("gitVersion")


# --- helpers ------------------------------------------------------------------------------------


def relayed(control_plane: ControlPlane) -> tuple[TcpRelay, kube.LeanClient]:
    """A client whose connections pass a relay the test can count and cut."""
    assert control_plane.kubeconfig is not None
    host, _, port = control_plane.server.removeprefix("https://").rpartition(":")
    relay = TcpRelay(host, (host, int(port)))
    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://{host}:{relay.port}"
    path = control_plane.workdir / f"{unique('lean-relay')}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return relay, kube.LeanClient(kube.CredentialsLoader(str(path)))


def kubeconfig(folder: Path, server: str, user: dict[str, str]) -> Path:
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


async def until_rejected(client: kube.LeanClient, within: float = 30.0) -> None:
    """Wait until the apiserver answers 401 (its token authenticator caches for a moment)."""
    async with asyncio.timeout(within):
        while True:
            try:
                await client.get("/api/v1/nodes", params={"limit": "1"})
            except kube.Unauthorized:
                return
            await asyncio.sleep(0.2)
