"""The Kubernetes access layer: the only code that talks HTTP to the apiserver.

- :mod:`~node_dns.kube.kubeconfig`: reading kubeconfig files and the pod's service account.
- :mod:`~node_dns.kube.credentials`: :class:`Credentials`, plain data every client logs in with.
- :mod:`~node_dns.kube.loader`: :class:`CredentialsLoader`, when to read them again and keeping
  the last good ones (the one refresh policy).
- :mod:`~node_dns.kube.client`: :class:`Client`, GET/LIST/WATCH/POST/PUT/PATCH/DELETE as JSON.
- :mod:`~node_dns.kube.lean`: :class:`LeanClient`, GET and PATCH on one HTTP/1.1 connection
  without aiohttp, for the node agent (a small process).
- :mod:`~node_dns.kube.errors`: what can go wrong, by status (404, 409, 410 ...).

kopf's watch logs in through the same loader (see :mod:`node_dns.sources.watch`).
:class:`Client` and its types load on first use, so a process that only needs the lean client
never imports aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node_dns.kube.credentials import Credentials
from node_dns.kube.errors import (
    ApiError,
    Conflict,
    Gone,
    KubeconfigError,
    NotFound,
    Unauthorized,
    Unreachable,
)
from node_dns.kube.loader import CredentialsLoader

if TYPE_CHECKING:
    from node_dns.kube.client import Client, ObjectList, WatchEvent
    from node_dns.kube.lean import LeanClient

__all__ = [
    "ApiError",
    "Client",
    "Conflict",
    "Credentials",
    "CredentialsLoader",
    "Gone",
    "KubeconfigError",
    "LeanClient",
    "NotFound",
    "ObjectList",
    "Unauthorized",
    "Unreachable",
    "WatchEvent",
]


def __getattr__(name: str) -> Any:
    if name in ("Client", "ObjectList", "WatchEvent"):
        from node_dns.kube import client

        return getattr(client, name)
    if name == "LeanClient":
        from node_dns.kube.lean import LeanClient

        return LeanClient
    raise AttributeError(f"module 'node_dns.kube' has no attribute {name!r}")
