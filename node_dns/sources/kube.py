"""Kubernetes access for the lister and kopf's login: one configuration, two clients."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio import client, config

PAGE = 500


class KubeconfigError(Exception):
    """The client configuration cannot be loaded: a settings error (exit 2), not an outage."""


def _any_file(paths: str) -> bool:
    """Whether any of the ``:``-separated kubeconfig paths is a file (once, at startup)."""
    return any(os.path.isfile(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p)


async def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """--kubeconfig, else in-cluster when running in a pod, else $KUBECONFIG or ~/.kube/config.

    Every failure becomes one :class:`KubeconfigError` line. A missing file is detected here,
    before the library logs a warning of its own about it.
    """
    cfg = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            paths = str(kubeconfig or config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
            if not _any_file(paths):
                raise KubeconfigError(f"no kubeconfig file at {paths}")
            await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    except KubeconfigError:
        raise
    except Exception as error:
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise KubeconfigError(f"cannot load the Kubernetes client configuration: {detail}") from error
    return cfg


def connection_info(cfg: client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own HTTP session."""
    api_key = cfg.api_key or {}
    auth = api_key.get("authorization") or api_key.get("BearerToken")
    scheme, token = None, None
    if auth:
        scheme, _, token = str(auth).partition(" ")
        if not token:
            scheme, token = "Bearer", scheme
    return kopf.ConnectionInfo(
        server=str(cfg.host),
        ca_path=cfg.ssl_ca_cert or None,
        insecure=not cfg.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file or None,
        private_key_path=cfg.key_file or None,
    )


class ListError(Exception):
    """A node list failed: nothing of it may be used (a partial list would drop live nodes)."""


def _status_message(body: bytes) -> str:
    """The ``message`` of a Kubernetes Status body, else the start of the body."""
    try:
        status = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or status)[:300]


class Kube:
    """The few calls the lister makes, raw JSON (typed objects cost 5x the CPU at 5k nodes)."""

    def __init__(self, cfg: client.Configuration, timeout: float = 30.0) -> None:
        self._cfg = cfg
        self._api = client.ApiClient(configuration=cfg)
        self._timeout = timeout

    async def close(self) -> None:
        await self._api.close()

    async def refresh(self) -> None:
        """Re-read in-cluster tokens (projected tokens rotate); harmless elsewhere."""
        refresh = getattr(self._cfg, "refresh_api_key_hook", None)
        if refresh is not None:
            refresh(self._cfg)

    async def list_nodes(self) -> tuple[list[Mapping[str, Any]], str | None]:
        """A complete list, paged; returns the items and the list's resourceVersion."""
        core = client.CoreV1Api(self._api)
        items: list[Mapping[str, Any]] = []
        token: str | None = None
        version: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": PAGE,
                "_preload_content": False,
                "_request_timeout": self._timeout,
            }
            if token:
                kwargs["_continue"] = token
            response: Any = await core.list_node(**kwargs)
            body = await response.read()
            # Without preloading, the client does not raise on HTTP errors: a 403 or a 410 (expired
            # continue token) would read as an empty, complete list and empty the zone.
            if not 200 <= response.status <= 299:
                raise ListError(f"listing nodes: HTTP {response.status} {_status_message(body)}")
            page = json.loads(body)
            if not isinstance(page, dict) or page.get("kind") != "NodeList":
                raise ListError(f"listing nodes: not a NodeList: {str(page)[:200]}")
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = meta.get("resourceVersion") or version
            token = meta.get("continue")
            if not token:
                return items, version

    async def probe(self) -> None:
        """A cheap authenticated GET (/version is readable by every authenticated identity)."""
        await client.VersionApi(self._api).get_code(_request_timeout=5)
