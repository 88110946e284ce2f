"""Where hooks read the served state: the zone, seen from outside.

Areas and Services come from the published snapshot (what DNS answers, fail-open and static
records included); their fail-open flags and the nodes come from the latest build and the
facts, which are current even when a change moved no served record (a label, the cordon of a
node in no area). The app calls :meth:`Hooks.changed` from the zone's ``subscribe`` and
``watch`` callbacks; the views are taken later, by the hooks' own tasks.
"""

from __future__ import annotations

from node_dns import model
from node_dns.sinks.hooks import context, runner
from node_dns.zone import build, writer


def views(zone: writer.Zone) -> runner.Views:
    """Views of what ``zone`` serves now; None until its first complete list of nodes."""
    config = zone.config
    static = dict(config.static_records)

    def healthy(facts: model.NodeFacts) -> bool:
        return zone.policy.healthy(facts)

    def view(timestamp: float) -> context.View | None:
        if not zone.synced:
            return None
        snapshot = zone.snapshot
        health = zone.latest.health
        names, origin = snapshot.names, snapshot.origin
        areas = {}
        for area in set(health.areas) | set(static):
            scope = health.areas.get(area)
            failed_open = scope.failed_open if scope is not None else False
            areas[area] = context.served(names.get(build.area_key(area, origin)), failed_open)
        services = None
        if config.services:
            services = {
                key: context.served(names.get(build.service_key(key, origin)), scope.failed_open)
                for key, scope in health.services.items()
            }
        return context.View(
            zone=config.zone,
            serial=snapshot.serial,
            timestamp=timestamp,
            areas=areas,
            nodes=list(zone.facts.nodes.values()),
            healthy=healthy,
            static=static,
            services=services,
        )

    return view
