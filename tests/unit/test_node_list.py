"""The client's LIST: only a complete, successful list may count as one. An HTTP error on any
page (403 with read-only RBAC gone wrong, 410 for an expired continue token, a proxy's 503) must
fail the whole list, never read as an empty or partial one that would empty the zone.

The pages come from an HTTP server on loopback (a proxy's HTML error page and a 410 on exactly
the second page cannot be provoked on demand from a real apiserver); the client under test is
the real one. tests/integration/test_kube_client.py runs the same client against the apiserver.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from node_dns import kube
from node_dns.kube.client import PAGE
from node_dns.sources import lister, nodes
from tests.unit import zonekit


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()


def node_list(names: list[str], *, cont: str | None = None, version: str = "77") -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": version}
    if cont:
        meta["continue"] = cont
    return {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": meta,
        "items": [{"metadata": {"name": n}} for n in names],
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


class Pages(list[FakeResponse]):
    """Responses handed out in order, one per GET /api/v1/nodes; the requests are recorded."""

    url = ""
    requests: list[dict[str, str]]


@pytest.fixture
async def pages() -> AsyncIterator[Pages]:
    queue = Pages()
    queue.requests = []

    async def list_node(request: web.Request) -> web.Response:
        queue.requests.append({**request.query, "authorization": request.headers.get("Authorization", "")})
        page = queue.pop(0)
        return web.Response(status=page.status, body=page.body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/nodes", list_node)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    queue.url = f"http://127.0.0.1:{port}"
    yield queue
    await runner.cleanup()


@pytest.fixture
def kubeconfig(tmp_path: Path, pages: Pages) -> Path:
    path = tmp_path / "kubeconfig"
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": pages.url}}],
        "users": [{"name": "u", "user": {"token": "t0k3n"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


async def list_with(queue: Pages, kubeconfig: Path) -> tuple[list[Any], str | None]:
    api = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    try:
        listed = await api.list("/api/v1/nodes", kind="NodeList")
    finally:
        await api.close()
    return listed.items, listed.resource_version


async def test_pages_are_joined_into_one_list_with_the_last_version(pages: Pages, kubeconfig: Path) -> None:
    pages += [
        FakeResponse(200, node_list(["a", "b"], cont="t1")),
        FakeResponse(200, node_list(["c"], version="78")),
    ]

    items, version = await list_with(pages, kubeconfig)

    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"]
    assert version == "78"


async def test_forbidden_list_fails_instead_of_reading_as_empty(pages: Pages, kubeconfig: Path) -> None:
    pages.append(FakeResponse(403, status(403, "Forbidden", 'nodes is forbidden: User "x" cannot list')))

    with pytest.raises(kube.ApiError, match=r"403 .*forbidden"):
        await list_with(pages, kubeconfig)


async def test_expired_continue_token_fails_instead_of_giving_a_partial_list(
    pages: Pages, kubeconfig: Path
) -> None:
    pages += [
        FakeResponse(200, node_list(["a"], cont="t1")),
        FakeResponse(410, status(410, "Expired", "The provided continue parameter is too old")),
    ]

    with pytest.raises(kube.Gone, match="410"):
        await list_with(pages, kubeconfig)


async def test_non_json_error_page_fails(pages: Pages, kubeconfig: Path) -> None:
    pages.append(FakeResponse(503, b"<html>no healthy upstream</html>"))

    with pytest.raises(kube.ApiError, match="503"):
        await list_with(pages, kubeconfig)


async def test_success_status_with_something_other_than_a_node_list_fails(
    pages: Pages, kubeconfig: Path
) -> None:
    pages.append(FakeResponse(200, {"kind": "Status", "status": "Success"}))

    with pytest.raises(kube.ApiError):
        await list_with(pages, kubeconfig)


async def test_each_page_asks_for_the_next_with_the_continue_token_and_the_bearer_token(
    pages: Pages, kubeconfig: Path
) -> None:
    pages += [
        FakeResponse(200, node_list(["a"], cont="t1")),
        FakeResponse(200, node_list(["b"])),
    ]

    await list_with(pages, kubeconfig)

    assert pages.requests == [
        {"limit": str(PAGE), "authorization": "Bearer t0k3n"},
        {"limit": str(PAGE), "continue": "t1", "authorization": "Bearer t0k3n"},
    ]


async def test_a_page_size_given_to_one_list_is_asked_for_instead_of_the_clients(
    pages: Pages, kubeconfig: Path
) -> None:
    pages.append(FakeResponse(200, node_list(["a"])))
    api = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    try:
        await api.list("/api/v1/nodes", kind="NodeList", page_size=50)
    finally:
        await api.close()

    assert pages.requests[0]["limit"] == "50"


async def test_resyncs_read_small_pages_after_a_first_list_of_big_ones(
    pages: Pages, kubeconfig: Path
) -> None:
    pages += [FakeResponse(200, node_list(["a"])), FakeResponse(200, node_list(["a"], version="78"))]
    api = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    zone = zonekit.new_zone(zonekit.settings())
    source = nodes.NodeSource(zone, nodes.Keys(areas="a", ips="i"))
    node_lister = lister.Lister(source, api, resync_interval=300)
    try:
        await node_lister.list_once()
        await node_lister.list_once()
    finally:
        await api.close()

    assert [r["limit"] for r in pages.requests] == [str(lister.FIRST_PAGE), str(lister.RESYNC_PAGE)]
    assert lister.RESYNC_PAGE < lister.FIRST_PAGE


class RecordingSource(nodes.NodeSource):
    """Notes how many pages had been asked for each time a node is read into facts."""

    def __init__(self, zone: Any, pages: Pages) -> None:
        super().__init__(zone, nodes.Keys(areas="a", ips="i"))
        self.asked_when_read: list[int] = []
        self._pages = pages

    def _listed(self, item: Any) -> tuple[Any, str | None]:
        self.asked_when_read.append(len(self._pages.requests))
        return super()._listed(item)


async def test_a_list_reads_each_page_into_facts_before_asking_for_the_next(
    pages: Pages, kubeconfig: Path
) -> None:
    pages += [
        FakeResponse(200, node_list(["a", "b"], cont="t1")),
        FakeResponse(200, node_list(["c"], cont="t2")),
        FakeResponse(200, node_list(["d"])),
    ]
    api = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    zone = zonekit.new_zone(zonekit.settings())
    source = RecordingSource(zone, pages)
    try:
        await lister.Lister(source, api, resync_interval=300).list_once()
    finally:
        await api.close()

    assert source.asked_when_read == [1, 1, 2, 3]
    assert sorted(zone.facts.nodes) == ["a", "b", "c", "d"]


async def test_a_resync_that_fails_on_a_later_page_deletes_nothing(pages: Pages, kubeconfig: Path) -> None:
    pages += [
        FakeResponse(200, node_list(["a", "b"], version="77")),
        FakeResponse(200, node_list(["a"], cont="t1", version="80")),
        FakeResponse(410, status(410, "Expired", "continue token expired")),
    ]
    api = kube.Client(kube.CredentialsLoader(str(kubeconfig)))
    zone = zonekit.new_zone(zonekit.settings())
    source = nodes.NodeSource(zone, nodes.Keys(areas="a", ips="i"))
    node_lister = lister.Lister(source, api, resync_interval=300)
    try:
        await node_lister.list_once()
        serial = zone.snapshot.serial
        with pytest.raises(kube.Gone):
            await node_lister.list_once()
    finally:
        await api.close()

    assert sorted(zone.facts.nodes) == ["a", "b"]  # b, missing from the part read, stays
    assert zone.snapshot.serial == serial  # a, as read, did not change
