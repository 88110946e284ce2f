"""ZoneState: the one writer. Applies node facts, decides membership, publishes snapshots.

Work per event is proportional to what changed: only the areas the node was or is in are
rebuilt, and a snapshot is published only when served bytes differ. That is also the rule for
the SOA serial, which therefore moves exactly when content moves.

The serial is derived from the Kubernetes resourceVersion of the change that moved content
(the list's resourceVersion for a full list). Every replica watching the same apiserver sees the
same versions, so replicas converge on the same serial, and a restart never makes it go back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from node_dns import model
from node_dns.settings import Settings
from node_dns.zone import build, snapshot
from node_dns.zone import services as services_mod

log = logging.getLogger(__name__)

SERIAL_MODULO = 2**32
Subscriber = Callable[[snapshot.Snapshot], None]


def serial_newer(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: is a greater than b?"""
    return a != b and ((a - b) % SERIAL_MODULO) < 2**31


@dataclass(frozen=True, slots=True)
class AreaPolicy:
    """How the addresses of an area are chosen from its members.

    The default is strict: only healthy nodes are served. ``fail_open_min_healthy`` and
    ``fail_open_min_fraction`` protect against a whole area looking unhealthy at once (for
    example a control-plane partition): below the threshold every known address is served.
    """

    cordoned_healthy: bool = False
    fail_open_min_healthy: int = 0
    fail_open_min_fraction: float = 0.0

    def healthy(self, facts: model.NodeFacts) -> bool:
        return facts.ready and not facts.deleting and (facts.schedulable or self.cordoned_healthy)

    def fails_open(self, healthy: int, members: int) -> bool:
        if members == 0:
            return False
        return healthy < self.fail_open_min_healthy or healthy < self.fail_open_min_fraction * members


