"""The one Kubernetes client against the real apiserver: every verb node-dns and its features use
(GET, paged LIST, WATCH, POST, PUT, JSON merge and JSON patches, DELETE), the statuses callers act
on (404, 409 on a stale resourceVersion or a taken name, 410 for a too-old version, 403), and
credentials: a rotated token read again after a 401, a client certificate given as data."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_dns import kube
from tests.harness.controlplane import ControlPlane
from tests.integration.livedns import NODE_READER, node_reader, unbound_identity, unique

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def admin(control_plane: ControlPlane) -> AsyncIterator[kube.Client]:
    client = kube.Client(kube.CredentialsLoader(str(control_plane.kubeconfig)))
    yield client
    await client.close()


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = unique("kc")
    control_plane.create_namespace(name)
    yield name
    control_plane.kube.call("DELETE", f"/api/v1/namespaces/{name}")


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_get_returns_the_object_and_not_found_is_its_own_error(
    control_plane: ControlPlane, admin: kube.Client
) -> None:
    name = unique("kc-node")
    control_plane.create_node(name)
    try:
        node = await admin.get(f"/api/v1/nodes/{name}")
        assert node["metadata"]["name"] == name
        with pytest.raises(kube.NotFound, match="404"):
            await admin.get(f"/api/v1/nodes/{name}-absent")
    finally:
        control_plane.delete_nodes([name])


async def test_a_list_in_small_pages_is_the_complete_list(control_plane: ControlPlane) -> None:
    label = unique("kc-page")
    names = sorted(unique("kc-pnode") for _ in range(5))
    for name in names:
        control_plane.create_node(name, labels={"kc-page": label})
    client = kube.Client(kube.CredentialsLoader(str(control_plane.kubeconfig)), page=2)
    try:
        listed = await client.list(
            "/api/v1/nodes", kind="NodeList", params={"labelSelector": f"kc-page={label}"}
        )
    finally:
        await client.close()
        control_plane.delete_nodes(names)

    assert sorted(item["metadata"]["name"] for item in listed.items) == names
    assert listed.resource_version


async def test_create_twice_is_a_conflict_naming_already_exists(admin: kube.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await admin.post(path, config_map("twice", {"a": "1"}))

    with pytest.raises(kube.Conflict) as caught:
        await admin.post(path, config_map("twice", {"a": "2"}))

    assert caught.value.status == 409
    assert caught.value.reason == "AlreadyExists"


async def test_a_put_of_a_stale_object_is_a_conflict_and_a_fresh_one_succeeds(
    admin: kube.Client, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    first = await admin.post(path, config_map("stale", {"v": "1"}))
    second = await admin.put(f"{path}/stale", {**first, "data": {"v": "2"}})

    with pytest.raises(kube.Conflict, match="409"):
        await admin.put(f"{path}/stale", {**first, "data": {"v": "3"}})
    third = await admin.put(f"{path}/stale", {**second, "data": {"v": "3"}})

    assert third["data"] == {"v": "3"}


async def test_concurrent_updates_retry_on_conflict_and_lose_nothing(
    admin: kube.Client, namespace: str
) -> None:
    """Ten read-modify-write increments at once: each 409 re-reads, every increment lands."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await admin.post(path, config_map("counter", {"n": "0"}))

    def increment(obj: dict[str, Any]) -> dict[str, Any]:
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
        return obj

    await asyncio.gather(*(admin.update(f"{path}/counter", increment, attempts=20) for _ in range(10)))

    assert (await admin.get(f"{path}/counter"))["data"] == {"n": "10"}


