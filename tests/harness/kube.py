"""A small synchronous Kubernetes REST client for tests, benchmarks and the demo.

Why not kubernetes-asyncio here: test set-up code is synchronous and runs next to the product's own
client; a separate, dumb client (stdlib ``http.client`` + ``ssl``) keeps the harness independent of
the code under test and makes every request explicit. One keep-alive HTTPS connection per thread
makes bulk creation (thousands of Nodes for benchmarks) fast without sharing sockets across
threads.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

READY_STATES = ("True", "False", "Unknown")
_READY_REASONS = {"True": "KubeletReady", "False": "KubeletNotReady", "Unknown": "NodeStatusUnknown"}

# Connection errors after which a request on a *reused* keep-alive connection is retried once on a
# fresh one: the server closed an idle connection, or the apiserver was restarted in between.
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)

# Creation order for apply_manifests, like Helm's install order: what others refer to comes first.
_INSTALL_ORDER = [
    "Namespace",
    "PriorityClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "PodDisruptionBudget",
]


class KubeError(Exception):
    """An unexpected HTTP status from the apiserver; keeps the decoded body for assertions."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method, self.path, self.status, self.body = method, path, status, body
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path} -> {status}: {message}")


@dataclass(frozen=True)
class NodeSpec:
    """What ``create_node`` needs; lets benchmarks build thousands of nodes as plain data."""

    name: str
    annotations: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    ready: bool | str | None = True
    addresses: Sequence[tuple[str, str]] | None = None
    unschedulable: bool = False


def now_rfc3339() -> str:
    """Kubernetes' Time format (seconds precision, UTC, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_state(ready: bool | str) -> str:
    """Normalise ``True``/``False``/``"Unknown"`` to the condition status strings the API uses."""
    if ready is True or ready is False:
        return str(ready)
    if ready in READY_STATES:
        return str(ready)
    raise ValueError(f"ready must be a bool or one of {READY_STATES}, got {ready!r}")


def ready_condition(status: bool | str, *, reason: str | None = None) -> dict[str, Any]:
    """A Ready condition shaped like the kubelet's, so consumers see realistic objects."""
    state = ready_state(status)
    stamp = now_rfc3339()
    return {
        "type": "Ready",
        "status": state,
        "reason": reason or _READY_REASONS[state],
        "message": f"Ready={state} set by the node-dns test harness",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }


def wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; bounded, so no test hangs forever."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # the last error is the useful part of a timeout message
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)


class Watch:
    """A streaming ``?watch=1`` request on its own connection, iterated as decoded events.

    Iteration is bounded by ``timeout`` (seconds, overall): it raises ``TimeoutError`` when the
    deadline passes, and stops when the server ends the stream.
    """

    def __init__(self, kube: Kube, path: str, params: Mapping[str, Any], timeout: float) -> None:
        self._deadline = time.monotonic() + timeout
        query = {**params, "watch": "1", "timeoutSeconds": str(max(1, int(timeout) + 1))}
        self._conn = kube._new_connection(timeout=timeout)
        self._conn.request("GET", f"{path}?{urllib.parse.urlencode(query)}", headers=kube._headers())
        self._response = self._conn.getresponse()
        if self._response.status != 200:
            body = self._response.read()
            self.close()
            raise KubeError("WATCH", path, self._response.status, _decode(body, ""))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("watch deadline passed")
        sock = self._conn.sock
        if sock is not None:
            sock.settimeout(remaining)
        try:
            line = self._response.readline()
        except TimeoutError:
            raise TimeoutError("watch deadline passed") from None
        if not line:
            raise StopIteration
        event: dict[str, Any] = json.loads(line)
        return event

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type or raw[:1] in (b"{", b"["):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


