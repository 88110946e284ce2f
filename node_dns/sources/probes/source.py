"""Probes as a source: targets from the zone's node facts, verdict tables into the zone policy.

:class:`ProbeSource` keeps the prober's targets in step with the nodes (a zone watcher: each
node change updates that node's targets only) and applies verdict tables to the zone
(:meth:`ProbeSource.apply`), rebuilding only the areas whose verdicts moved. Where tables come
from is the caller's choice: :meth:`run_local` turns this process' own prober into tables (one
replica, or no leader election); :mod:`.shared` reads the table the leader published.

A table of ``None`` is the Ready-only fallback: nothing is removed by probes, and the reason
is kept for logs, /readyz, /debug/zone and the ``node_dns_probe_verdicts_available`` metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from node_dns import model
from node_dns.settings import probe_spec as spec
from node_dns.sources.probes.machine import Flip
from node_dns.sources.probes.prober import AreaStats, Key, Prober, Target
from node_dns.sources.probes.verdicts import Reachability, Table
from node_dns.zone.policy import Policy
from node_dns.zone.policy import Reachability as PolicyReachability
from node_dns.zone.store import Changes, Facts

log = logging.getLogger(__name__)


class Zone(Protocol):
    """What probes need of the zone writer (node_dns.zone.writer.Zone)."""

    @property
    def facts(self) -> Facts: ...

    @property
    def policy(self) -> Policy: ...

    def watch(self, callback: Callable[[Changes], None]) -> None: ...

    def set_reachability(
        self, reachable: PolicyReachability | None, areas: Iterable[str], version_: str | None = None
    ) -> bool: ...


class ProbeSource:
    """See the module docstring."""

    def __init__(self, zone: Zone, plan: spec.Plan, prober: Prober, *, identity: str = "") -> None:
        self.zone = zone
        self.plan = plan
        self.prober = prober
        self.identity = identity
        self.table: Table | None = None
        self.version: str | None = None
        self.fallback: str | None = "no verdicts yet"
        """Why probes remove nothing right now (None while verdicts apply)."""
        self._by_node: dict[str, dict[Key, Target]] = {}
        self.probing = False
        """True while this replica runs the prober (set by whoever runs it)."""
        self.flips = {"reachable": 0, "unreachable": 0}
        self.event_results: dict[str, int] = {}
        """Flip Events by result (created, exists, error, dropped), when the leader records them."""
        self.flip_listeners: list[Callable[[str, bool, str], None]] = []
        """Called with (node, reachable, message) for each flip worth an Event: every change of a
        verdict, and a first verdict that finds an address unreachable."""
        prober.listeners.append(self._count_flips)
        zone.watch(self._facts_changed)
        self._facts_changed(Changes(nodes=set(zone.facts.nodes)))

    # --- targets from facts ---------------------------------------------------------------------
    def _facts_changed(self, changes: Changes) -> None:
        if not changes.nodes:
            return
        nodes = self.zone.facts.nodes
        remove: list[Key] = []
        add: list[Target] = []
        for name in changes.nodes:
            old = self._by_node.pop(name, {})
            facts = nodes.get(name)
            new = self._targets(facts) if facts is not None else {}
            if new:
                self._by_node[name] = new
            remove += [k for k in old if k not in new]
            add += [t for k, t in new.items() if old.get(k) != t]
        if remove or add:
            self.prober.update(remove, add)

    def _targets(self, facts: model.NodeFacts) -> dict[Key, Target]:
        if facts.deleting:
            return {}
        by_probe: dict[str, tuple[spec.Probe, set[str]]] = {}
        for area in facts.areas:
            probe = self.plan.for_area(area)
            if probe is not None:
                by_probe.setdefault(probe.key, (probe, set()))[1].add(area)
        counts = self.zone.policy.healthy(facts)
        found: dict[Key, Target] = {}
        for probe, areas in by_probe.values():
            for ip in facts.ips:
                target = Target(facts.name, ip, probe, frozenset(areas), counts)
                found[target.key] = target
        return found

    # --- tables into the zone -------------------------------------------------------------------
    def local_table(self) -> Table:
        """This process' own verdicts as a table."""
        return Table(self.prober.verdicts(), self.prober.complete, self.prober.fault, self.identity)

    def apply(self, table: Table | None, version: str | None = None, fallback: str | None = None) -> bool:
        """Answer from ``table`` (None: Ready-only, because of ``fallback``). True if content moved."""
        if table is None and self.fallback != fallback and fallback is not None:
            log.warning(
                "probe verdicts unavailable, serving Ready-only (probes remove nothing): %s", fallback
            )
        elif table is not None and self.fallback is not None and self.table is None:
            log.info("probe verdicts available again%s", f" (version {version})" if version else "")
        areas = self._moved_areas(self.table, table)
        self.table, self.version = table, version
        self.fallback = fallback if table is None else None
        return self.zone.set_reachability(Reachability(self.plan, table), areas, version)

    def _moved_areas(self, old: Table | None, new: Table | None) -> set[str]:
        """Areas whose answers these tables may differ in: the probed areas of nodes whose verdicts
        differ, or every probed area when completeness or availability changed."""
        probed = self._probed_areas()
        if old is None or new is None or old.complete != new.complete:
            return probed
        nodes: set[str] = set()
        for key in set(old.verdicts) | set(new.verdicts):
            if old.verdicts.get(key) != new.verdicts.get(key):
                nodes.add(key[0])
        areas: set[str] = set()
        facts = self.zone.facts.nodes
        for name in nodes:
            node = facts.get(name)
            if node is not None:
                areas |= node.areas & probed
        return areas

    def _probed_areas(self) -> set[str]:
        return {area for area in self.zone.facts.areas() if self.plan.for_area(area) is not None}

    async def run_local(self) -> None:
        """Apply this process' verdicts whenever they change (no leader election)."""
        while True:
            await self.prober.changed.wait()
            self.prober.changed.clear()
            self.apply(self.local_table())

    # --- views for metrics and /debug -----------------------------------------------------------
    def _count_flips(self, flips: list[Flip[Key]]) -> None:
        for flip in flips:
            if flip.previous is not None:
                self.flips["reachable" if flip.verdict else "unreachable"] += 1
            if flip.previous is None and flip.verdict:
                continue
            node, ip, _ = flip.key
            target = self.prober.targets.get(flip.key)
            probe = target.probe.short if target is not None else flip.key[2]
            areas = ", ".join(sorted(target.areas)) if target is not None else ""
            message = (
                f"probe {probe} of {ip}: {'reachable' if flip.verdict else 'unreachable'} ({flip.detail}); "
                f"areas: {areas}"
            )
            for listener in self.flip_listeners:
                listener(node, flip.verdict, message)

    def area_stats(self) -> Mapping[str, AreaStats]:
        return self.prober.stats.areas

    def state(self) -> Mapping[str, float]:
        fault = self.table.fault if self.table is not None else self.prober.fault and self.probing
        return {
            "targets": len(self.prober.targets),
            "probing": 1.0 if self.probing else 0.0,
            "self_fault": 1.0 if fault else 0.0,
            "self_faults": self.prober.machine.faults,
            "verdicts_available": 1.0 if self.table is not None else 0.0,
            "skipped": self.prober.stats.skipped,
            "flips_up": self.flips["reachable"],
            "flips_down": self.flips["unreachable"],
            **{f"events_{result}": float(count) for result, count in self.event_results.items()},
        }

    def ready_detail(self) -> Mapping[str, object]:
        """For /readyz: whether verdicts apply, and why not."""
        return {
            "probe_verdicts": "available" if self.table is not None else f"unavailable: {self.fallback}",
            "probe_self_fault": bool(self.table is not None and self.table.fault),
        }

    def excluded(self) -> Mapping[str, int]:
        """Per probed area: healthy nodes left with no reachable address (probes took them out)."""
        counts: dict[str, int] = {}
        table = self.table
        if table is None:
            return {area: 0 for area in self._probed_areas()}
        reach = Reachability(self.plan, table)
        policy = self.zone.policy
        facts = self.zone.facts
        for area in self._probed_areas():
            excluded = 0
            for node in facts.members(area):
                if (
                    node.ips
                    and policy.healthy(node, area)
                    and not any(reach.usable(node.name, ip, area) for ip in node.ips)
                ):
                    excluded += 1
            counts[area] = excluded
        return counts

    def unreachable(self) -> Iterable[Key]:
        return self.table.unreachable() if self.table is not None else ()
