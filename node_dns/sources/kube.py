"""Kubernetes access for the lister and kopf's login: one configuration, two clients."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio import client, config

PAGE = 500


async def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """--kubeconfig, else in-cluster when running in a pod, else $KUBECONFIG or ~/.kube/config."""
    cfg = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
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
            page = json.loads(await response.read())
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = meta.get("resourceVersion") or version
            token = meta.get("continue")
            if not token:
                return items, version

    async def probe(self) -> None:
        """A cheap authenticated GET (/version is readable by every authenticated identity)."""
        await client.VersionApi(self._api).get_code(_request_timeout=5)
