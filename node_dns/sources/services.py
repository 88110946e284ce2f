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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from node_dns import model
from node_dns.sources import kopf, kube, nodes

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

    def __init__(self, sink: ServiceSink, annotation: str) -> None:
        self._sink = sink
        self._annotation = annotation
        self._warned: set[tuple[str, str]] = set()
        self.stats = nodes.SourceStats()
        self.on_relisted: Callable[[], None] | None = None
        """Called for objects of a kopf (re-)listing: after a 410, what vanished gets no event."""

    def _service(self, body: Mapping[str, Any]) -> model.ServiceFacts:
        facts = service_facts(body, self._annotation)
        key = (facts.namespace, facts.name)
        if facts.exposed and facts.name in model.FAMILY_PREFIXES:
            if key not in self._warned:
                self._warned.add(key)
                self.stats.invalid_entries[self._annotation] = (
                    self.stats.invalid_entries.get(self._annotation, 0) + 1
                )
                log.warning(
                    "service %s/%s: not served: the name %r is reserved for the family prefixes (v4., v6.)",
                    facts.namespace,
                    facts.name,
                    facts.name,
                )
            return model.ServiceFacts(namespace=facts.namespace, name=facts.name, exposed=False)
        self._warned.discard(key)
        return facts

    def _count(self, kind: str, event_type: str | None) -> None:
        if event_type is None and self.on_relisted is not None:
            self.on_relisted()
        label = f"{kind}:{event_type or 'LISTED'}"
        self.stats.events[label] = self.stats.events.get(label, 0) + 1
        now = time.time()
        self.stats.last_event = now
        self.stats.last_contact = now

    def on_service_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self._count("service", event_type)
        meta = _meta(body)
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = meta.get("resourceVersion")
        if event_type == "DELETED":
            self._warned.discard(key)
            self._sink.apply_service(key, None, version)
        else:
            self._sink.apply_service(key, self._service(body), version)

    def on_slice_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self._count("endpointslice", event_type)
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
        now = time.time()
        self.stats.last_list = now
        self.stats.last_contact = now
        self._sink.replace_services(
            services, listing.services_version, slices, listing.slices_version, listing.namespace
        )


def register(registry: kopf.OperatorRegistry, source: ServiceSource) -> None:
    """Event handlers only: kopf then needs nothing but get/list/watch (read-only)."""

    @kopf.on.event("", "v1", "services", registry=registry)
    async def _service(event: Mapping[str, Any], **_: Any) -> None:
        source.on_service_event(event.get("type"), event.get("object") or {})

    @kopf.on.event("discovery.k8s.io", "v1", "endpointslices", registry=registry)
    async def _slice(event: Mapping[str, Any], **_: Any) -> None:
        source.on_slice_event(event.get("type"), event.get("object") or {})


@dataclass(frozen=True, slots=True)
class Listing:
    """Complete lists of Services and EndpointSlices of one namespace (None: all namespaces)."""

    namespace: str | None
    services: list[Mapping[str, Any]]
    services_version: str | None
    slices: list[Mapping[str, Any]]
    slices_version: str | None


class ServiceLister:
    """Lists Services and EndpointSlices, cluster-wide or per namespace, as raw JSON pages.

    It shares the node lister's :class:`kube.Kube` (one session, one set of credentials).
    """

    def __init__(self, source: ServiceSource, api: kube.Kube, namespaces: tuple[str, ...] = ()) -> None:
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
            services, services_version = await self._api.list_pages(
                f"/api/v1{prefix}/services", "ServiceList"
            )
            slices, slices_version = await self._api.list_pages(
                f"/apis/discovery.k8s.io/v1{prefix}/endpointslices", "EndpointSliceList"
            )
            listings.append(Listing(namespace, services, services_version, slices, slices_version))
        return listings

    def apply(self, listings: list[Listing]) -> None:
        for listing in listings:
            self.source.on_list(listing)
