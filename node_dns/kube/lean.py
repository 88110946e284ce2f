"""GET and PATCH of JSON objects over one kept-alive HTTP/1.1 connection: a client for processes
that make a few calls a minute and must stay small (the node agent).

Why not :class:`node_dns.kube.client.Client`: its aiohttp session costs 14 MB of RSS to import,
a third of the agent's 40 MB budget, for a GET and a PATCH every few minutes. This client speaks
the part of HTTP/1.1 those need (Content-Length and chunked bodies, keep-alive) on asyncio's
streams and the ``ssl`` module the interpreter loads anyway. Credentials, their refresh after a
401, the errors by status and the TLS trust are the same as the full client's (one loader, one
:class:`~node_dns.kube.credentials.Credentials`, :func:`~node_dns.kube.errors.api_error`).

One request at a time. A request that fails on a connection that was idle (the apiserver
closed it meanwhile) is sent once more on a new connection: GET and a merge patch of a given
value may be repeated. No proxy support (nor has the full client: aiohttp ignores the proxy
environment unless asked).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from node_dns.kube.credentials import Credentials
from node_dns.kube.errors import ApiError, Unreachable, api_error
from node_dns.kube.loader import CredentialsLoader
from node_dns.kube.wire import PATCH_CONTENT_TYPES, PatchType, brief, decode
from node_dns.version import __version__

log = logging.getLogger(__name__)

MAX_BODY = 32 * 2**20
"""Largest response body read (a Node with a long image list is ~100 KB)."""
MAX_LINE = 65536
USER_AGENT = f"node-dns/{__version__}"


class ProtocolError(Exception):
    """The answer is not HTTP/1.1 as this client reads it (a line over the stream's limit is a
    ValueError from asyncio, handled alike)."""


class _Connection:
    """One TCP (TLS) connection to the apiserver and the credentials it was opened with."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, credentials: Credentials
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.credentials = credentials
        self.used = False

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """``get`` and ``patch`` by API path, JSON in and out; the errors of the full client
    (:class:`~node_dns.kube.errors.Unreachable` when no answer came, an
    :class:`~node_dns.kube.errors.ApiError` subclass by status otherwise)."""

    def __init__(self, loader: CredentialsLoader, *, timeout: float = 30.0) -> None:
        self.loader = loader
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def get(
        self, path: str, *, params: Mapping[str, str] | None = None, request_timeout: float | None = None
    ) -> dict[str, Any]:
        """One object (``NotFound`` if it does not exist)."""
        return await self.request("GET", path, params=params, request_timeout=request_timeout)

    async def patch(
        self,
        path: str,
        body: Any,
        *,
        patch: PatchType = "merge",
        params: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch by default (RFC 7386: ``None`` deletes a key)."""
        return await self.request(
            "PATCH",
            path,
            params=params,
            body=body,
            content_type=PATCH_CONTENT_TYPES[patch],
            request_timeout=request_timeout,
        )

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
        data = b"" if body is None else json.dumps(body).encode()
        target = path + (f"?{urlencode(params)}" if params else "")
        what = f"{method} {path}"
        async with self._lock:
            try:
                async with asyncio.timeout(request_timeout or self._timeout):
                    status, raw = await self._send(method, target, data, content_type)
            except (OSError, EOFError, TimeoutError, ProtocolError, ValueError) as error:
                self._drop()
                raise Unreachable(f"{what}: {brief(error)}") from error
            except BaseException:
                self._drop()  # cancelled mid-answer: the connection's state is unknown
                raise
        decoded = decode(raw)
        if not 200 <= status <= 299:
            raise api_error(status, decoded, what)
        if not isinstance(decoded, dict):
            raise ApiError(status, decoded, f"{what}: not a JSON object")
        return decoded

    async def _send(
        self, method: str, target: str, data: bytes, content_type: str | None
    ) -> tuple[int, bytes]:
        """One exchange; again after a 401 that made the loader find new credentials, and again
        on a new connection when a reused one turns out closed."""
        refreshed = False
        while True:
            connection = await self._connect()
            reused = connection.used
            try:
                status, raw, keep = await _exchange(connection, method, target, data, content_type)
            except (OSError, EOFError, ProtocolError):
                self._drop()
                if reused:
                    continue  # an idle connection the server had closed: once more, afresh
                raise
            connection.used = True
            if not keep:
                self._drop()
            if status == 401 and not refreshed:
                refreshed = True
                if await self.loader.refresh() != connection.credentials:
                    continue
            return status, raw

    async def _connect(self) -> _Connection:
        """The open connection, unless the credentials' TLS material changed; else a new one."""
        credentials = await self.loader.current()
        current = self._connection
        if current is not None:
            if credentials.same_tls(current.credentials) and not current.writer.is_closing():
                current.credentials = credentials
                return current
            self._drop()
        url = urlsplit(credentials.server)
        context = credentials.ssl_context()
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context is not None else None, limit=MAX_LINE
        )
        self._connection = _Connection(reader, writer, credentials)
        return self._connection


