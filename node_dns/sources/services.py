"""Services and EndpointSlices to facts, their kopf handlers, and their complete lists.

A Service is served at ``<service>.<namespace>.<zone>`` when its opt-in annotation
(``service_annotation``, value ``"true"``) is set. Its records are the IPs of the healthy nodes
that host its endpoints; which endpoints count is the zone's rule (ready ones, else serving but
terminating ones). This module only reduces objects to :class:`model.ServiceFacts` and
:class:`model.SliceFacts`.

Like nodes, Services and EndpointSlices are watched by kopf with ``@kopf.on.event`` handlers
only (read-only: get/list/watch is all the RBAC they need), and listed by node-dns itself for
the synced gate and the periodic reconcile. With ``service_namespaces`` set, both the watch and
the lists are per namespace, so Roles in those namespaces are enough.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from node_dns import kube, model
from node_dns.sources import events, kopf

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class ServiceSink(Protocol):
    """Where Service facts go (the zone state)."""

    def apply_service(
        self, key: tuple[str, str], facts: model.ServiceFacts | None, version: str | None = None
    ) -> bool: ...

    def apply_slice(
        self, key: tuple[str, str], facts: model.SliceFacts | None, version: str | None = None
    ) -> bool: ...

    def replace_services(
        self,
        services: list[tuple[model.ServiceFacts, str | None]],
        services_version: str | None,
        slices: list[tuple[model.SliceFacts, str | None]],
        slices_version: str | None,
        namespace: str | None = None,
    ) -> bool: ...


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def service_facts(body: Mapping[str, Any], annotation: str) -> model.ServiceFacts:
    """Pure: a Service is exposed when its annotation says "true" (any case, spaces ignored)."""
    meta = _meta(body)
    notes = meta.get("annotations") or {}
    value = notes.get(annotation)
    return model.ServiceFacts(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        exposed=isinstance(value, str) and value.strip().lower() == "true",
    )


def _condition(conditions: Mapping[str, Any], name: str, unset: bool) -> bool:
    value = conditions.get(name)
    return unset if value is None else bool(value)


def slice_facts(body: Mapping[str, Any]) -> model.SliceFacts:
    """Pure: the nodes of ready endpoints, and of serving-but-terminating ones.

    Conditions are read the way kube-proxy reads them: ``ready`` and ``serving`` unset mean
    true, ``terminating`` unset means false. Endpoints without ``nodeName`` are skipped: they
    cannot be mapped to a node's IPs.
    """
    meta = _meta(body)
    labels = meta.get("labels") or {}
    ready: set[str] = set()
    terminating: set[str] = set()
    for endpoint in body.get("endpoints") or ():
        if not isinstance(endpoint, Mapping):
            continue
        node = endpoint.get("nodeName")
        if not node or not isinstance(node, str):
            continue
        conditions = endpoint.get("conditions") or {}
        if _condition(conditions, "ready", True):
            ready.add(node)
        elif _condition(conditions, "terminating", False) and _condition(conditions, "serving", True):
            terminating.add(node)
    return model.SliceFacts(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        service=str(labels.get(SERVICE_NAME_LABEL) or ""),
        ready=frozenset(ready),
        terminating=frozenset(terminating),
    )


class ServiceSource:
    """Turns Service and EndpointSlice events and lists into facts for the sink."""

    def __init__(
        self, sink: ServiceSink, annotation: str, invalid_entries: dict[str, int] | None = None
    ) -> None:
        self._sink = sink
        self._annotation = annotation
        self._invalid = invalid_entries if invalid_entries is not None else {}
        """Skipped entries by annotation: the node source's exported counters, shared."""
        self._warned: set[tuple[str, str]] = set()
        self.on_relisted: Callable[[], None] | None = None
        """Called for objects of a kopf (re-)listing: after a 410, what vanished gets no event."""

    def _service(self, body: Mapping[str, Any]) -> model.ServiceFacts:
        facts = service_facts(body, self._annotation)
        key = (facts.namespace, facts.name)
        if facts.exposed and facts.name in model.FAMILY_PREFIXES:
            if key not in self._warned:
                self._warned.add(key)
                self._invalid[self._annotation] = self._invalid.get(self._annotation, 0) + 1
                log.warning(
                    "service %s/%s: not served: the name %r is reserved for the family prefixes (v4., v6.)",
                    facts.namespace,
                    facts.name,
                    facts.name,
                )
            return model.ServiceFacts(namespace=facts.namespace, name=facts.name, exposed=False)
        self._warned.discard(key)
        return facts

    def _relisted(self, event_type: str | None) -> None:
        if event_type is None and self.on_relisted is not None:
            self.on_relisted()

    def on_service_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self._relisted(event_type)
        meta = _meta(body)
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = meta.get("resourceVersion")
        if event_type == "DELETED":
            self._warned.discard(key)
            self._sink.apply_service(key, None, version)
        else:
            self._sink.apply_service(key, self._service(body), version)

    def on_slice_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self._relisted(event_type)
        meta = _meta(body)
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = meta.get("resourceVersion")
        if event_type == "DELETED":
            self._sink.apply_slice(key, None, version)
        else:
            self._sink.apply_slice(key, slice_facts(body), version)

    def on_list(self, listing: Listing) -> None:
        services = [(self._service(item), _meta(item).get("resourceVersion")) for item in listing.services]
        slices = [(slice_facts(item), _meta(item).get("resourceVersion")) for item in listing.slices]
        self._sink.replace_services(
            services, listing.services_version, slices, listing.slices_version, listing.namespace
        )


