"""The watch: kopf configured strictly read-only, logged in through :mod:`node_dns.kube`.

kopf streams node (and Service, EndpointSlice) events into the sources' handlers. It never
writes: no Events, no CRD scanning, no peering, no finalizers or diff-base annotations on nodes.
It logs in with the same :class:`~node_dns.kube.loader.CredentialsLoader` as node-dns' own
client, at start and again after every 401, so a rotated token reaches both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from node_dns import kube
from node_dns.sources import kopf, lister, nodes
from node_dns.sources import services as service_source


class RetryForever:
    """kopf's API retry schedule: quick first retries, then every few seconds, never giving up.

    An iterable, not an iterator: kopf starts a fresh iteration for each request, so one
    request's retries cannot use up another's (a shared one-shot iterator retries with no delay).
    """

    def __init__(self, first: tuple[float, ...] = (0.5, 1.0, 2.0), then: float = 2.0) -> None:
        self._first = first
        self._then = then

    def __iter__(self) -> Iterator[float]:
        yield from self._first
        while True:
            yield self._then


WORKER_IDLE = 0.5
"""Seconds kopf keeps an object's worker task after its last event (kopf's default: 5).

Each worker holds its object's last event -- a whole Node, ~10 KB of JSON from a kubelet -- in
reference cycles (kopf's body and patch views point back at their owners), so everything it holds
is freed by the cyclic garbage collector, not by reference counting. With 50 node changes a second,
5 s of idle workers kept ~250 Nodes alive into the collector's older generations, whose
collections then took 25-65 ms on the loop; half a second keeps a tenth of that. A node's changes
that come closer together still share one worker."""


def operator_settings(node_selector: str = "") -> kopf.OperatorSettings:
    """Strictly read-only: no Events, no CRD scanning, no peering, no writes to nodes; lists paged.

    ``node_selector`` goes to the apiserver with the node watch (``labelSelector``): a node whose
    labels stop matching arrives as DELETED and leaves the zone like a deleted node.
    """
    ks = kopf.OperatorSettings()
    if node_selector:
        ks.watching.label_selectors["v1", "nodes"] = node_selector
    ks.posting.enabled = False
    ks.scanning.disabled = True
    ks.peering.standalone = True
    ks.peering.mandatory = False
    ks.persistence.finalizer = "node-dns.invalid/never-used"
    ks.persistence.diffbase_storage = NoDiffBase()
    ks.networking.error_backoffs = RetryForever()
    ks.watching.reconnect_backoff = 1.0
    # kopf lists every node before it watches (at start, and again after a 410): one unpaged
    # response is ~10 KB of JSON per node, 45-50 MB at 5,000 nodes, decoded in one step on the
    # loop. Pages of node-dns' own resync size keep each decode to a few milliseconds.
    ks.watching.chunk_size = lister.RESYNC_PAGE
    ks.queueing.idle_timeout = WORKER_IDLE
    return ks


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff-base for event handlers only: nothing to build, keep or compare.

    kopf deep-copies every object into an "essence" on every event to detect changes for
    on.create/update handlers; node-dns has none, and that copy was ~9% of the CPU per node
    update at 5,000 nodes. Nothing is stored on the objects either way (read-only).
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def scope(services: bool, namespaces: tuple[str, ...]) -> dict[str, Any]:
    """Cluster-wide, unless Services are watched in listed namespaces only (Roles suffice then).

    Nodes are cluster-scoped: kopf watches them cluster-wide either way.
    """
    if services and namespaces:
        return {"clusterwide": False, "namespaces": list(namespaces)}
    return {"clusterwide": True}


def connection_info(credentials: kube.Credentials) -> kopf.ConnectionInfo:
    """The loader's credentials in kopf's terms (the same fields)."""
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_path=credentials.ca_path,
        ca_data=credentials.ca_data,
        insecure=credentials.insecure or None,
        scheme=credentials.scheme,
        token=credentials.token,
        username=credentials.username,
        password=credentials.password,
        certificate_path=credentials.certificate_path,
        certificate_data=credentials.certificate_data,
        private_key_path=credentials.private_key_path,
        private_key_data=credentials.private_key_data,
        default_namespace=credentials.default_namespace,
    )


def login(loader: kube.CredentialsLoader) -> Callable[[], Awaitable[kopf.ConnectionInfo]]:
    """kopf's login: read again each time (kopf asks after a 401), keeping the last good ones."""

    async def credentials() -> kopf.ConnectionInfo:
        return connection_info(await loader.refresh())

    return credentials


def registry(
    loader: kube.CredentialsLoader,
    node_source: nodes.NodeSource,
    services: service_source.ServiceSource | None = None,
) -> kopf.OperatorRegistry:
    """The login handler and the event handlers, on an explicit registry (no module globals)."""
    handlers = kopf.OperatorRegistry()
    logged_in = login(loader)

    @kopf.on.login(registry=handlers)
    async def _login(**_: Any) -> kopf.ConnectionInfo:
        return await logged_in()

    nodes.register(handlers, node_source)
    if services is not None:
        service_source.register(handlers, services)
    return handlers


def operator(
    handlers: kopf.OperatorRegistry,
    *,
    scoped: dict[str, Any],
    ready: asyncio.Event,
    node_selector: str = "",
) -> Coroutine[Any, Any, None]:
    """kopf's operator coroutine; ``ready`` is set once it has started (and set its signal handlers)."""
    result: Coroutine[Any, Any, None] = kopf.operator(
        registry=handlers,
        settings=operator_settings(node_selector),
        standalone=True,
        ready_flag=ready,
        **scoped,
    )
    return result


async def start(
    handlers: kopf.OperatorRegistry, *, scoped: dict[str, Any], node_selector: str = ""
) -> asyncio.Task[None]:
    """kopf's operator as a task, returned once it has started (or ended early).

    Once started, kopf has installed its own SIGINT/SIGTERM handlers: the caller replaces them.
    """
    ready = asyncio.Event()
    task: asyncio.Task[None] = asyncio.create_task(
        operator(handlers, scoped=scoped, ready=ready, node_selector=node_selector), name="node-dns:kopf"
    )
    started = asyncio.create_task(ready.wait())
    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    return task
