"""Kubernetes access: credentials, and the few raw calls node-dns makes itself.

Credentials come from ``--kubeconfig``, else the pod's service account, else ``$KUBECONFIG`` or
``~/.kube/config``, and end up as one :class:`kopf.ConnectionInfo` used by kopf's watch and by
:class:`Kube` (paged lists, a probe).

Why kubeconfigs are read here and not by kubernetes-asyncio: importing that library loads ~2,000
generated model classes (36 MB of RSS, 0.4 s of the cold start) for what are plain GETs of JSON.
It is imported only by the features that use it (Leases and Events for leader election) and for
kubeconfigs whose user runs an exec plugin or an auth provider, which it implements and this
module does not. Files are re-read at every :meth:`Credentials.load`: service-account tokens
rotate, and kopf asks again after a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from node_dns.sources import kopf

log = logging.getLogger(__name__)

PAGE = 500
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"
# Fields this module does not implement; a kubeconfig that uses them is read by kubernetes-asyncio.
_LIBRARY_USER_FIELDS = ("exec", "auth-provider", "impersonate", "as", "as-groups")
_LIBRARY_CLUSTER_FIELDS = ("proxy-url", "tls-server-name")


Named = dict[str, tuple[Mapping[str, Any], Path]]  # name -> (entry, folder of its kubeconfig)


class KubeconfigError(Exception):
    """The client configuration cannot be loaded: a settings error (exit 2), not an outage."""


def _unusable(error: Exception) -> KubeconfigError:
    """Any failure of reading credentials, as the one line the command line prints."""
    detail = " ".join(str(error).split())[:300] or type(error).__name__
    return KubeconfigError(f"cannot load the Kubernetes client configuration: {detail}")


class _NeedsLibrary(Exception):
    """The kubeconfig uses a feature only kubernetes-asyncio implements."""


class Credentials:
    """Where credentials come from; :meth:`load` reads them (again) as a ConnectionInfo."""

    def __init__(self, kubeconfig: str | None) -> None:
        self.kubeconfig = kubeconfig
        self.via_library = False

    @property
    def in_cluster(self) -> bool:
        return self.kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))

    async def load(self) -> kopf.ConnectionInfo:
        """The current credentials; every failure is one :class:`KubeconfigError` line."""
        try:
            if self.in_cluster:
                return _in_cluster()
            paths = _kubeconfig_paths(self.kubeconfig)
            if not self.via_library:
                try:
                    return _from_kubeconfig(paths)
                except _NeedsLibrary:
                    self.via_library = True
            return connection_info(await load_configuration(self.kubeconfig))
        except KubeconfigError:
            raise
        except Exception as error:
            raise _unusable(error) from error


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The ``:``-separated list, expanded; at least one must be a file."""
    spec = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    paths = [Path(p).expanduser() for p in spec.split(os.pathsep) if p]
    if not any(p.is_file() for p in paths):
        raise KubeconfigError(f"no kubeconfig file at {spec}")
    return paths


def _in_cluster() -> kopf.ConnectionInfo:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = SERVICE_ACCOUNT / "token"
    ca_file = SERVICE_ACCOUNT / "ca.crt"
    if not token_file.is_file() or not ca_file.is_file():
        raise KubeconfigError(
            f"KUBERNETES_SERVICE_HOST is set but {token_file} or {ca_file} is missing "
            "(automountServiceAccountToken off?)"
        )
    token = token_file.read_text().strip()
    if not token:
        raise KubeconfigError(f"{token_file} is empty")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return kopf.ConnectionInfo(server=server, ca_path=str(ca_file), scheme="Bearer", token=token)


def _named(
    doc: Mapping[str, Any], key: str, into: dict[str, tuple[Mapping[str, Any], Path]], base: Path
) -> None:
    """Merge a kubeconfig's named list: the first file to define a name wins (as kubectl does)."""
    entries = doc.get(key) or []
    if not isinstance(entries, list):
        raise KubeconfigError(f"{key} is not a list")
    field = key[:-1]  # clusters -> cluster
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(f"an entry of {key} has no name")
        body = entry.get(field) or {}
        if not isinstance(body, Mapping):
            raise KubeconfigError(f"{key} entry {entry['name']!r} is not a mapping")
        into.setdefault(entry["name"], (body, base))


