"""The few API calls leader election and its tasks make, as raw JSON over kubernetes-asyncio.

Raw JSON (``_preload_content=False``) rather than typed models: the typed models turn MicroTime
into naive ``datetime`` objects and back into text the code does not control; here the Lease's
spec is written exactly as :mod:`node_dns.leader.decide` formats it. Every call takes a timeout,
so no caller waits longer than it decided to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported at run time only when leader election starts (36 MB of models)
    from kubernetes_asyncio import client


class ApiError(Exception):
    """A non-2xx answer; ``status`` is the HTTP status, ``reason`` the apiserver's reason."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{what}: HTTP {status}: {str(message)[:300]}")


class Conflict(ApiError):
    """409: the object changed since it was read (or already exists on create)."""


class LeaseApi(Protocol):
    """What the elector needs: read, create and replace one Lease. Fakes implement this in tests."""

    async def get(self, request_timeout: float) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist."""
        ...

    async def create(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]: ...

    async def replace(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        """PUT of a Lease read before: raises :class:`Conflict` if its resourceVersion is stale."""
        ...


async def _result(response: Any, what: str) -> Any:
    try:
        raw = await response.read()
    finally:
        response.release()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = raw.decode("utf-8", "replace")
    if response.status == 409:
        raise Conflict(response.status, body, what)
    if not 200 <= response.status < 300:
        raise ApiError(response.status, body, what)
    return body


class KubeLeases:
    """One Lease through ``coordination.k8s.io/v1``."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        from kubernetes_asyncio import client

        self._api: Any = client.CoordinationV1Api(api)  # raw responses: not what the stubs say
        self.namespace = namespace
        self.name = name

    async def get(self, request_timeout: float) -> dict[str, Any] | None:
        response = await self._api.read_namespaced_lease(
            self.name, self.namespace, _preload_content=False, _request_timeout=max(request_timeout, 0.05)
        )
        if response.status == 404:
            response.release()
            return None
        result: dict[str, Any] = await _result(response, f"GET lease {self.namespace}/{self.name}")
        return result

    async def create(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        response = await self._api.create_namespaced_lease(
            self.namespace, dict(body), _preload_content=False, _request_timeout=max(request_timeout, 0.05)
        )
        result: dict[str, Any] = await _result(response, f"create lease {self.namespace}/{self.name}")
        return result

    async def replace(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        response = await self._api.replace_namespaced_lease(
            self.name,
            self.namespace,
            dict(body),
            _preload_content=False,
            _request_timeout=max(request_timeout, 0.05),
        )
        result: dict[str, Any] = await _result(response, f"update lease {self.namespace}/{self.name}")
        return result


class KubeEvents:
    """Reading Nodes (for their uid) and creating core/v1 Events."""

    def __init__(self, api: client.ApiClient, timeout: float = 10.0) -> None:
        from kubernetes_asyncio import client

        self._core: Any = client.CoreV1Api(api)
        self._timeout = timeout

    async def get_node(self, name: str) -> dict[str, Any] | None:
        response = await self._core.read_node(name, _preload_content=False, _request_timeout=self._timeout)
        if response.status == 404:
            response.release()
            return None
        result: dict[str, Any] = await _result(response, f"GET node {name}")
        return result

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._core.create_namespaced_event(
            namespace, dict(body), _preload_content=False, _request_timeout=self._timeout
        )
        result: dict[str, Any] = await _result(response, f"create event in {namespace}")
        return result