def register(registry: kopf.OperatorRegistry, source: ServiceSource) -> None:
    """Event handlers only: kopf then needs nothing but get/list/watch (read-only)."""

    @kopf.on.event("", "v1", "services", registry=registry)
    async def _service(event: Mapping[str, Any], **_: Any) -> None:
        body = event.get("object") or {}
        source.on_service_event(event.get("type"), body)
        events.release(body)

    @kopf.on.event("discovery.k8s.io", "v1", "endpointslices", registry=registry)
    async def _slice(event: Mapping[str, Any], **_: Any) -> None:
        body = event.get("object") or {}
        source.on_slice_event(event.get("type"), body)
        events.release(body)


@dataclass(frozen=True, slots=True)
class Listing:
    """Complete lists of Services and EndpointSlices of one namespace (None: all namespaces)."""

    namespace: str | None
    services: Sequence[Mapping[str, Any]]
    services_version: str | None
    slices: Sequence[Mapping[str, Any]]
    slices_version: str | None


class ServiceLister:
    """Lists Services and EndpointSlices, cluster-wide or per namespace, as raw JSON pages.

    It shares the node lister's :class:`kube.Client` (one session, one set of credentials).
    """

    def __init__(self, source: ServiceSource, api: kube.Client, namespaces: tuple[str, ...] = ()) -> None:
        self.source = source
        self._api = api
        self._namespaces = namespaces

    async def fetch(self) -> list[Listing]:
        """Every scope listed completely, or an exception: nothing is applied half-way."""
        scopes: list[tuple[str | None, str]] = (
            [(None, "")] if not self._namespaces else [(ns, f"/namespaces/{ns}") for ns in self._namespaces]
        )
        listings = []
        for namespace, prefix in scopes:
            services = await self._api.list(f"/api/v1{prefix}/services", kind="ServiceList")
            slices = await self._api.list(
                f"/apis/discovery.k8s.io/v1{prefix}/endpointslices", kind="EndpointSliceList"
            )
            listings.append(
                Listing(
                    namespace,
                    services.items,
                    services.resource_version,
                    slices.items,
                    slices.resource_version,
                )
            )
        return listings

    def apply(self, listings: list[Listing]) -> None:
        for listing in listings:
            self.source.on_list(listing)
