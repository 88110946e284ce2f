"""Where hooks read the served state: the zone, seen from outside, as updates for the renderer.

Areas and Services come from the published snapshot (what DNS answers, fail-open and static
records included); their fail-open flags and the nodes come from the latest build and the
facts, which are current even when a change moved no served record (a label, the cordon of a
node in no area).

The zone tells :class:`ZoneFeed` what each change touched (``zone.watch``); the feed only
remembers the names. When a hook is about to render, :meth:`ZoneFeed.updates` turns the names
remembered since the last time into one :class:`~node_dns.sinks.hooks.view.Update`: the work
in the serving process is a set insert per change plus a record per changed name per render,
never a walk over every node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from node_dns import model
from node_dns.sinks.hooks.view import NodeRecord, Served, ServiceKey, Update
from node_dns.zone import build, snapshot, store, writer

FULL_CHUNK = 200
"""Nodes per message of a full copy (the serving loop gets a turn between two)."""


def served(node: snapshot.Node | None, failed_open: bool = False) -> Served:
    """The A and AAAA texts of one snapshot name (already sorted the way they are answered)."""
    if node is None:
        return Served(failed_open=failed_open)
    a = node.rrsets.get(snapshot.TYPE_A)
    aaaa = node.rrsets.get(snapshot.TYPE_AAAA)
    return Served(a.texts if a else (), aaaa.texts if aaaa else (), failed_open)


def _texts(ips: tuple[model.IPAddress, ...], version: int) -> tuple[str, ...]:
    return tuple(str(ip) for ip in sorted({ip for ip in ips if ip.version == version}, key=int))


def record(facts: model.NodeFacts, healthy: bool) -> NodeRecord:
    return NodeRecord(
        name=facts.name,
        areas=tuple(sorted(facts.areas)),
        ipv4=_texts(facts.ips, 4),
        ipv6=_texts(facts.ips, 6),
        ready=facts.ready,
        cordoned=not facts.schedulable,
        healthy=healthy,
        labels=facts.labels,
    )


class ZoneFeed:
    """Changes of one zone, remembered by name until the render process is sent them."""

    def __init__(self, zone: writer.Zone) -> None:
        self._zone = zone
        self._static = {
            area: _texts(ips, 4) + _texts(ips, 6) for area, ips in zone.config.static_records.items()
        }
        self._nodes: set[str] = set()
        self._areas: set[str] = set()
        self._services: set[ServiceKey] = set()
        self._listeners: list[Callable[[], None]] = []
        zone.subscribe(lambda old, new: self._notify())
        zone.watch(self._changed)

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every publication and every change of facts."""
        self._listeners.append(callback)

    def ready(self) -> bool:
        """Nothing is rendered before the zone's first complete list of nodes."""
        return self._zone.synced

    def _changed(self, changes: store.Changes) -> None:
        self._nodes |= changes.nodes
        self._areas |= changes.areas
        self._services |= changes.services
        self._notify()

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def updates(self, timestamp: float, full: bool) -> Iterator[Update]:
        """What changed since the last call (everything if ``full``), as one or more updates."""
        zone = self._zone
        health = zone.latest.health
        names, origin = zone.snapshot.names, zone.snapshot.origin
        if full:
            self._nodes.clear()
            self._areas.clear()
            self._services.clear()
            areas = set(health.areas) | set(self._static)
            services: set[ServiceKey] = set(health.services)
        else:
            areas, self._areas = self._areas, set()
            services, self._services = self._services, set()

        def area(name: str) -> Served | None:
            scope = health.areas.get(name)
            if scope is None and name not in self._static:
                return None
            return served(names.get(build.area_key(name, origin)), scope.failed_open if scope else False)

        def service(key: ServiceKey) -> Served | None:
            scope = health.services.get(key)
            return (
                None
                if scope is None
                else served(names.get(build.service_key(key, origin)), scope.failed_open)
            )

        on = zone.config.services
        head = Update(
            zone=zone.config.zone,
            serial=zone.snapshot.serial,
            timestamp=timestamp,
            full=full,
            areas=tuple((name, area(name)) for name in sorted(areas)),
            services=tuple((key, service(key)) for key in sorted(services)) if on else None,
            static=tuple(sorted(self._static.items())) if full else (),
        )
        facts, healthy = zone.facts.nodes, zone.policy.healthy
        if not full:
            changed, self._nodes = self._nodes, set()
            present = [facts[name] for name in sorted(changed) if name in facts]
            gone = tuple(sorted(name for name in changed if name not in facts))
            yield dataclasses.replace(head, nodes=tuple(record(f, healthy(f)) for f in present), gone=gone)
            return
        every = list(facts.values())
        yield dataclasses.replace(head, nodes=tuple(record(f, healthy(f)) for f in every[:FULL_CHUNK]))
        for start in range(FULL_CHUNK, len(every), FULL_CHUNK):
            chunk = every[start : start + FULL_CHUNK]
            yield Update(head.zone, head.serial, timestamp, nodes=tuple(record(f, healthy(f)) for f in chunk))
