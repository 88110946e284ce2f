"""The lister's own LIST: only a complete, successful list may count as one. An HTTP error on any
page (403 with read-only RBAC gone wrong, 410 for an expired continue token, a proxy's 503) must
fail the whole list, never read as an empty or partial one that would empty the zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from node_dns.sources import kube


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._body = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def read(self) -> bytes:
        return self._body


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


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeResponse]]:
    """Responses handed out in order by CoreV1Api.list_node, one per page requested."""
    queue: list[FakeResponse] = []

    async def list_node(self: Any, **kwargs: Any) -> FakeResponse:
        assert kwargs["_preload_content"] is False
        return queue.pop(0)

    monkeypatch.setattr(client.CoreV1Api, "list_node", list_node)
    yield queue


async def list_with(queue: list[FakeResponse]) -> tuple[list[Any], str | None]:
    api = kube.Kube(client.Configuration())
    try:
        return await api.list_nodes()
    finally:
        await api.close()


async def test_pages_are_joined_into_one_list_with_the_last_version(pages: list[FakeResponse]) -> None:
    pages += [
        FakeResponse(200, node_list(["a", "b"], cont="t1")),
        FakeResponse(200, node_list(["c"], version="78")),
    ]

    items, version = await list_with(pages)

    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"]
    assert version == "78"


async def test_forbidden_list_fails_instead_of_reading_as_empty(pages: list[FakeResponse]) -> None:
    pages.append(FakeResponse(403, status(403, "Forbidden", 'nodes is forbidden: User "x" cannot list')))

    with pytest.raises(kube.ListError, match=r"403 .*forbidden"):
        await list_with(pages)


async def test_expired_continue_token_fails_instead_of_giving_a_partial_list(
    pages: list[FakeResponse],
) -> None:
    pages += [
        FakeResponse(200, node_list(["a"], cont="t1")),
        FakeResponse(410, status(410, "Expired", "The provided continue parameter is too old")),
    ]

    with pytest.raises(kube.ListError, match="410"):
        await list_with(pages)


async def test_non_json_error_page_fails(pages: list[FakeResponse]) -> None:
    pages.append(FakeResponse(503, b"<html>no healthy upstream</html>"))

    with pytest.raises(kube.ListError, match="503"):
        await list_with(pages)


async def test_success_status_with_something_other_than_a_node_list_fails(pages: list[FakeResponse]) -> None:
    pages.append(FakeResponse(200, {"kind": "Status", "status": "Success"}))

    with pytest.raises(kube.ListError):
        await list_with(pages)
