"""Reading credentials: kubeconfig files (merged as kubectl merges them) and the pod's service account.

Why kubeconfigs are read here and not by kubernetes-asyncio: importing that library loads ~2,000
generated model classes (36 MB of RSS, 0.4 s of the cold start) for what are plain files. It is
imported only for kubeconfigs whose user runs an exec plugin or an auth provider (or that need
impersonation or a proxy), which it implements and this module does not; its result is turned
into the same :class:`Credentials`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from node_dns.kube.credentials import Credentials
from node_dns.kube.errors import KubeconfigError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"
# Fields this module does not implement; a kubeconfig that uses them is read by kubernetes-asyncio.
_LIBRARY_USER_FIELDS = ("exec", "auth-provider", "impersonate", "as", "as-groups")
_LIBRARY_CLUSTER_FIELDS = ("proxy-url", "tls-server-name")

Named = dict[str, tuple[Mapping[str, Any], Path]]  # name -> (entry, folder of its kubeconfig)


class NeedsLibrary(Exception):
    """The kubeconfig uses a feature only kubernetes-asyncio implements."""


def unusable(error: Exception) -> KubeconfigError:
    """Any failure of reading credentials, as the one line the command line prints."""
    detail = " ".join(str(error).split())[:300] or type(error).__name__
    return KubeconfigError(f"cannot load the Kubernetes client configuration: {detail}")


def _spec(kubeconfig: str | None, environ: Mapping[str, str]) -> str:
    return kubeconfig or environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def paths(kubeconfig: str | None, environ: Mapping[str, str]) -> list[Path]:
    """The ``:``-separated list, expanded; at least one must be a file."""
    spec = _spec(kubeconfig, environ)
    found = [Path(p).expanduser() for p in spec.split(os.pathsep) if p]
    if not any(p.is_file() for p in found):
        raise KubeconfigError(f"no kubeconfig file at {spec}")
    return found


def in_cluster(environ: Mapping[str, str], folder: Path) -> Credentials:
    """The pod's service account; the token is read at each call (projected tokens rotate)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_file = folder / "token"
    ca_file = folder / "ca.crt"
    if not token_file.is_file() or not ca_file.is_file():
        raise KubeconfigError(
            f"KUBERNETES_SERVICE_HOST is set but {token_file} or {ca_file} is missing "
            "(automountServiceAccountToken off?)"
        )
    token = token_file.read_text().strip()
    if not token:
        raise KubeconfigError(f"{token_file} is empty")
    namespace_file = folder / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return Credentials(
        server=server, ca_path=str(ca_file), scheme="Bearer", token=token, default_namespace=namespace or None
    )


def _named(doc: Mapping[str, Any], key: str, into: Named, base: Path) -> None:
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


def read(files: list[Path]) -> Credentials:
    """The current context of the merged files; :class:`NeedsLibrary` for plugins and the like."""
    import yaml  # here: a pod reading its service account (the node agent) never needs it

    current: str | None = None
    contexts: Named = {}
    clusters: Named = {}
    users: Named = {}
    for path in files:
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
        raise NeedsLibrary
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"cluster {cluster_name!r} has no https:// server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _file(user_base, user["tokenFile"]).read_text().strip()
    return Credentials(
        server=server.rstrip("/"),
        ca_path=_path(cluster_base, cluster.get("certificate-authority")),
        ca_data=_pem(cluster.get("certificate-authority-data"), "certificate-authority-data"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
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


async def read_with_library(kubeconfig: str | None, environ: Mapping[str, str]) -> Credentials:
    """kubernetes-asyncio reads the same files (and runs the exec plugin); we keep its result."""
    from kubernetes_asyncio import client, config  # here, not at module load: see above

    paths(kubeconfig, environ)  # a missing file is one line here, not the library's warning
    cfg = client.Configuration()
    await config.load_kube_config(config_file=_spec(kubeconfig, environ), client_configuration=cfg)
    return from_configuration(cfg)


def from_configuration(cfg: Any) -> Credentials:
    """Credentials from a kubernetes-asyncio Configuration (exec plugins, auth providers)."""
    api_key = cfg.api_key or {}
    auth = api_key.get("authorization") or api_key.get("BearerToken")
    scheme, token = None, None
    if auth:
        scheme, _, token = str(auth).partition(" ")
        if not token:
            scheme, token = "Bearer", scheme
    return Credentials(
        server=str(cfg.host).rstrip("/"),
        ca_path=cfg.ssl_ca_cert or None,
        insecure=not cfg.verify_ssl,
        scheme=scheme,
        token=token or None,
        username=cfg.username or None,
        password=cfg.password or None,
        certificate_path=cfg.cert_file or None,
        private_key_path=cfg.key_file or None,
    )
