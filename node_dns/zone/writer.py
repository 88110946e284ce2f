"""The zone's one writer: facts in, snapshots published.

Sources hand every event and list here. Each goes into the store (:mod:`store`), which says
what it touched; the builder (:mod:`build`) makes the next snapshot from the previous one and
that; when served content moved, the serial moves (:mod:`serial`) and the snapshot is
published (:mod:`publish`). Nothing is published before the first complete node list: until
then the zone answers SERVFAIL. The fail-open log switch and the glue warning speak here, on
the difference between two builds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from node_dns import model
from node_dns.zone import build, publish, serial
from node_dns.zone.config import ZoneConfig
from node_dns.zone.policy import NODE_STATES, Policy, Reachability, log_transition
from node_dns.zone.snapshot import ServiceKey, Snapshot
from node_dns.zone.store import Changes, Facts, version

log = logging.getLogger(__name__)


class Zone:
    """Holds the facts and the latest build; publishes a new snapshot when served content moves."""

    def __init__(
        self, config: ZoneConfig, policy: Policy | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.policy = policy or Policy()
        self._clock = clock
        self._facts = Facts(services=config.services)
        self._built = build.stamp(build.build(self._facts, self.policy, config), config, 0, 1)
        self._publisher = publish.Publisher(self._built)
        self._watchers: list[Callable[[Changes], None]] = []

    # --- reading ------------------------------------------------------------------------------
    @property
    def facts(self) -> Facts:
        """The facts held (read them; only this writer changes them)."""
        return self._facts

    @property
    def latest(self) -> Snapshot:
        """The latest build, published or not (its health is current; its content is served)."""
        return self._built

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot being served: the last one published."""
        return self._publisher.current

    @property
    def synced(self) -> bool:
        return self._facts.synced

    @property
    def failed_open(self) -> frozenset[str]:
        return frozenset(area for area, h in self._built.health.areas.items() if h.failed_open)

    @property
    def services_failed_open(self) -> frozenset[ServiceKey]:
        """(namespace, service) of Services served from unhealthy nodes by the fail-open rule."""
        return frozenset(key for key, h in self._built.health.services.items() if h.failed_open)

    @property
    def area_counts(self) -> Mapping[str, tuple[int, int]]:
        """(healthy, member) node counts per area, current even when nothing was published.

        An unhealthy node joining or leaving an area moves no served bytes, so it publishes
        nothing; the counts come from the latest build, not the published snapshot.
        """
        return {area: (h.healthy, h.members) for area, h in self._built.health.areas.items()}

    @property
    def services_served(self) -> int:
        """Services with a name in the zone (opted in), for metrics and logs."""
        parts = self._built.parts
        return len(parts.services) if parts is not None else 0

    def node_states(self) -> Mapping[str, int]:
        """Count of nodes by state, for metrics."""
        counts = dict.fromkeys(NODE_STATES, 0)
        for facts in self._facts.nodes.values():
            counts[self.policy.state(facts)] += 1
        return counts

    def subscribe(self, callback: publish.Subscriber) -> None:
        """Call ``callback(old, new)`` after each publication."""
        self._publisher.subscribe(callback)

    def watch(self, callback: Callable[[Changes], None]) -> None:
        """Call ``callback(changes)`` after every change applied, published or not.

        For consumers of facts that move no served record (a label, a cordon of a node in no
        area): read :attr:`facts` and :attr:`latest` from the callback.
        """
        self._watchers.append(callback)

    # --- writing: each returns True if served content moved ------------------------------------
    def apply(self, name: str, facts: model.NodeFacts | None, version_: str | None = None) -> bool:
        """Apply one node event; ``facts=None`` means the node is gone."""
        ver = version(version_)
        changes = self._facts.apply_node(name, facts, ver)
        return changes is not None and self._commit(changes, ver)

    def replace_all(
        self, nodes: Iterable[tuple[model.NodeFacts, str | None]], list_version: str | None
    ) -> bool:
        """Reconcile against a complete node list: the first one makes the zone authoritative.

        Nodes missing from the list are removed only if we learnt of them before the list was
        taken, and listed nodes older than what the watch already delivered are ignored, so a
        slow list cannot undo newer events.
        """
        replacement = self.replacing(list_version)
        replacement.feed(nodes)
        return replacement.finish()

    def replacing(self, list_version: str | None) -> ListInParts:
        """:meth:`replace_all` in parts: ``feed`` slices of the list, then ``finish`` once.

        Nothing is published until ``finish`` (events applied meanwhile publish as usual), so a
        list of thousands of nodes can be applied a slice per turn of the event loop.
        """
        return ListInParts(self, list_version)

    def apply_service(
        self, key: ServiceKey, facts: model.ServiceFacts | None, version_: str | None = None
    ) -> bool:
        """One Service event; ``facts=None`` means it is gone."""
        ver = version(version_)
        return self._commit(self._facts.apply_service(key, facts, ver), ver)

    def apply_slice(
        self, key: tuple[str, str], facts: model.SliceFacts | None, version_: str | None = None
    ) -> bool:
        """One EndpointSlice event, keyed (namespace, slice name)."""
        ver = version(version_)
        return self._commit(self._facts.apply_slice(key, facts, ver), ver)

    def replace_services(
        self,
        services: Iterable[tuple[model.ServiceFacts, str | None]],
        services_version: str | None,
        slices: Iterable[tuple[model.SliceFacts, str | None]],
        slices_version: str | None,
        namespace: str | None = None,
    ) -> bool:
        """Reconcile Services and slices (of one namespace, or all) against complete lists."""
        services_ver, slices_ver = version(services_version), version(slices_version)
        changes = self._facts.replace_services(
            ((f, version(v)) for f, v in services),
            services_ver,
            ((f, version(v)) for f, v in slices),
            slices_ver,
            namespace,
        )
        known = [v for v in (services_ver, slices_ver) if v is not None]
        return self._commit(changes, max(known) if known else None)

    def set_reachability(
        self, reachable: Reachability | None, areas: Iterable[str], version_: str | None = None
    ) -> bool:
        """New probe verdicts: rebuild ``areas`` (those whose verdicts moved) under them.

        ``version_`` is the resourceVersion of the object the verdicts were read from, so
        replicas applying the same verdicts move to the same serial.
        """
        self.policy = dataclasses.replace(self.policy, reachable=reachable)
        ver = version(version_)
        return self._commit(Changes(areas={a for a in areas if a in self._facts.areas()}), ver)

    def adopt_serial(self, number: int) -> bool:
        """Serve the same content under ``number`` (the serial replicas agreed on; see
        :class:`node_dns.zone.serial.Agreement`). True if a snapshot was published."""
        current = self.snapshot
        if not current.synced or number == current.serial:
            return False
        self._built = build.stamp(self._built, self.config, number, current.generation + 1)
        self._publisher.publish(self._built)
        return True

    # --- internals ----------------------------------------------------------------------------
    def _commit(self, changes: Changes, ver: int | None, force: bool = False) -> bool:
        prev = self._built
        built = build.rebuild(prev, self._facts, self.policy, self.config, changes)
        self._report(prev, built, changes)
        changed = built.names is not prev.names
        self._built = built
        if changed or force:
            current = self.snapshot
            number = current.serial
            if (built.synced and changed) or (force and number == 0):
                number = serial.next_serial(number, ver, self._clock())
            if built.synced:
                self._built = build.stamp(built, self.config, number, current.generation + 1)
                self._publisher.publish(self._built)
        if changes.nodes or changes.areas or changes.services:
            for callback in self._watchers:
                callback(changes)
        return changed

    def _report(self, prev: Snapshot, built: Snapshot, changes: Changes) -> None:
        """Log what flipped: fail-open per area and Service, an area shadowing a glue name."""
        for area in changes.areas:
            log_transition("area", area, "nodes", prev.health.areas.get(area), built.health.areas.get(area))
            if _newly_shadows_glue(area, prev, built):
                log.warning("area %s shadows a name server's glue; the glue is served", area)
        for service in changes.services:
            log_transition(
                "service",
                "/".join(service),
                "endpoint nodes",
                prev.health.services.get(service),
                built.health.services.get(service),
            )


class ListInParts:
    """A complete node list applied to a :class:`Zone` in slices; one commit at the end."""

    def __init__(self, zone: Zone, list_version: str | None) -> None:
        self._zone = zone
        self._version = version(list_version)
        self._first = not zone.facts.synced
        self._list = zone.facts.replacing_nodes(self._version)
        self._changes = Changes()

    def feed(self, nodes: Iterable[tuple[model.NodeFacts, str | None]]) -> None:
        self._changes |= self._list.feed((f, version(v)) for f, v in nodes)

    def finish(self) -> bool:
        """Apply the deletions and commit; True if served content moved (or the zone is new)."""
        self._changes |= self._list.finish()
        return self._zone._commit(self._changes, self._version, force=self._first) or self._first

    def abandon(self) -> None:
        """The list failed part-way: commit what was fed (no deletions; a zone not yet synced
        stays so), so the served content matches the facts held."""
        self._zone._commit(self._changes, self._version)


def _newly_shadows_glue(area: str, prev: Snapshot, built: Snapshot) -> bool:
    if built.parts is None or prev.parts is None:
        return False
    appeared = area in built.parts.areas and area not in prev.parts.areas
    return appeared and build.area_key(area, built.origin) in built.parts.glue
