"""The few API calls leader election and its tasks make, through :class:`node_dns.kube.Client`.

The Lease's spec is written exactly as :mod:`node_dns.leader.decide` formats it (raw JSON, no
typed models turning MicroTime into naive datetimes). Every call takes a timeout, so no caller
waits longer than it decided to. The protocols are what the elector and the Event recorder
need; unit tests give them in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from node_dns import kube

MIN_TIMEOUT = 0.05
"""A request is never sent with less time than this (an already-passed deadline would be 0)."""


class LeaseApi(Protocol):
    """What the elector needs: read, create and replace one Lease. Fakes implement this in tests."""

    async def get(self, request_timeout: float) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist."""
        ...

    async def create(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]: ...

    async def replace(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        """PUT of a Lease read before: raises :class:`kube.Conflict` if its resourceVersion is stale."""
        ...


class KubeLeases:
    """One Lease through ``coordination.k8s.io/v1``."""

    def __init__(self, client: kube.Client, namespace: str, name: str) -> None:
        self._client = client
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    async def get(self, request_timeout: float) -> dict[str, Any] | None:
        try:
            return await self._client.get(
                f"{self._collection}/{self.name}", request_timeout=max(request_timeout, MIN_TIMEOUT)
            )
        except kube.NotFound:
            return None

    async def create(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        return await self._client.post(
            self._collection, body, request_timeout=max(request_timeout, MIN_TIMEOUT)
        )

    async def replace(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        return await self._client.put(
            f"{self._collection}/{self.name}", body, request_timeout=max(request_timeout, MIN_TIMEOUT)
        )


class KubeEvents:
    """Reading Nodes (for their uid) and creating core/v1 Events."""

    def __init__(self, client: kube.Client, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout

    async def get_node(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._client.get(f"/api/v1/nodes/{name}", request_timeout=self._timeout)
        except kube.NotFound:
            return None

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._client.post(
            f"/api/v1/namespaces/{namespace}/events", body, request_timeout=self._timeout
        )
