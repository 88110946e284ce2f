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


def soa(config: ZoneConfig, serial: int) -> RRset:
    return records.soa_rrset(
        mname=config.nameservers[0].name,
        rname=config.soa_rname,
        serial=serial,
        refresh=config.soa_refresh,
        retry=config.soa_retry,
        expire=config.soa_expire,
        minimum=config.negative_ttl,
        ttl=config.soa_ttl,
    )


def empty(config: ZoneConfig, synced: bool = False) -> Snapshot:
    """The zone with no areas and no Services: apex SOA and NS, and glue."""
    origin = name_key(config.zone)
    names = glue(config)
    apex_soa = soa(config, 0)
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
        parts=Parts(immutables.Map(), immutables.Map(), immutables.Map()),
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
    ttl = config.record_ttl
    node_records = parts.records
    if changes.nodes:
        node_records = _encode_nodes(node_records, facts.nodes, changes.nodes, ttl)
    writer = _Names(prev, glue(config))
    area_nodes = parts.areas.mutate()
    area_health = prev.health.areas.mutate()
    for area in changes.areas:
        node, health = _area(area, facts, policy, config, node_records)
        _set(area_health, area, health)
        if node != parts.areas.get(area):
            _set(area_nodes, area, node)
            writer.put(area_key(area, prev.origin), node)
    service_nodes = parts.services.mutate()
    service_health = prev.health.services.mutate()
    for key in changes.services:
        node, health = _service(key, facts, policy, ttl)
        _set(service_health, key, health)
        if node != parts.services.get(key):
            _set(service_nodes, key, node)
            writer.put(service_key(key, prev.origin), node)
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
        health=Health(area_health.finish(), service_health.finish()),
        parts=Parts(node_records, area_nodes.finish(), service_nodes.finish()),
        delta=Delta(prev.generation, accumulated | writer.touched),
        lineage=prev.lineage,
    )


def stamp(snap: Snapshot, config: ZoneConfig, serial: int, generation: int) -> Snapshot:
    """``snap`` as published: its SOA carries ``serial``, and it is publication ``generation``."""
    apex_soa = soa(config, serial)
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
    node_records: Mapping[str, records.AddressRecords],
) -> tuple[Node | None, ScopeHealth | None]:
    static = config.static_records.get(area)  # served with no node at all, never counted
    members = [facts.nodes[name] for name in facts.members(area)]
    if not members:
        return (Node(records.address_rrsets(static, config.record_ttl)) if static else None), None
    chosen = policy.select(members, area)
    groups = [node_records[f.name] for f in chosen.served]
    if static:
        groups.append(records.address_records(static, config.record_ttl))
    return Node(records.merged_rrsets(groups, config.record_ttl)), chosen.health


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


def _encode_nodes(
    node_records: immutables.Map[str, records.AddressRecords],
    nodes: Mapping[str, model.NodeFacts],
    changed: Iterable[str],
    ttl: int,
) -> immutables.Map[str, records.AddressRecords]:
    """Encode the addresses of the nodes that changed them; others keep their encoding."""
    out = node_records.mutate()
    for name in changed:
        facts = nodes.get(name)
        old = node_records.get(name)
        if facts is None:
            out.pop(name, None)
        elif old is None or old.ips != facts.ips:
            out[name] = records.address_records(facts.ips, ttl)
    return out.finish()


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

    def __init__(self, prev: Snapshot, glue: Mapping[NameKey, Node]) -> None:
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