async def test_an_update_with_nothing_to_change_writes_nothing(admin: kube.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = await admin.post(path, config_map("unchanged", {"v": "1"}))

    result = await admin.update(f"{path}/unchanged", lambda obj: None)

    assert result["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_a_merge_patch_sets_and_removes_keys(admin: kube.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await admin.post(path, config_map("merge", {"keep": "1", "drop": "2"}))

    patched = await admin.patch(f"{path}/merge", {"data": {"drop": None, "new": "3"}})

    assert patched["data"] == {"keep": "1", "new": "3"}


async def test_a_json_patch_with_a_failing_test_operation_changes_nothing(
    admin: kube.Client, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await admin.post(path, config_map("jsonpatch", {"v": "1"}))
    guarded = [
        {"op": "test", "path": "/data/v", "value": "0"},
        {"op": "replace", "path": "/data/v", "value": "9"},
    ]

    with pytest.raises(kube.ApiError, match=r"422|409"):
        await admin.patch(f"{path}/jsonpatch", guarded, patch="json")
    ok = await admin.patch(
        f"{path}/jsonpatch", [{"op": "replace", "path": "/data/v", "value": "2"}], patch="json"
    )

    assert ok["data"] == {"v": "2"}


async def test_delete_removes_the_object(admin: kube.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await admin.post(path, config_map("gone-soon", {}))

    await admin.delete(f"{path}/gone-soon")

    with pytest.raises(kube.NotFound):
        await admin.get(f"{path}/gone-soon")


async def test_a_watch_from_a_list_version_sees_add_modify_delete_in_order(
    admin: kube.Client, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    name = unique("watched")
    listed = await admin.list(path, params={"fieldSelector": f"metadata.name={name}"})
    await admin.post(path, config_map(name, {"v": "1"}))
    await admin.patch(f"{path}/{name}", {"data": {"v": "2"}})
    await admin.delete(f"{path}/{name}")

    seen: list[tuple[str, str | None]] = []
    async with asyncio.timeout(30):
        async for event in admin.watch(
            path,
            resource_version=listed.resource_version,
            params={"fieldSelector": f"metadata.name={name}"},
            timeout_seconds=20,
        ):
            if event.type == "BOOKMARK":
                continue
            seen.append((event.type, (event.object.get("data") or {}).get("v")))
            if event.type == "DELETED":
                break

    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


@pytest.fixture(scope="module")
def compacting() -> Iterator[ControlPlane]:
    """An apiserver that compacts etcd every 5 s and has no watch cache: old versions die."""
    with ControlPlane(apiserver_args=["--etcd-compaction-interval=5s", "--watch-cache=false"]) as plane:
        yield plane


async def until_gone(attempt: Callable[[], Awaitable[object]], within: float = 60.0) -> kube.Gone:
    """Repeat ``attempt`` until it raises Gone (compaction runs on the apiserver's schedule)."""
    async with asyncio.timeout(within):
        while True:
            try:
                await attempt()
            except kube.Gone as gone:
                return gone
            await asyncio.sleep(0.5)


async def test_a_watch_from_a_compacted_version_is_gone(compacting: ControlPlane) -> None:
    """A version older than etcd keeps is answered 410: the caller must list again."""
    client = kube.Client(kube.CredentialsLoader(str(compacting.kubeconfig)))
    path = "/api/v1/namespaces/default/configmaps"
    try:
        old = (await client.list(path)).resource_version
        for index in range(3):
            await client.post(path, config_map(unique(f"churn{index}"), {}))

        async def watch_from_old() -> None:
            async for _ in client.watch(path, resource_version=old, timeout_seconds=1):
                pass
            await client.post(path, config_map(unique("churn"), {}))  # keep revisions moving

        gone = await until_gone(watch_from_old)
    finally:
        await client.close()
    assert gone.status == 410


async def test_a_list_whose_continue_token_expired_is_gone_not_partial(compacting: ControlPlane) -> None:
    client = kube.Client(kube.CredentialsLoader(str(compacting.kubeconfig)))
    path = "/api/v1/namespaces/default/configmaps"
    try:
        for index in range(3):
            await client.post(path, config_map(unique(f"page{index}"), {}))
        first = await client.get(path, params={"limit": "1"})
        token = first["metadata"]["continue"]

        async def next_page() -> None:
            await client.get(path, params={"limit": "1", "continue": token})
            await client.post(path, config_map(unique("churn"), {}))

        gone = await until_gone(next_page)
    finally:
        await client.close()
    assert gone.reason == "Expired"


async def test_forbidden_is_an_api_error_with_the_status(control_plane: ControlPlane) -> None:
    kubeconfig, _, _ = unbound_identity(control_plane, "kc-forbidden")
    client = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    try:
        with pytest.raises(kube.ApiError, match="403 Forbidden") as caught:
            await client.list("/api/v1/nodes")
    finally:
        await client.close()
    assert caught.value.status == 403


async def until_rejected(client: kube.Client, within: float = 30.0) -> None:
    """Wait until the apiserver answers 401 (its token authenticator caches for a moment)."""
    async with asyncio.timeout(within):
        while True:
            try:
                await client.list("/api/v1/nodes")
            except kube.Unauthorized:
                return
            await asyncio.sleep(0.2)


async def test_a_token_file_rotated_after_the_old_token_died_is_used_without_an_error(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """After a 401 the client reads the credentials again and repeats the request once."""
    kube_admin = control_plane.kube
    ns, account, role = unique("kc-rot-ns"), unique("kc-rot-sa"), unique("kc-rot")
    kube_admin.create_namespace(ns)
    kube_admin.create_service_account(ns, account)
    kube_admin.create_cluster_role(role, NODE_READER)
    kube_admin.bind_cluster_role(role, ns, account)
    template, _ = node_reader(control_plane, "kc-rot-template")
    doc = yaml.safe_load(template.read_text())
    token_file = tmp_path / "token"
    token_file.write_text(kube_admin.mint_token(ns, account))
    doc["users"][0]["user"] = {"tokenFile": str(token_file)}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    client = kube.Client(kube.CredentialsLoader(str(tmp_path / "kubeconfig")))
    try:
        await client.list("/api/v1/nodes")
        # Recreating the ServiceAccount invalidates every token of the old one (bound to its uid).
        kube_admin.call("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}")
        kube_admin.create_service_account(ns, account)
        await until_rejected(client)
        token_file.write_text(kube_admin.mint_token(ns, account))

        listed = await client.list("/api/v1/nodes", kind="NodeList")
    finally:
        await client.close()
    assert listed.resource_version


async def test_a_client_certificate_given_as_data_authenticates(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    user = unique("kc-cert")
    cert, key = control_plane.client_certificate(user, groups=["system:masters"])
    assert control_plane.kubeconfig is not None
    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(cert.encode()).decode(),
        "client-key-data": base64.b64encode(key.encode()).decode(),
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    client = kube.Client(kube.CredentialsLoader(str(tmp_path / "kubeconfig")))
    try:
        version = await client.get("/version")
        nodes = await client.list("/api/v1/nodes", kind="NodeList")
    finally:
        await client.close()
    assert version.get("gitVersion")
    assert isinstance(nodes.items, list)


async def test_no_answer_is_unreachable(tmp_path: Path) -> None:
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    client = kube.Client(kube.CredentialsLoader(str(tmp_path / "kubeconfig")))
    try:
        with pytest.raises(kube.Unreachable, match="GET /version"):
            await client.probe()
    finally:
        await client.close()


async def whoami(client: kube.Client) -> str:
    review = await client.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(review["status"]["userInfo"]["username"])


async def test_credentials_that_change_tls_material_get_a_new_connection(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A kubeconfig rewritten from a token to a client certificate: the next request is the
    certificate's user (a new TLS session), not the token's on the old connection."""
    assert control_plane.kubeconfig is not None
    user = unique("kc-switch")
    cert, key = control_plane.client_certificate(user)
    path = tmp_path / "kubeconfig"
    path.write_text(control_plane.kubeconfig.read_text())
    client = kube.Client(kube.CredentialsLoader(str(path), reread_after=0.0))
    try:
        before = await whoami(client)
        doc = yaml.safe_load(path.read_text())
        doc["users"][0]["user"] = {
            "client-certificate-data": base64.b64encode(cert.encode()).decode(),
            "client-key-data": base64.b64encode(key.encode()).decode(),
        }
        path.write_text(yaml.safe_dump(doc))
        after = await whoami(client)
    finally:
        await client.close()

    assert (before, after) == ("harness-admin", user)


async def test_a_watch_running_when_the_tls_material_changes_is_not_cut_off(
    control_plane: ControlPlane, tmp_path: Path, namespace: str
) -> None:
    """The stream opened with the token keeps delivering after the client moved to a certificate."""
    assert control_plane.kubeconfig is not None
    cert, key = control_plane.client_certificate(unique("kc-rotate"), groups=["system:masters"])
    path = tmp_path / "kubeconfig"
    path.write_text(control_plane.kubeconfig.read_text())
    client = kube.Client(kube.CredentialsLoader(str(path), reread_after=0.0))
    collection = f"/api/v1/namespaces/{namespace}/configmaps"
    label = unique("rotation")
    first, second = unique("before"), unique("after")
    added: asyncio.Queue[str] = asyncio.Queue()

    def labelled(name: str) -> dict[str, Any]:
        body = config_map(name, {})
        body["metadata"]["labels"] = {"kc-rotation": label}
        return body

    async def follow(version: str | None) -> None:
        async for event in client.watch(
            collection,
            resource_version=version,
            params={"labelSelector": f"kc-rotation={label}"},
            timeout_seconds=60,
        ):
            if event.type == "ADDED":
                await added.put(event.object["metadata"]["name"])

    try:
        listed = await client.list(collection)
        watching = asyncio.create_task(follow(listed.resource_version))
        await client.post(collection, labelled(first))
        async with asyncio.timeout(30):
            assert await added.get() == first  # the stream is open, on the token's connection
        doc = yaml.safe_load(path.read_text())
        doc["users"][0]["user"] = {
            "client-certificate-data": base64.b64encode(cert.encode()).decode(),
            "client-key-data": base64.b64encode(key.encode()).decode(),
        }
        path.write_text(yaml.safe_dump(doc))
        await client.post(collection, labelled(second))  # a new connection, as the certificate
        async with asyncio.timeout(30):
            delivered = await added.get()
        still_open = not watching.done()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    finally:
        await client.close()

    assert (delivered, still_open) == (second, True)
