"""The Kubernetes access layer: the only code that talks HTTP to the apiserver.

- :mod:`~node_dns.kube.kubeconfig`: reading kubeconfig files and the pod's service account.
- :mod:`~node_dns.kube.credentials`: :class:`Credentials`, plain data every client logs in with.
- :mod:`~node_dns.kube.loader`: :class:`CredentialsLoader`, when to read them again and keeping
  the last good ones (the one refresh policy).
- :mod:`~node_dns.kube.client`: :class:`Client`, GET/LIST/WATCH/POST/PUT/PATCH/DELETE as JSON.
- :mod:`~node_dns.kube.errors`: what can go wrong, by status (404, 409, 410 ...).

kopf's watch logs in through the same loader (see :mod:`node_dns.sources.watch`).
"""

from node_dns.kube.client import Client, ObjectList, WatchEvent
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

__all__ = [
    "ApiError",
    "Client",
    "Conflict",
    "Credentials",
    "CredentialsLoader",
    "Gone",
    "KubeconfigError",
    "NotFound",
    "ObjectList",
    "Unauthorized",
    "Unreachable",
    "WatchEvent",
]