async def _exchange(
    connection: _Connection, method: str, target: str, data: bytes, content_type: str | None
) -> tuple[int, bytes, bool]:
    """Write one request, read its answer: status, body, whether the connection may be reused."""
    credentials = connection.credentials
    url = urlsplit(credentials.server)
    host = url.netloc.rpartition("@")[2]
    headers = {
        "Host": host,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        **credentials.headers(),
    }
    if data or method in ("POST", "PUT", "PATCH"):
        headers["Content-Type"] = content_type or "application/json"
        headers["Content-Length"] = str(len(data))
    prefix = url.path.rstrip("/")
    head = f"{method} {prefix}{target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    connection.writer.write(head.encode("latin-1") + b"\r\n" + data)
    await connection.writer.drain()
    reader = connection.reader
    status, version = await _status_line(reader)
    fields = await _headers(reader)
    while 100 <= status <= 199:  # an interim answer: the real one follows
        status, version = await _status_line(reader)
        fields = await _headers(reader)
    body, until_close = await _body(reader, fields, method, status)
    tokens = {token.strip() for token in fields.get("connection", "").lower().split(",")}
    keep = not until_close and "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)
    return status, body, keep


async def _status_line(reader: asyncio.StreamReader) -> tuple[int, str]:
    line = await reader.readline()
    if not line:
        raise EOFError("the connection was closed before an answer")
    version, _, rest = line.decode("latin-1").strip().partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(code), version


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """Header fields, names lower-cased (repeated fields joined with commas)."""
    fields: dict[str, str] = {}
    for _ in range(200):
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise EOFError("the connection was closed inside the headers")
        if line in (b"\r\n", b"\n"):
            return fields
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"not a header field: {line[:80]!r}")
        key = name.strip().lower()
        fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
    raise ProtocolError("more than 200 header fields")


async def _body(
    reader: asyncio.StreamReader, fields: Mapping[str, str], method: str, status: int
) -> tuple[bytes, bool]:
    """The body, and whether it ran until the server closed the connection."""
    if method == "HEAD" or status in (204, 304):
        return b"", False
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return await _chunked(reader), False
    if "content-length" in fields:
        text = fields["content-length"]
        length = int(text) if text.isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            raise ProtocolError(f"body of {length} bytes")
        return await reader.readexactly(length), False
    body = await reader.read(MAX_BODY + 1)
    while body and len(body) <= MAX_BODY and not reader.at_eof():
        more = await reader.read(MAX_BODY + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > MAX_BODY:
        raise ProtocolError(f"body over {MAX_BODY} bytes")
    return body, True


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise EOFError("the connection was closed inside a chunked body")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"not a chunk size: {line[:40]!r}") from None
        if size == 0:
            await _headers(reader)  # trailer fields, up to the empty line
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise ProtocolError(f"body over {MAX_BODY} bytes")
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")
