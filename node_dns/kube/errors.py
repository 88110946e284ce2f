"""What can go wrong talking to the apiserver, as exceptions callers can tell apart.

Callers outside this package never see aiohttp: a connection failure or a request timeout is
:class:`Unreachable`, an HTTP error status is an :class:`ApiError` whose class names the statuses
callers act on (404 absent, 409 changed since read or already exists, 410 too old: list again).
"""

from __future__ import annotations

from typing import Any


class KubeconfigError(Exception):
    """The client configuration cannot be loaded: a settings error (exit 2), not an outage."""


class Unreachable(ConnectionError):
    """No HTTP answer: connection refused or reset, TLS failure, or the request timed out."""


class ApiError(Exception):
    """A non-2xx answer (or a 2xx one that is not what was asked for).

    ``status`` is the HTTP status, ``reason`` the apiserver's machine-readable reason
    (``Forbidden``, ``AlreadyExists``, ``Expired`` ...), ``body`` the decoded answer.
    """

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        self.reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
        message = body.get("message", body) if isinstance(body, dict) else body
        reason = f" {self.reason}" if self.reason else ""
        super().__init__(f"{what}: HTTP {status}{reason}: {' '.join(str(message).split())[:300]}")


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class Unauthorized(ApiError):
    """401: the credentials were rejected, also after reading them again."""


class Conflict(ApiError):
    """409: the object changed since it was read (stale resourceVersion), or already exists."""


class Gone(ApiError):
    """410: the resourceVersion or continue token is too old (compacted); list again from scratch."""


_BY_STATUS: dict[int, type[ApiError]] = {401: Unauthorized, 404: NotFound, 409: Conflict, 410: Gone}


def api_error(status: int, body: Any, what: str) -> ApiError:
    """The exception for an HTTP error status."""
    return _BY_STATUS.get(status, ApiError)(status, body, what)
