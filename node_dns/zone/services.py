"""Services and their EndpointSlices, indexed for the zone: which nodes serve which Service.

The zone asks two questions: "which nodes host endpoints of this Service?" (to build its
records) and "which Services have endpoints on this node?" (to rebuild them when the node's
health or IPs change). Both are answered from indexes kept up to date per event, so a change
costs work proportional to the slice or node that changed.

Events and lists are guarded by resourceVersion like nodes are: an event older than what is
held is ignored, and a complete list removes only objects learnt of before it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from node_dns import model

ServiceKey = tuple[str, str]
"""(namespace, name) of a Service."""

K = TypeVar("K")
V = TypeVar("V")


def version(value: str | None) -> int | None:
    """resourceVersions are opaque, but every apiserver backed by etcd gives integers."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass
class Store(Generic[K, V]):
    """Objects by key with the resourceVersion rules of the node state (per event and per list)."""

    items: dict[K, V] = field(default_factory=dict)
    versions: dict[K, int] = field(default_factory=dict)
    tombstones: dict[K, int] = field(default_factory=dict)

    def apply(self, key: K, value: V | None, ver: int | None) -> tuple[bool, V | None]:
        """Apply one event; returns (applied, previous value). Stale events are not applied."""
        known = self.versions.get(key)
        if ver is not None and known is not None and ver < known:
            return False, self.items.get(key)
        old = self.items.get(key)
        if value is None:
            self.items.pop(key, None)
            self.versions.pop(key, None)
            if ver is not None:
                self.tombstones[key] = ver
        else:
            self.tombstones.pop(key, None)
            self.items[key] = value
            if ver is not None:
                self.versions[key] = ver
        return True, old

    def replace(
        self,
        entries: Iterable[tuple[K, V, int | None]],
        list_ver: int | None,
        in_scope: Callable[[K], bool],
    ) -> list[tuple[K, V | None, V | None]]:
        """Reconcile the keys ``in_scope`` against a complete list; returns (key, old, new) changes."""
        seen: set[K] = set()
        changes: list[tuple[K, V | None, V | None]] = []
        for key, value, ver in entries:
            seen.add(key)
            known = self.versions.get(key)
            tomb = self.tombstones.get(key)
            if ver is not None and known is not None and ver < known:
                continue
            if ver is not None and tomb is not None and ver <= tomb:
                continue
            old = self.items.get(key)
            self.items[key] = value
            if ver is not None:
                self.versions[key] = ver
            if old != value:
                changes.append((key, old, value))
        for key in [k for k in self.items if k not in seen and in_scope(k)]:
            known = self.versions.get(key)
            if list_ver is not None and known is not None and known > list_ver:
                continue  # created after the list was taken
            changes.append((key, self.items.pop(key), None))
            self.versions.pop(key, None)
        if list_ver is not None:
            self.tombstones = {k: v for k, v in self.tombstones.items() if not in_scope(k) or v > list_ver}
        return changes


def _in(namespace: str | None) -> Callable[[tuple[str, str]], bool]:
    if namespace is None:
        return lambda key: True
    return lambda key: key[0] == namespace


class ServiceIndex:
    """Opted-in Services, slices by Service, and Services by node."""

    def __init__(self) -> None:
        self._services: Store[ServiceKey, model.ServiceFacts] = Store()
        self._slices: Store[tuple[str, str], model.SliceFacts] = Store()
        self._by_service: dict[ServiceKey, set[str]] = {}
        self._by_node: dict[str, dict[ServiceKey, int]] = {}
        self.services_listed = False
        self.slices_listed = False

    # --- reading ------------------------------------------------------------------------------
    def exposed(self, key: ServiceKey) -> bool:
        facts = self._services.items.get(key)
        return facts is not None and facts.exposed

    def exposed_keys(self) -> list[ServiceKey]:
        return [key for key, facts in self._services.items.items() if facts.exposed]

    def on_node(self, node: str) -> set[ServiceKey]:
        """Services with an endpoint (ready or terminating) on ``node``."""
        return set(self._by_node.get(node, ()))

    def nodes(self, key: ServiceKey) -> tuple[set[str], set[str]]:
        """Nodes hosting ready endpoints, and nodes hosting serving-but-terminating ones."""
        ready: set[str] = set()
        terminating: set[str] = set()
        for name in self._by_service.get(key, ()):
            facts = self._slices.items[(key[0], name)]
            ready |= facts.ready
            terminating |= facts.terminating
        return ready, terminating

    # --- writing: each returns the Services whose records may have changed --------------------
    def apply_service(
        self, key: ServiceKey, facts: model.ServiceFacts | None, ver: str | None
    ) -> set[ServiceKey]:
        applied, old = self._services.apply(key, facts, version(ver))
        if not applied or old == facts:
            return set()
        return {key}

    def apply_slice(
        self, key: tuple[str, str], facts: model.SliceFacts | None, ver: str | None
    ) -> set[ServiceKey]:
        applied, old = self._slices.apply(key, facts, version(ver))
        if not applied or old == facts:
            return set()
        return self._reindex(key, old, facts)

    def replace_services(
        self,
        items: Iterable[tuple[model.ServiceFacts, str | None]],
        list_version: str | None,
        namespace: str | None = None,
    ) -> set[ServiceKey]:
        entries = (((f.namespace, f.name), f, version(v)) for f, v in items)
        changes = self._services.replace(entries, version(list_version), _in(namespace))
        self.services_listed = True
        return {key for key, _, _ in changes}

    def replace_slices(
        self,
        items: Iterable[tuple[model.SliceFacts, str | None]],
        list_version: str | None,
        namespace: str | None = None,
    ) -> set[ServiceKey]:
        entries = (((f.namespace, f.name), f, version(v)) for f, v in items)
        touched: set[ServiceKey] = set()
        for key, old, new in self._slices.replace(entries, version(list_version), _in(namespace)):
            touched |= self._reindex(key, old, new)
        self.slices_listed = True
        return touched

    def _reindex(
        self, key: tuple[str, str], old: model.SliceFacts | None, new: model.SliceFacts | None
    ) -> set[ServiceKey]:
        namespace, name = key
        touched: set[ServiceKey] = set()
        if old is not None:
            service = (namespace, old.service)
            touched.add(service)
            names = self._by_service.get(service)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._by_service[service]
            for node in old.ready | old.terminating:
                counts = self._by_node[node]
                counts[service] -= 1
                if not counts[service]:
                    del counts[service]
                    if not counts:
                        del self._by_node[node]
        if new is not None:
            service = (namespace, new.service)
            touched.add(service)
            self._by_service.setdefault(service, set()).add(name)
            for node in new.ready | new.terminating:
                counts = self._by_node.setdefault(node, {})
                counts[service] = counts.get(service, 0) + 1
        return {service for service in touched if service[1]}