def _from_kubeconfig(paths: list[Path]) -> kopf.ConnectionInfo:
    current: str | None = None
    contexts: Named = {}
    clusters: Named = {}
    users: Named = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise KubeconfigError(f"{path} is not YAML: {' '.join(str(error).split())[:200]}") from error
        if not isinstance(doc, Mapping):
            raise KubeconfigError(f"{path} is not a kubeconfig (not a mapping)")
        current = current or doc.get("current-context") or None
        _named(doc, "contexts", contexts, path.parent)
        _named(doc, "clusters", clusters, path.parent)
        _named(doc, "users", users, path.parent)
    if not current:
        raise KubeconfigError("the kubeconfig has no current-context")
    if current not in contexts:
        raise KubeconfigError(f"context {current!r} is not defined in the kubeconfig")
    context, _ = contexts[current]
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if cluster_name not in clusters:
        raise KubeconfigError(f"cluster {cluster_name!r} of context {current!r} is not defined")
    cluster, cluster_base = clusters[cluster_name]
    user, user_base = users.get(user_name, ({}, Path.cwd())) if user_name else ({}, Path.cwd())
    if any(key in user for key in _LIBRARY_USER_FIELDS) or any(
        key in cluster for key in _LIBRARY_CLUSTER_FIELDS
    ):
        raise _NeedsLibrary
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"cluster {cluster_name!r} has no https:// server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _file(user_base, user["tokenFile"]).read_text().strip()
    return kopf.ConnectionInfo(
        server=server.rstrip("/"),
        ca_path=_path(cluster_base, cluster.get("certificate-authority")),
        ca_data=_pem(cluster.get("certificate-authority-data"), "certificate-authority-data"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
        scheme="Bearer" if token else None,
        token=str(token) if token else None,
        username=user.get("username") or None,
        password=user.get("password") or None,
        certificate_path=_path(user_base, user.get("client-certificate")),
        certificate_data=_pem(user.get("client-certificate-data"), "client-certificate-data"),
        private_key_path=_path(user_base, user.get("client-key")),
        private_key_data=_pem(user.get("client-key-data"), "client-key-data"),
        default_namespace=context.get("namespace") or None,
    )


def _file(base: Path, name: Any) -> Path:
    """A file named in a kubeconfig; relative names are relative to that kubeconfig's folder."""
    path = (base / str(name)).expanduser()
    if not path.is_file():
        raise KubeconfigError(f"{path} (named in the kubeconfig) is not a file")
    return path


def _path(base: Path, name: Any) -> str | None:
    return str(_file(base, name)) if name else None


def _pem(data: Any, what: str) -> str | None:
    if not data:
        return None
    try:
        return base64.b64decode(str(data), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise KubeconfigError(f"{what} is not base64 of a PEM text") from error


async def load_configuration(kubeconfig: str | None) -> Any:
    """A kubernetes-asyncio Configuration (imported here, not at module load: see above)."""
    from kubernetes_asyncio import client, config

    cfg = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            _kubeconfig_paths(kubeconfig)  # a missing file is one line here, not the library's warning
            await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    except KubeconfigError:
        raise
    except Exception as error:
        raise _unusable(error) from error
    return cfg


def connection_info(cfg: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from a kubernetes-asyncio Configuration (exec plugins, auth providers)."""
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
    """A list failed: nothing of it may be used (a partial list would drop live objects)."""


def _status_message(body: bytes) -> str:
    """The ``message`` of a Kubernetes Status body, else the start of the body."""
    try:
        status = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or status)[:300]


class Kube:
    """Raw JSON over one aiohttp session (typed objects cost 5x the CPU at 5k nodes)."""

    def __init__(self, credentials: Credentials, info: kopf.ConnectionInfo, timeout: float = 30.0) -> None:
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._use(info)

    def _use(self, info: kopf.ConnectionInfo) -> None:
        self._info = info
        self._server = info.server.rstrip("/")
        self._headers = {"Accept": "application/json", **info.as_http_headers()}
        self._ssl: ssl.SSLContext | bool = (
            info.as_ssl_context() if self._server.startswith("https") else False
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=4), timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def refresh(self) -> None:
        """Re-read the credentials (projected tokens rotate); a new TLS context if they changed.

        Called after a failed call; if the files cannot be read now, the old credentials stay.
        """
        try:
            info = await self._credentials.load()
        except KubeconfigError as error:
            log.warning("keeping the current credentials: %s", error)
            return
        if info != self._info:
            await self.close()
            self._session = None
            self._use(info)

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, limit: float | None = None
    ) -> tuple[int, bytes]:
        """One GET; ``limit`` overrides the session's total timeout (seconds)."""
        extra: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=limit)} if limit else {}
        url = self._server + path
        async with self._client().get(url, params=params, headers=self._headers, **extra) as response:
            return response.status, await response.read()

    async def list_pages(self, path: str, kind: str) -> tuple[list[Mapping[str, Any]], str | None]:
        """A complete list, paged; the items and the list's resourceVersion, or :class:`ListError`."""
        items: list[Mapping[str, Any]] = []
        version: str | None = None
        params = {"limit": str(PAGE)}
        while True:
            status, body = await self.get(path, params)
            # A 403 or a 410 (expired continue token) must not read as an empty, complete list.
            if not 200 <= status <= 299:
                raise ListError(f"listing {path}: HTTP {status} {_status_message(body)}")
            page = json.loads(body)
            if not isinstance(page, dict) or page.get("kind") != kind:
                raise ListError(f"listing {path}: not a {kind}: {str(page)[:200]}")
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            version = meta.get("resourceVersion") or version
            token = meta.get("continue")
            if not token:
                return items, version
            params = {"limit": str(PAGE), "continue": token}

    async def list_nodes(self) -> tuple[list[Mapping[str, Any]], str | None]:
        return await self.list_pages("/api/v1/nodes", "NodeList")

    async def probe(self) -> None:
        """A cheap authenticated GET (/version is readable by every authenticated identity)."""
        status, body = await self.get("/version", limit=5.0)
        if not 200 <= status <= 299:
            raise ListError(f"probing /version: HTTP {status} {_status_message(body)}")
