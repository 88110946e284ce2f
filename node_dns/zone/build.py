"""Facts, policy and configuration in, a snapshot out: pure, and incremental.

:func:`build` makes a whole zone from scratch. :func:`rebuild` makes the next one from the
previous snapshot and what a change touched (:class:`store.Changes`): only those areas and
Services are chosen and encoded again, and the persistent maps of the previous snapshot are
shared for everything else, so one node's change costs work in proportion to the areas it is
in, not to the zone. Both leave their inputs untouched and give the same zone for the same
facts (the tests hold :func:`rebuild` to :func:`build`). :func:`stamp` gives a built snapshot
its SOA serial and publication number when it is published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

import immutables
from immutables._protocols import MapMutation

from node_dns import model
from node_dns.zone import records
from node_dns.zone.config import ZoneConfig
from node_dns.zone.policy import Policy, ScopeHealth
from node_dns.zone.records import name_key
from node_dns.zone.snapshot import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_NS,
    TYPE_SOA,
    Delta,
    Health,
    NameKey,
    Node,
    Parts,
    RRset,
    ServiceKey,
    Snapshot,
)
from node_dns.zone.store import Changes, Facts

_EMPTY = Node({})
K = TypeVar("K")
V = TypeVar("V")


def area_key(area: str, origin: NameKey) -> NameKey:
    return (area.encode("ascii"), *origin)


def service_key(key: ServiceKey, origin: NameKey) -> NameKey:
    return (key[1].encode("ascii"), key[0].encode("ascii"), *origin)


def glue(config: ZoneConfig) -> dict[NameKey, Node]:
    """A/AAAA of the name servers inside the zone: fixed, and served over any area of that name."""
    zone = config.zone
    names: dict[NameKey, Node] = {}
    for ns in config.nameservers:
        if ns.name == zone or ns.name.endswith("." + zone):
            names[name_key(ns.name)] = Node(records.address_rrsets(ns.ips, config.ns_ttl))
    return names


def empty(config: ZoneConfig, synced: bool = False) -> Snapshot:
    """The zone with no areas and no Services: apex SOA and NS, and glue."""
    origin = name_key(config.zone)
    names = glue(config)
    glue_names = frozenset(names)
    apex_soa = records.soa_rrset(config, 0)
    apex = dict(names.get(origin, _EMPTY).rrsets)
    apex[TYPE_SOA] = apex_soa
    apex[TYPE_NS] = records.ns_rrset((ns.name for ns in config.nameservers), config.ns_ttl)
    names[origin] = Node(apex)
    below: MapMutation[NameKey, int] = immutables.Map[NameKey, int]().mutate()
    for key in names:
        _link(below, key, len(origin))
    return Snapshot(
        origin=origin,
        serial=0,
        synced=synced,
        names=immutables.Map(names),
        soa=apex_soa,
        negative_ttl=min(config.soa_ttl, config.negative_ttl),
        below=below.finish(),
        health=Health(immutables.Map(), immutables.Map()),
        parts=Parts(immutables.Map(), immutables.Map(), immutables.Map(), glue_names),
        lineage=object(),
    )


def build(facts: Facts, policy: Policy, config: ZoneConfig) -> Snapshot:
    """The whole zone for these facts."""
    everything = Changes(
        nodes=set(facts.nodes),
        areas=set(facts.areas()) | set(config.static_records),
        services=set(facts.service_keys()) if config.services else set(),
    )
    return rebuild(empty(config, facts.synced), facts, policy, config, everything)


def rebuild(prev: Snapshot, facts: Facts, policy: Policy, config: ZoneConfig, changes: Changes) -> Snapshot:
    """The zone after ``changes``: ``prev`` with the touched areas and Services built again.

    ``prev.names`` is returned as is (the same object) when no served record moved, which is
    how the caller tells a content change from a change of health counts only.
    """
    if prev.parts is None:
        raise ValueError("rebuild needs a snapshot made by build() or rebuild()")
    parts = prev.parts
    writer = _Names(prev, parts.glue)
    area_records, area_nodes, area_health = parts.records, parts.areas, prev.health.areas
    if changes.areas:
        records_out, nodes_out, health_out = area_records.mutate(), area_nodes.mutate(), area_health.mutate()
        for area in changes.areas:
            node, health, encoded = _area(area, facts, policy, config, area_records.get(area))
            _set(health_out, area, health)
            _set(records_out, area, encoded)
            if node != area_nodes.get(area):
                _set(nodes_out, area, node)
                writer.put(area_key(area, prev.origin), node)
        area_records, area_nodes, area_health = records_out.finish(), nodes_out.finish(), health_out.finish()
    service_nodes, service_health = parts.services, prev.health.services
    if changes.services:
        services_out, service_health_out = service_nodes.mutate(), service_health.mutate()
        for key in changes.services:
            node, health = _service(key, facts, policy, config.record_ttl)
            _set(service_health_out, key, health)
            if node != service_nodes.get(key):
                _set(services_out, key, node)
                writer.put(service_key(key, prev.origin), node)
        service_nodes, service_health = services_out.finish(), service_health_out.finish()
    names, below = writer.finish()
    accumulated = (
        prev.delta.names if prev.delta is not None and prev.delta.base == prev.generation else frozenset()
    )
    return Snapshot(
        origin=prev.origin,
        serial=prev.serial,
        synced=facts.synced,
        names=names,
        soa=prev.soa,
        negative_ttl=prev.negative_ttl,
        generation=prev.generation,
        below=below,
        health=Health(area_health, service_health),
        parts=Parts(area_records, area_nodes, service_nodes, parts.glue),
        delta=Delta(prev.generation, accumulated | writer.touched),
        lineage=prev.lineage,
    )


def stamp(snap: Snapshot, config: ZoneConfig, serial: int, generation: int) -> Snapshot:
    """``snap`` as published: its SOA carries ``serial``, and it is publication ``generation``."""
    apex_soa = records.soa_rrset(config, serial)
    apex = dict(snap.names[snap.origin].rrsets)
    apex[TYPE_SOA] = apex_soa
    names = snap.names.set(snap.origin, Node(apex))
    since = snap.delta.names if snap.delta is not None and snap.delta.base == snap.generation else frozenset()
    return Snapshot(
        origin=snap.origin,
        serial=serial,
        synced=snap.synced,
        names=names,
        soa=apex_soa,
        negative_ttl=snap.negative_ttl,
        generation=generation,
        below=snap.below,
        health=snap.health,
        parts=snap.parts,
        delta=Delta(snap.generation, since | {snap.origin}),
        lineage=snap.lineage,
    )


# --- one area, one Service ----------------------------------------------------------------------


def _area(
    area: str,
    facts: Facts,
    policy: Policy,
    config: ZoneConfig,
    encoded: Mapping[str, records.AddressRecords] | None,
) -> tuple[Node | None, ScopeHealth | None, Mapping[str, records.AddressRecords] | None]:
    """The area's node, its health, and its members' encoded addresses (kept for the next build).

    A member's addresses are encoded again only when they changed (or it just joined): an area
    is rebuilt on every change of one of its nodes, and encoding the others each time was most
    of the cost of an update.
    """
    ttl = config.record_ttl
    static = config.static_records.get(area)  # served with no node at all, never counted
    members = list(facts.members(area))
    if not members:
        return (Node(records.address_rrsets(static, ttl)) if static else None), None, None
    before = encoded or {}
    current: dict[str, records.AddressRecords] = {}
    for member in members:
        found = before.get(member.name)
        if found is None or found.ips is not member.ips:
            if found is None or found.ips != member.ips:
                found = records.address_records(member.ips, ttl)
            else:  # same addresses in a new facts object: keep the encoding, compare by identity next time
                found = records.AddressRecords(member.ips, found.v4, found.v6, found.plain)
        current[member.name] = found
    chosen = policy.select(members, area, area=True)
    # A node served with only some of its addresses (probes removed others) is encoded for this
    # area alone: its facts were copied with fewer addresses.
    groups = [
        current[f.name] if len(f.ips) == len(current[f.name].ips) else records.address_records(f.ips, ttl)
        for f in chosen.served
    ]
    if static:
        groups.append(records.address_records(static, ttl))
    return Node(records.merged_rrsets(groups, ttl)), chosen.health, current


def _service(
    key: ServiceKey, facts: Facts, policy: Policy, ttl: int
) -> tuple[Node | None, ScopeHealth | None]:
    """Healthy nodes with a ready endpoint, else with a serving-but-terminating one, else NODATA.

    The fail-open rule applies to the tier served (ready endpoints if a healthy node hosts one,
    else terminating ones, else whichever exists), so a partition that makes every node look
    NotReady does not empty Services any more than areas.
    """
    if not facts.exposed(key) or key[1] in model.FAMILY_PREFIXES:
        return None, None
    scope = f"{key[0]}/{key[1]}"
    ready, terminating = facts.service_nodes(key)
    tier = ready
    if (
        terminating
        and not _any_healthy(facts, ready, policy, scope)
        and (_any_healthy(facts, terminating, policy, scope) or not ready)
    ):
        tier = terminating
    known = [f for f in (facts.nodes.get(n) for n in sorted(tier)) if f is not None]
    chosen = policy.select(known, scope)
    ips = [ip for f in chosen.served for ip in f.ips]
    return Node(records.address_rrsets(ips, ttl)), chosen.health


def _any_healthy(facts: Facts, names: Iterable[str], policy: Policy, scope: str) -> bool:
    return any((f := facts.nodes.get(name)) is not None and policy.healthy(f, scope) for name in names)


# --- persistent maps ------------------------------------------------------------------------------


def _set(target: MapMutation[K, V], key: K, value: V | None) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _link(below: MapMutation[NameKey, int], key: NameKey, origin_len: int) -> None:
    for cut in range(1, len(key) - origin_len):
        parent = key[cut:]
        below[parent] = below.get(parent, 0) + 1


def _unlink(below: MapMutation[NameKey, int], key: NameKey, origin_len: int) -> None:
    for cut in range(1, len(key) - origin_len):
        parent = key[cut:]
        count = below[parent] - 1
        if count:
            below[parent] = count
        else:
            del below[parent]


def _only(rtype: int, rrset: RRset | None) -> Node:
    return Node({rtype: rrset}) if rrset is not None else _EMPTY


class _Names:
    """Writes an area's or a Service's node, and its v4./v6. family names, into a new name map."""

    def __init__(self, prev: Snapshot, glue: frozenset[NameKey]) -> None:
        self._prev = prev
        self._glue = glue
        self._names = prev.names.mutate()
        self._below = prev.below.mutate()
        self.touched: set[NameKey] = set()

    def put(self, key: NameKey, node: Node | None) -> None:
        if node is None:
            family: tuple[Node | None, Node | None] = (None, None)
        else:
            a = node.rrsets.get(TYPE_A)
            aaaa = node.rrsets.get(TYPE_AAAA)
            # Single-family names (the common case) reuse their own node for the matching prefix.
            family = (
                node if aaaa is None else _only(TYPE_A, a),
                node if a is None else _only(TYPE_AAAA, aaaa),
            )
        self._put(key, node)
        self._put((b"v4", *key), family[0])
        self._put((b"v6", *key), family[1])

    def _put(self, key: NameKey, node: Node | None) -> None:
        if key in self._glue:
            return  # the glue of a name server is served over an area of the same name
        origin_len = len(self._prev.origin)
        old = self._names.get(key)
        if node is None:
            if old is None:
                return
            del self._names[key]
            _unlink(self._below, key, origin_len)
        else:
            if old is None:
                _link(self._below, key, origin_len)
            self._names[key] = node
        self.touched.add(key)

    def finish(self) -> tuple[immutables.Map[NameKey, Node], immutables.Map[NameKey, int]]:
        if not self.touched:
            return self._prev.names, self._prev.below
        return self._names.finish(), self._below.finish()
