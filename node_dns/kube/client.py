"""One async client for the apiserver: raw JSON over one aiohttp session.

Every part of node-dns that calls the apiserver itself uses this: the node and Service lists,
leader election's Lease, Events, the node agent and probe verdicts. (kopf's watch has its own
session, logged in with the same :class:`~node_dns.kube.loader.CredentialsLoader`.)

Raw JSON, not typed models: typed objects cost 5x the CPU at 5,000 nodes, and a Lease's
MicroTime is written exactly as the caller formats it. Each call may bound its own time
(``request_timeout``, seconds), so no caller waits longer than it decided to.

Credentials come from the loader before every request (a dictionary lookup while they are
current). A 401 makes the loader read them again and the request is sent once more if they
changed: that is how a rotated token file or an expired exec-plugin token is picked up.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from node_dns.kube.credentials import Credentials
from node_dns.kube.errors import ApiError, Conflict, Unreachable, api_error
from node_dns.kube.loader import CredentialsLoader
from node_dns.kube.wire import PATCH_CONTENT_TYPES, PatchType
from node_dns.kube.wire import brief as _brief
from node_dns.kube.wire import decode as _decode

log = logging.getLogger(__name__)

PAGE = 500
"""Items per page of a list: a bounded response however large the cluster."""


@dataclass(frozen=True, slots=True)
class ObjectList:
    """A complete list: every page's items, and the resourceVersion to watch from."""

    items: list[dict[str, Any]]
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK`` (only its resourceVersion counts)."""

    type: str
    object: dict[str, Any] = field(repr=False)

    @property
    def resource_version(self) -> str | None:
        meta = self.object.get("metadata") or {}
        version = meta.get("resourceVersion")
        return str(version) if version else None


class Client:
    """GET, LIST, WATCH, POST, PUT, PATCH and DELETE of JSON objects by API path, and
    :meth:`update` (read-modify-write retried on 409).

    Errors: :class:`~node_dns.kube.errors.Unreachable` when no answer came (connection, TLS,
    timeout), else an :class:`~node_dns.kube.errors.ApiError` subclass by status (404
    ``NotFound``, 409 ``Conflict``, 410 ``Gone`` ...).
    """

    def __init__(
        self, loader: CredentialsLoader, *, timeout: float = 30.0, page: int = PAGE, connections: int = 8
    ) -> None:
        self.loader = loader
        self._timeout = timeout
        self._page = page
        self._connections = connections
        self._credentials: Credentials | None = None
        self._session: aiohttp.ClientSession | None = None
        self._retired: list[aiohttp.ClientSession] = []
        """The session of the previous TLS credentials: requests still running on it may finish."""

    async def close(self) -> None:
        for session in [*self._retired, self._session]:
            if session is not None:
                await session.close()
        self._session, self._retired = None, []

    # --- plumbing -------------------------------------------------------------------------------

    async def _ready(self) -> tuple[aiohttp.ClientSession, Credentials]:
        """The session for the current credentials; a new one (TLS) when more than a token changed."""
        credentials = await self.loader.current()
        if self._session is not None and not credentials.same_tls(self._credentials):
            # New TLS material (a rotated client certificate or CA): new connections from now
            # on; a list or watch still running on the old session is not cut off. The one
            # retired at the change before is closed now (rotations are rare).
            for older in self._retired:
                await older.close()
            self._retired = [self._session]
            self._session = None
        if self._session is None or self._session.closed:
            context = credentials.ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=context if context is not None else False, limit=self._connections
                ),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        self._credentials = credentials
        return self._session, credentials

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Any,
        content_type: str | None,
        request_timeout: float | None,
    ) -> tuple[int, Any]:
        """One request (twice if a 401 made the loader find new credentials): status, decoded body."""
        data = None if body is None else json.dumps(body).encode()
        extra: dict[str, Any] = (
            {"timeout": aiohttp.ClientTimeout(total=request_timeout)} if request_timeout else {}
        )
        for attempt in (1, 2):
            session, credentials = await self._ready()
            headers = {"Accept": "application/json", **credentials.headers()}
            if data is not None:
                headers["Content-Type"] = content_type or "application/json"
            try:
                async with session.request(
                    method, credentials.server + path, params=params, data=data, headers=headers, **extra
                ) as response:
                    status, raw = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                raise Unreachable(f"{method} {path}: {_brief(error)}") from error
            if status == 401 and attempt == 1 and await self.loader.refresh() != credentials:
                continue
            return status, _decode(raw)
        raise AssertionError("unreachable")  # pragma: no cover

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Any call; the decoded object of a 2xx answer, else an exception by status."""
        status, decoded = await self._send(
            method, path, params=params, body=body, content_type=content_type, request_timeout=request_timeout
        )
        if not 200 <= status <= 299:
            raise api_error(status, decoded, f"{method} {path}")
        if not isinstance(decoded, dict):
            raise ApiError(status, decoded, f"{method} {path}: not a JSON object")
        return decoded

    # --- verbs ------------------------------------------------------------------------------------

    async def get(
        self, path: str, *, params: Mapping[str, str] | None = None, request_timeout: float | None = None
    ) -> dict[str, Any]:
        """One object (``NotFound`` if it does not exist)."""
        return await self.request("GET", path, params=params, request_timeout=request_timeout)

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Create (``Conflict`` with reason ``AlreadyExists`` if the name is taken)."""
        return await self.request("POST", path, params=params, body=body, request_timeout=request_timeout)

    async def put(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Replace an object read before (``Conflict`` if its resourceVersion is stale)."""
        return await self.request("PUT", path, params=params, body=body, request_timeout=request_timeout)

    async def patch(
        self,
        path: str,
        body: Any,
        *,
        patch: PatchType = "merge",
        field_manager: str | None = None,
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch by default (RFC 7386: ``None`` deletes a key); ``json`` takes a list
        of RFC 6902 operations, ``apply`` is server-side apply (needs ``field_manager``)."""
        query = dict(params or {})
        if field_manager:
            query["fieldManager"] = field_manager
        return await self.request(
            "PATCH",
            path,
            params=query,
            body=body,
            content_type=PATCH_CONTENT_TYPES[patch],
            request_timeout=request_timeout,
        )

    async def update(
        self,
        path: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        attempts: int = 5,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Read-modify-write that loses no concurrent change: GET, ``change(object)``, PUT; on 409
        (someone wrote in between) read again and apply ``change`` to the fresh object.

        ``change`` returns the object to write, or None when nothing needs writing (the object as
        read is returned). ``Conflict`` after ``attempts`` rounds.
        """
        for attempt in range(1, attempts + 1):
            current = await self.get(path, request_timeout=request_timeout)
            wanted = change(copy.deepcopy(current))
            if wanted is None:
                return current
            try:
                return await self.put(path, wanted, request_timeout=request_timeout)
            except Conflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def delete(
        self, path: str, *, params: Mapping[str, str] | None = None, request_timeout: float | None = None
    ) -> dict[str, Any]:
        return await self.request("DELETE", path, params=params, request_timeout=request_timeout)

    async def list(
        self,
        path: str,
        *,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
        page_size: int | None = None,
    ) -> ObjectList:
        """A complete list, paged, or an exception: nothing partial is ever returned.

        A 410 on a later page (its continue token expired) raises ``Gone``: the caller lists again
        from scratch, as a watcher does after a 410. ``kind`` (``NodeList``) checks each page.
        ``page_size``: objects per request instead of the client's (each page is decoded in one step
        on the event loop: smaller pages, shorter stalls, more requests). Every page's objects are
        held at once: to read a large list with one page in memory, use :meth:`pages`.
        """
        items: list[dict[str, Any]] = []
        version: str | None = None
        async for page in self.pages(
            path, kind=kind, params=params, request_timeout=request_timeout, page_size=page_size
        ):
            items.extend(page.items)
            version = page.resource_version or version
        return ObjectList(items, version)

    async def pages(
        self,
        path: str,
        *,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[ObjectList]:
        """A list one page at a time (as :meth:`list` reads it, with the same errors): each page's
        objects and the list's resourceVersion.

        The next page is fetched when the caller asks for it, and nothing here keeps a page once it
        is handed over: a caller that reads each page before asking for the next, and keeps none
        of its objects, holds one page of decoded JSON however long the list. The list is complete
        only once the iteration ends without an error: a caller must not act on the pages it had
        (delete what they lacked) before then.
        """
        query = {**(params or {}), "limit": str(page_size or self._page)}
        while True:
            page = await self.get(path, params=query, request_timeout=request_timeout)
            if kind is not None and page.get("kind") != kind:
                raise ApiError(200, str(page)[:200], f"GET {path}: not a {kind}")
            meta = page.get("metadata") or {}
            version, token = meta.get("resourceVersion") or None, meta.get("continue")
            yield ObjectList(page.pop("items", None) or [], version)
            if not token:
                return
            query = {**query, "continue": token}

    async def watch(
        self,
        path: str,
        *,
        resource_version: str | None = None,
        params: Mapping[str, str] | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` until the apiserver ends the watch (``timeout_seconds``).

        Bookmarks are asked for and yielded, so a caller can resume from a recent version. An
        ERROR event raises: ``Gone`` when the version is too old (list again), else ``ApiError``.
        """
        query = {**(params or {}), "watch": "true", "allowWatchBookmarks": "true"}
        query["timeoutSeconds"] = str(timeout_seconds)
        if resource_version:
            query["resourceVersion"] = resource_version
        session, credentials = await self._ready()
        headers = {"Accept": "application/json", **credentials.headers()}
        limit = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=timeout_seconds + 30)
        what = f"WATCH {path}"
        try:
            async with session.get(
                credentials.server + path, params=query, headers=headers, timeout=limit
            ) as response:
                if response.status == 401:
                    await self.loader.refresh()  # the caller's next watch uses what was read
                if response.status != 200:
                    raise api_error(response.status, _decode(await response.read()), what)
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _event(line, what)
                if buffer.strip():
                    yield _event(buffer, what)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise Unreachable(f"{what}: {_brief(error)}") from error

    async def probe(self) -> None:
        """A cheap authenticated GET (/version is readable by every authenticated identity)."""
        await self.get("/version", request_timeout=5.0)


def _event(line: bytes, what: str) -> WatchEvent:
    try:
        event = json.loads(line)
    except ValueError as error:
        raise ApiError(200, line[:200].decode("utf-8", "replace"), f"{what}: not a watch event") from error
    kind = str(event.get("type") or "")
    body = event.get("object") or {}
    if kind == "ERROR":
        status = body.get("code") if isinstance(body, dict) else None
        raise api_error(int(status or 500), body, what)
    return WatchEvent(kind, body)