class ZoneState:
    """Holds the facts of every node and publishes a new snapshot when served content changes."""

    def __init__(self, settings: Settings, policy: AreaPolicy | None = None) -> None:
        self._settings = settings
        self._policy = policy or AreaPolicy(cordoned_healthy=settings.cordoned_healthy)
        self._origin = build.name_key(settings.zone)
        self._facts: dict[str, model.NodeFacts] = {}
        self._records: dict[str, build.AddressRecords] = {}
        """Each node's addresses, encoded when they change, not each time its area is rebuilt."""
        self._versions: dict[str, int] = {}
        self._tombstones: dict[str, int] = {}
        self._members: dict[str, set[str]] = {}
        self._areas: dict[str, snapshot.Node] = {}
        self._area_counts: dict[str, tuple[int, int]] = {}
        self._failed_open: set[str] = set()
        self._services_failed_open: set[services_mod.ServiceKey] = set()
        self._static = self._static_names()
        self._ns = build.ns_rrset((ns.name for ns in settings.nameservers), settings.ns_ttl)
        self._subscribers: list[Subscriber] = []
        self._synced = False
        self._serial = 0
        self._generation = 0
        self._ents: frozenset[snapshot.NameKey] = frozenset()
        self._names_dirty = True
        # issue 8: static records (always served) and Services (when the source is on).
        self._static_ips: dict[str, tuple[model.IPAddress, ...]] = dict(settings.static_records)
        self._index = services_mod.ServiceIndex() if settings.services else None
        self._services: dict[services_mod.ServiceKey, snapshot.Node] = {}
        self._prefixed: dict[snapshot.NameKey, snapshot.Node] = {}
        self._refresh(set(self._static_ips), None)
        self.snapshot = self._build()

    # --- reading ------------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        return self._synced

    @property
    def failed_open(self) -> frozenset[str]:
        return frozenset(self._failed_open)

    @property
    def services_failed_open(self) -> frozenset[services_mod.ServiceKey]:
        """(namespace, service) of Services served from unhealthy nodes by the fail-open rule."""
        return frozenset(self._services_failed_open)

    @property
    def area_counts(self) -> Mapping[str, tuple[int, int]]:
        """(healthy, member) node counts per area, current even when no snapshot was published.

        ``snapshot.areas`` is only as fresh as the last content change: an unhealthy node
        joining or leaving an area moves no served bytes, so it publishes nothing.
        """
        return dict(self._area_counts)

    def node_states(self) -> Mapping[str, int]:
        """Count of nodes by state, for metrics."""
        counts = {"healthy": 0, "not_ready": 0, "cordoned": 0, "deleting": 0}
        for facts in self._facts.values():
            if facts.deleting:
                counts["deleting"] += 1
            elif not facts.ready:
                counts["not_ready"] += 1
            elif not facts.schedulable and not self._policy.cordoned_healthy:
                counts["cordoned"] += 1
            else:
                counts["healthy"] += 1
        return counts

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(snapshot)`` after each publication (and once now)."""
        self._subscribers.append(callback)
        callback(self.snapshot)

    # --- writing ------------------------------------------------------------------------------
    def apply(self, name: str, facts: model.NodeFacts | None, version: str | None = None) -> bool:
        """Apply one watch event; ``facts=None`` means the node is gone. True if content moved."""
        ver = services_mod.version(version)
        known = self._versions.get(name)
        if ver is not None and known is not None and ver < known:
            return False  # older than what we hold: a late re-list line
        before = {name: self._facts.get(name)} if self._index is not None else {}
        if facts is None:
            if ver is not None:
                self._tombstones[name] = ver
            touched = self._remove(name)
        else:
            self._tombstones.pop(name, None)
            touched = self._put(facts, ver)
        return self._refresh(touched, ver, services=self._hosted([name], before))

    def replace_all(
        self, nodes: Iterable[tuple[model.NodeFacts, str | None]], list_version: str | None
    ) -> bool:
        """Reconcile against a complete list: the first one makes the zone authoritative.

        Nodes missing from the list are removed only if we learnt of them before the list was
        taken, and listed nodes older than what the watch already delivered are ignored, so a
        slow list cannot undo newer events.
        """
        list_ver = services_mod.version(list_version)
        before = dict(self._facts) if self._index is not None else {}
        seen: set[str] = set()
        touched: set[str] = set()
        for facts, version in nodes:
            seen.add(facts.name)
            ver = services_mod.version(version)
            known = self._versions.get(facts.name)
            tomb = self._tombstones.get(facts.name)
            if ver is not None and known is not None and ver < known:
                continue
            if ver is not None and tomb is not None and ver <= tomb:
                continue
            touched |= self._put(facts, ver)
        for name in list(self._facts):
            if name in seen:
                continue
            known = self._versions.get(name)
            if list_ver is not None and known is not None and known > list_ver:
                continue  # created after the list was taken
            touched |= self._remove(name)
        if list_ver is not None:
            self._tombstones = {n: v for n, v in self._tombstones.items() if v > list_ver}
        first = not self._synced
        self._synced = True
        hosted = self._hosted(set(before) | set(self._facts), before)
        changed = self._refresh(touched, list_ver, force=first, services=hosted)
        return changed or first

    # --- Services (issue 8) -------------------------------------------------------------------
    def apply_service(
        self,
        key: services_mod.ServiceKey,
        facts: model.ServiceFacts | None,
        version: str | None = None,
    ) -> bool:
        """One Service event; ``facts=None`` means it is gone. True if content moved."""
        if self._index is None:
            return False
        touched = self._index.apply_service(key, facts, version)
        return self._refresh(set(), services_mod.version(version), services=touched)

    def apply_slice(
        self,
        key: tuple[str, str],
        facts: model.SliceFacts | None,
        version: str | None = None,
    ) -> bool:
        """One EndpointSlice event, keyed (namespace, slice name). True if content moved."""
        if self._index is None:
            return False
        touched = self._index.apply_slice(key, facts, version)
        return self._refresh(set(), services_mod.version(version), services=touched)

    def replace_services(
        self,
        services: Iterable[tuple[model.ServiceFacts, str | None]],
        services_version: str | None,
        slices: Iterable[tuple[model.SliceFacts, str | None]],
        slices_version: str | None,
        namespace: str | None = None,
    ) -> bool:
        """Reconcile Services and slices (of one namespace, or all) against complete lists."""
        if self._index is None:
            return False
        touched = self._index.replace_services(services, services_version, namespace)
        touched |= self._index.replace_slices(slices, slices_version, namespace)
        versions = [
            v
            for v in (services_mod.version(services_version), services_mod.version(slices_version))
            if v is not None
        ]
        return self._refresh(set(), max(versions) if versions else None, services=touched)

    @property
    def services_served(self) -> int:
        """Services with a name in the zone (opted in), for metrics and logs."""
        return len(self._services)

    # --- internals ----------------------------------------------------------------------------
    def _hosted(
        self, names: Iterable[str], before: Mapping[str, model.NodeFacts | None]
    ) -> set[services_mod.ServiceKey]:
        """Services with endpoints on those of ``names`` whose facts changed since ``before``."""
        if self._index is None:
            return set()
        hosted: set[services_mod.ServiceKey] = set()
        for name in names:
            if self._facts.get(name) is not before.get(name):
                hosted |= self._index.on_node(name)
        return hosted

    def _healthy_facts(self, names: Iterable[str]) -> list[model.NodeFacts]:
        healthy = []
        for name in sorted(names):
            facts = self._facts.get(name)
            if facts is not None and self._policy.healthy(facts):
                healthy.append(facts)
        return healthy

    def _service_node(self, key: services_mod.ServiceKey) -> snapshot.Node | None:
        """Healthy nodes with a ready endpoint, else with a serving-but-terminating one, else NODATA.

        The fail-open rule of areas applies to the tier served (ready endpoints if a healthy node
        hosts one, else terminating ones, else whichever exists): below the minimum, every known
        node of that tier is served, so a partition that makes every node look NotReady does not
        empty Services any more than areas.
        """
        if self._index is None or not self._index.exposed(key) or key[1] in model.FAMILY_PREFIXES:
            self._services_failed_open.discard(key)
            return None
        ready, terminating = self._index.nodes(key)
        chosen = self._healthy_facts(ready)
        tier = ready
        if not chosen and terminating:
            chosen, tier = self._healthy_facts(terminating), terminating
            if not chosen and ready:
                tier = ready
        known = [f for f in (self._facts.get(n) for n in sorted(tier)) if f is not None]
        healthy = len(chosen)
        if self._policy.fails_open(healthy, len(known)):
            chosen = known
            if key not in self._services_failed_open:
                log.warning(
                    "service %s/%s has %d of %d endpoint nodes healthy, below the fail-open "
                    "threshold: serving all %d",
                    key[0],
                    key[1],
                    healthy,
                    len(known),
                    len(known),
                )
                self._services_failed_open.add(key)
        elif key in self._services_failed_open:
            log.info("service %s/%s is back above the fail-open threshold", key[0], key[1])
            self._services_failed_open.discard(key)
        ips = [ip for f in chosen for ip in f.ips]
        return snapshot.Node(build.address_rrsets(ips, self._settings.record_ttl))

    def _refresh_services(self, keys: Iterable[services_mod.ServiceKey]) -> bool:
        changed = False
        for key in keys:
            node = self._service_node(key)
            old = self._services.get(key)
            if node == old:
                continue
            changed = True
            self._set_families((key[1].encode("ascii"), key[0].encode("ascii"), *self._origin), node)
            if node is None:
                del self._services[key]
                self._names_dirty = True
            else:
                if old is None:
                    self._names_dirty = True
                self._services[key] = node
        return changed

    def _set_families(self, key: snapshot.NameKey, node: snapshot.Node | None) -> None:
        """Keep v4.<name> and v6.<name> of one area or Service in step with it (issue 8).

        Kept incrementally, so a publication adds them with one ``dict.update``.
        """
        v4, v6 = (b"v4", *key), (b"v6", *key)
        if node is None:
            self._prefixed.pop(v4, None)
            self._prefixed.pop(v6, None)
            return
        a = node.rrsets.get(snapshot.TYPE_A)
        aaaa = node.rrsets.get(snapshot.TYPE_AAAA)
        # Single-family names (the common case) reuse their own node for the matching prefix.
        self._prefixed[v4] = node if aaaa is None else _only(snapshot.TYPE_A, a)
        self._prefixed[v6] = node if a is None else _only(snapshot.TYPE_AAAA, aaaa)

    def _put(self, facts: model.NodeFacts, ver: int | None) -> set[str]:
        old = self._facts.get(facts.name)
        if ver is not None:
            self._versions[facts.name] = ver
        if old == facts:
            return set()
        self._facts[facts.name] = facts
        if old is None or old.ips != facts.ips:
            self._records[facts.name] = build.address_records(facts.ips, self._settings.record_ttl)
        old_areas = old.areas if old else frozenset()
        for area in old_areas - facts.areas:
            self._leave(area, facts.name)
        for area in facts.areas - old_areas:
            self._members.setdefault(area, set()).add(facts.name)
        return set(old_areas | facts.areas)

    def _remove(self, name: str) -> set[str]:
        old = self._facts.pop(name, None)
        self._records.pop(name, None)
        self._versions.pop(name, None)
        if old is None:
            return set()
        for area in old.areas:
            self._leave(area, name)
        return set(old.areas)

    def _leave(self, area: str, name: str) -> None:
        members = self._members.get(area)
        if members is not None:
            members.discard(name)
            if not members:
                del self._members[area]

    def _area_node(self, area: str) -> snapshot.Node | None:
        members = self._members.get(area)
        if not members:
            self._area_counts.pop(area, None)
            self._failed_open.discard(area)
            static = self._static_ips.get(area)  # static records are served with no node at all
            return snapshot.Node(build.address_rrsets(static, self._settings.record_ttl)) if static else None
        facts = [self._facts[n] for n in members]
        healthy = [f for f in facts if self._policy.healthy(f)]
        self._area_counts[area] = (len(healthy), len(facts))
        chosen = healthy
        if self._policy.fails_open(len(healthy), len(facts)):
            chosen = facts
            if area not in self._failed_open:
                log.warning(
                    "area %s has %d of %d nodes healthy, below the fail-open threshold: serving all %d",
                    area,
                    len(healthy),
                    len(facts),
                    len(facts),
                )
                self._failed_open.add(area)
        elif area in self._failed_open:
            log.info("area %s is back above the fail-open threshold", area)
            self._failed_open.discard(area)
        ttl = self._settings.record_ttl
        groups = [self._records[f.name] for f in chosen]
        static = self._static_ips.get(area)
        if static:  # never counted by the fail-open rule
            groups.append(build.address_records(static, ttl))
        return snapshot.Node(build.merged_rrsets(groups, ttl))

    def _refresh(
        self,
        areas: set[str],
        version: int | None,
        force: bool = False,
        services: Iterable[services_mod.ServiceKey] = (),
    ) -> bool:
        changed = self._refresh_services(services)
        for area in areas:
            node = self._area_node(area)
            old = self._areas.get(area)
            if node == old:
                continue
            changed = True
            self._set_families((area.encode("ascii"), *self._origin), node)
            if node is None:
                del self._areas[area]
                self._names_dirty = True
            else:
                if old is None:
                    self._names_dirty = True
                self._areas[area] = node
        if not (changed or force):
            return False
        if (self._synced and changed) or (force and self._serial == 0):
            self._bump_serial(version)
        if self._synced:
            self._publish()
        return changed

    def _bump_serial(self, version: int | None) -> None:
        candidate = version % SERIAL_MODULO if version is not None else int(time.time()) % SERIAL_MODULO
        if serial_newer(candidate, self._serial):
            self._serial = candidate
        else:
            self._serial = (self._serial + 1) % SERIAL_MODULO

    def _static_names(self) -> dict[snapshot.NameKey, snapshot.Node]:
        """Glue for in-zone name servers: fixed for the life of the process."""
        names: dict[snapshot.NameKey, snapshot.Node] = {}
        zone = self._settings.zone
        for ns in self._settings.nameservers:
            if ns.name == zone or ns.name.endswith("." + zone):
                key = build.name_key(ns.name)
                names[key] = snapshot.Node(build.address_rrsets(ns.ips, self._settings.ns_ttl))
        return names

    def _build(self) -> snapshot.Snapshot:
        s = self._settings
        soa = build.soa_rrset(
            mname=s.nameservers[0].name,
            rname=s.soa_rname,
            serial=self._serial,
            refresh=s.soa_refresh,
            retry=s.soa_retry,
            expire=s.soa_expire,
            minimum=s.negative_ttl,
            ttl=s.soa_ttl,
        )
        names: dict[snapshot.NameKey, snapshot.Node] = {}
        for area, node in self._areas.items():
            names[(area.encode("ascii"), *self._origin)] = node
        for (namespace, service), node in self._services.items():
            names[(service.encode("ascii"), namespace.encode("ascii"), *self._origin)] = node
        names.update(self._prefixed)  # v4./v6. names of areas and Services
        for key, node in self._static.items():
            if key in names:
                log.warning("area %s shadows a name server's glue; the glue is served", key[0])
            names[key] = node
        apex = dict(names.get(self._origin, snapshot.Node({})).rrsets)
        apex[snapshot.TYPE_SOA] = soa
        apex[snapshot.TYPE_NS] = self._ns
        names[self._origin] = snapshot.Node(apex)
        if self._names_dirty:
            self._ents = _empty_non_terminals(names, len(self._origin))
            self._names_dirty = False
        self._generation += 1
        return snapshot.Snapshot(
            origin=self._origin,
            serial=self._serial,
            synced=self._synced,
            names=names,
            empty_non_terminals=self._ents,
            soa=soa,
            negative_ttl=min(s.soa_ttl, s.negative_ttl),
            generation=self._generation,
            areas=dict(self._area_counts),
        )

    def _publish(self) -> None:
        self.snapshot = self._build()
        for callback in self._subscribers:
            callback(self.snapshot)


_EMPTY = snapshot.Node({})


def _only(rtype: int, rrset: snapshot.RRset | None) -> snapshot.Node:
    return snapshot.Node({rtype: rrset}) if rrset is not None else _EMPTY


def _empty_non_terminals(
    names: Mapping[snapshot.NameKey, snapshot.Node], origin_len: int
) -> frozenset[snapshot.NameKey]:
    """Names that exist only because something below them does (RFC 8020: NODATA, not NXDOMAIN)."""
    ents: set[snapshot.NameKey] = set()
    for key in names:
        for cut in range(1, len(key) - origin_len):
            parent = key[cut:]
            if parent not in names:
                ents.add(parent)
    return frozenset(ents)