class Kube:
    """REST access to one apiserver with one bearer token.

    ``request`` is the generic escape hatch (returns ``(status, body)``); the named helpers raise
    :class:`KubeError` on unexpected statuses so test set-up fails loudly at the right line.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        ca_data: str | None = None,
        insecure: bool = False,
        workdir: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"server must be an https:// URL, got {server!r}")
        self.server = server.rstrip("/")
        self.token = token
        self.ca_data = ca_data
        self.insecure = insecure
        self.workdir = workdir
        self.timeout = timeout
        self._host, self._port = parsed.hostname, parsed.port or 443
        self._ssl = self._ssl_context()
        self._local = threading.local()
        self._all_connections: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()
        self._discovery: dict[str, dict[str, tuple[str, bool]]] = {}
        self._kubeconfig_count = 0

    @classmethod
    def from_kubeconfig(cls, path: str | Path) -> Kube:
        """A client for the current context of a token-based kubeconfig (e.g. one this harness wrote)."""
        config = yaml.safe_load(Path(path).read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        ca_b64 = cluster.get("certificate-authority-data")
        ca_data = base64.b64decode(ca_b64).decode() if ca_b64 else None
        if ca_data is None and cluster.get("certificate-authority"):
            ca_data = Path(cluster["certificate-authority"]).read_text()
        return cls(
            cluster["server"],
            user["token"],
            ca_data=ca_data,
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            workdir=Path(path).parent,
        )

    # --- transport ----------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        if self.insecure or not self.ca_data:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cadata=self.ca_data)

    def _new_connection(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self._host, self._port, context=self._ssl, timeout=timeout or self.timeout
        )

    def _connection(self) -> tuple[http.client.HTTPSConnection, bool]:
        """This thread's keep-alive connection, and whether it was just created."""
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, False
        conn = self._new_connection()
        self._local.conn = conn
        with self._lock:
            self._all_connections.append(conn)
        return conn, True

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock, contextlib.suppress(ValueError):
                self._all_connections.remove(conn)

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": JSON}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def close(self) -> None:
        """Close every keep-alive connection this client opened, in any thread."""
        with self._lock:
            connections, self._all_connections = self._all_connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """One HTTP request; returns ``(status, decoded JSON or text)`` and never raises on status.

        A request on a reused connection that the server had closed is retried once on a fresh
        connection; errors on a fresh connection (apiserver down) propagate.
        """
        url = path if not params else f"{path}?{urllib.parse.urlencode(params)}"
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = self._headers(content_type if data is not None else None)
        while True:
            conn, fresh = self._connection()
            try:
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except _STALE_CONNECTION_ERRORS:
                self._drop_connection()
                if fresh:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                raise
            if response.getheader("Connection", "").lower() == "close":
                self._drop_connection()
            return response.status, _decode(raw, response.getheader("Content-Type", ""))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 202),
    ) -> Any:
        """Like :meth:`request` but returns only the body and raises :class:`KubeError` otherwise."""
        status, decoded = self.request(method, path, body, content_type=content_type, params=params)
        if status not in tuple(ok):
            raise KubeError(method, path, status, decoded)
        return decoded

    def watch(self, path: str, *, params: Mapping[str, Any] | None = None, timeout: float = 30.0) -> Watch:
        """Open a ``?watch=1`` stream on ``path`` (e.g. ``/api/v1/nodes``); see :class:`Watch`."""
        return Watch(self, path, params or {}, timeout)

    # --- nodes --------------------------------------------------------------------------------

    @staticmethod
    def _node_body(spec: NodeSpec) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": spec.name}
        if spec.annotations:
            metadata["annotations"] = dict(spec.annotations)
        if spec.labels:
            metadata["labels"] = dict(spec.labels)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": metadata}
        if spec.unschedulable:
            body["spec"] = {"unschedulable": True}
        status = Kube._node_status(spec)
        if status:
            body["status"] = status
        return body

    @staticmethod
    def _node_status(spec: NodeSpec) -> dict[str, Any]:
        status: dict[str, Any] = {}
        if spec.ready is not None:
            status["conditions"] = [ready_condition(spec.ready)]
        if spec.addresses:
            status["addresses"] = [{"type": kind, "address": addr} for kind, addr in spec.addresses]
        return status

    def create_node(
        self,
        name: str,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        ready: bool | str | None = True,
        addresses: Sequence[tuple[str, str]] | None = None,
        unschedulable: bool = False,
    ) -> dict[str, Any]:
        """Create a Node with its status in one POST, as a kubelet registers itself.

        The apiserver keeps ``status`` on Node creation, so the Ready condition and addresses
        arrive with the object (one ADDED event, half the requests of create + ``/status`` patch,
        which matters for 5,000-node benchmarks). Later changes go through ``/status``.
        ``ready=None`` leaves the node without any condition (a node that never reported).
        """
        spec = NodeSpec(name, annotations, labels, ready, addresses, unschedulable)
        node: dict[str, Any] = self.call("POST", "/api/v1/nodes", self._node_body(spec))
        return node

    def create_nodes(
        self, specs: Iterable[NodeSpec | Mapping[str, Any]], concurrency: int = 8
    ) -> list[dict[str, Any]]:
        """Create many nodes in parallel (one keep-alive connection per worker thread)."""
        normalised = [s if isinstance(s, NodeSpec) else NodeSpec(**s) for s in specs]

        def create(spec: NodeSpec) -> dict[str, Any]:
            return self.create_node(
                spec.name, spec.annotations, spec.labels, spec.ready, spec.addresses, spec.unschedulable
            )

        return self._parallel(create, normalised, concurrency)

    def _parallel(self, fn: Callable[[Any], T], items: Sequence[Any], concurrency: int) -> list[T]:
        if len(items) <= 1 or concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="kube") as pool:
            return list(pool.map(fn, items))

    def set_ready(self, name: str, status: bool | str, *, reason: str | None = None) -> dict[str, Any]:
        """Set the Ready condition to True/False/Unknown, keeping any other conditions.

        A strategic-merge patch on ``/status`` merges ``conditions`` by ``type``, so only Ready
        changes (a JSON merge-patch would replace the whole list).
        """
        body = {"status": {"conditions": [ready_condition(status, reason=reason)]}}
        result: dict[str, Any] = self.call(
            "PATCH", f"/api/v1/nodes/{name}/status", body, content_type=STRATEGIC_MERGE_PATCH
        )
        return result

    def set_addresses(self, name: str, addresses: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Replace the node's status addresses.

        JSON merge-patch, not strategic: the strategic merge key of addresses is ``type`` and
        would collapse two addresses of the same type into one.
        """
        body = {"status": {"addresses": [{"type": kind, "address": addr} for kind, addr in addresses]}}
        result: dict[str, Any] = self.call(
            "PATCH", f"/api/v1/nodes/{name}/status", body, content_type=MERGE_PATCH
        )
        return result

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge-patch on the node object (metadata/spec; ``None`` values delete keys)."""
        result: dict[str, Any] = self.call(
            "PATCH", f"/api/v1/nodes/{name}", dict(patch), content_type=MERGE_PATCH
        )
        return result

    def cordon(self, name: str) -> dict[str, Any]:
        """Mark the node unschedulable, as ``kubectl cordon`` does."""
        return self.patch_node(name, {"spec": {"unschedulable": True}})

    def uncordon(self, name: str) -> dict[str, Any]:
        """Clear ``spec.unschedulable``, as ``kubectl uncordon`` does."""
        return self.patch_node(name, {"spec": {"unschedulable": None}})

    def annotate(self, name: str, annotations: Mapping[str, str | None]) -> dict[str, Any]:
        """Set annotations; a ``None`` value removes that key."""
        return self.patch_node(name, {"metadata": {"annotations": dict(annotations)}})

    def label(self, name: str, labels: Mapping[str, str | None]) -> dict[str, Any]:
        """Set labels; a ``None`` value removes that key."""
        return self.patch_node(name, {"metadata": {"labels": dict(labels)}})

    def get_node(self, name: str) -> dict[str, Any]:
        node: dict[str, Any] = self.call("GET", f"/api/v1/nodes/{name}")
        return node

    def list_nodes(self, *, label_selector: str | None = None, page_size: int = 500) -> list[dict[str, Any]]:
        """All nodes, paged with ``limit``/``continue`` so 5,000 nodes stay cheap."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size}
        if label_selector:
            params["labelSelector"] = label_selector
        while True:
            page = self.call("GET", "/api/v1/nodes", params=params)
            items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                return items
            params["continue"] = token

    def delete_node(self, name: str, *, missing_ok: bool = False) -> None:
        ok = (200, 202, 404) if missing_ok else (200, 202)
        self.call("DELETE", f"/api/v1/nodes/{name}", ok=ok)

    def delete_nodes(self, names: Iterable[str], concurrency: int = 8) -> None:
        self._parallel(lambda n: self.delete_node(n, missing_ok=True), list(names), concurrency)

    def delete_all_nodes(self) -> None:
        """Remove every node with one delete-collection call (isolation between tests)."""
        self.call("DELETE", "/api/v1/nodes")

    # --- identities and RBAC ------------------------------------------------------------------

    def create_namespace(self, name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        result: dict[str, Any] = self.call("POST", "/api/v1/namespaces", body)
        return result

    def create_service_account(self, namespace: str, name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        result: dict[str, Any] = self.call("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", body)
        return result

    def create_cluster_role(self, name: str, rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [dict(r) for r in rules],
        }
        result: dict[str, Any] = self.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", body)
        return result

    def bind_cluster_role(
        self, role: str, namespace: str, service_account: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """A ClusterRoleBinding of ``role`` to one ServiceAccount (cluster-wide grant)."""
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name or f"{role}--{namespace}--{service_account}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
        }
        result: dict[str, Any] = self.call(
            "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", body
        )
        return result

    def create_role(self, namespace: str, name: str, rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [dict(r) for r in rules],
        }
        result: dict[str, Any] = self.call(
            "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", body
        )
        return result

    def bind_role(
        self,
        namespace: str,
        role: str,
        sa_namespace: str,
        service_account: str,
        *,
        name: str | None = None,
        cluster_role: bool = False,
    ) -> dict[str, Any]:
        """A RoleBinding in ``namespace`` granting ``role`` (a Role, or a ClusterRole) to a SA."""
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": name or f"{role}--{sa_namespace}--{service_account}",
                "namespace": namespace,
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole" if cluster_role else "Role",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": sa_namespace}],
        }
        result: dict[str, Any] = self.call(
            "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", body
        )
        return result

    def mint_token(self, namespace: str, service_account: str, *, expiration_seconds: int = 3600) -> str:
        """A bound token for the ServiceAccount (TokenRequest), as a pod would get one."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        token: str = self.call("POST", path, body)["status"]["token"]
        return token

    def kubeconfig_for_token(self, token: str, *, path: str | Path | None = None, user: str = "sa") -> Path:
        """Write a kubeconfig that talks to this apiserver with ``token``; returns its path."""
        if path is None:
            if self.workdir is None:
                raise ValueError("no workdir: pass path= explicitly")
            with self._lock:
                self._kubeconfig_count += 1
                path = self.workdir / f"kubeconfig-{user}-{self._kubeconfig_count}.yaml"
        return write_kubeconfig(Path(path), self.server, token, ca_data=self.ca_data, user=user)

    def for_token(self, token: str) -> Kube:
        """Another client for the same apiserver acting as ``token`` (to check RBAC)."""
        return Kube(self.server, token, ca_data=self.ca_data, insecure=self.insecure, workdir=self.workdir)

    # --- manifests ----------------------------------------------------------------------------

    def _resources(self, api_version: str, refresh: bool = False) -> dict[str, tuple[str, bool]]:
        """kind -> (plural, namespaced) for one group/version, from the apiserver's discovery."""
        if refresh or api_version not in self._discovery:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = self.call("GET", base)
            self._discovery[api_version] = {
                r["kind"]: (r["name"], bool(r["namespaced"]))
                for r in listing["resources"]
                if "/" not in r["name"]  # skip subresources such as nodes/status
            }
        return self._discovery[api_version]

    def resource_path(self, obj: Mapping[str, Any], *, namespace: str = "default") -> tuple[str, str]:
        """The collection path and object name: core or group API, namespaced or cluster-scoped."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        resources = self._resources(api_version)
        if kind not in resources:  # e.g. a CRD created a moment ago
            resources = self._resources(api_version, refresh=True)
        if kind not in resources:
            raise KeyError(f"the apiserver serves no kind {kind!r} in {api_version!r}")
        plural, namespaced = resources[kind]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            ns = obj["metadata"].get("namespace") or namespace
            base = f"{base}/namespaces/{ns}"
        return f"{base}/{plural}", obj["metadata"]["name"]

    def apply_manifests(
        self, manifests: Iterable[Mapping[str, Any] | None], *, namespace: str = "default"
    ) -> list[dict[str, Any]]:
        """Create each object (or replace it if it exists) with strict field validation.

        ``?fieldValidation=Strict`` makes unknown or duplicate fields a 400, so rendered Helm
        manifests are checked against the real schema (server-side apply would report the same
        mistake as a 500). Empty documents (``None``) and ``List`` wrappers are accepted; objects
        go in Helm-like install order; a namespaced object without a namespace lands in
        ``namespace``.
        """
        objects = _flatten(manifests)
        objects.sort(key=_install_rank)
        return [self._create_or_replace(obj, namespace) for obj in objects]

    def _create_or_replace(self, obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        collection, name = self.resource_path(obj, namespace=namespace)
        strict = {"fieldValidation": "Strict"}
        status, body = self.request("POST", collection, dict(obj), params=strict)
        if status == 409:
            current = self.call("GET", f"{collection}/{name}")
            replacement = {**obj, "metadata": {**obj["metadata"], **_version_of(current)}}
            body = self.call("PUT", f"{collection}/{name}", replacement, params=strict)
        elif status not in (200, 201):
            raise KubeError("POST", collection, status, body)
        result: dict[str, Any] = body
        return result


def _version_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return {"resourceVersion": obj["metadata"]["resourceVersion"]}


def _flatten(manifests: Iterable[Mapping[str, Any] | None]) -> list[Mapping[str, Any]]:
    objects: list[Mapping[str, Any]] = []
    for obj in manifests:
        if not obj:
            continue
        if obj.get("kind", "").endswith("List") and "items" in obj:
            objects.extend(_flatten(obj["items"]))
        else:
            objects.append(obj)
    return objects


def _install_rank(obj: Mapping[str, Any]) -> int:
    kind = obj.get("kind", "")
    return _INSTALL_ORDER.index(kind) if kind in _INSTALL_ORDER else len(_INSTALL_ORDER)


def write_kubeconfig(
    path: Path, server: str, token: str, *, ca_data: str | None = None, user: str = "admin"
) -> Path:
    """A one-context kubeconfig with a bearer token.

    With ``ca_data`` the server certificate is verified (kubernetes-asyncio and kopf both accept
    ``certificate-authority-data``); without it, TLS verification is skipped.
    """
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data.encode()).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "node-dns-test", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "node-dns-test", "user": user}}],
        "current-context": user,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
