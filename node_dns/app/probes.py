"""Reachability probes, an optional part: built when a probe or a probe file is set.

Who probes depends on leader election (this replica, or the leader publishing verdicts every
replica reads), which is why starting them needs the assembled server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from node_dns.leader import flips
from node_dns.settings import Settings, probe_spec
from node_dns.sources.probes import prober as prober_mod
from node_dns.sources.probes import shared as probe_shared
from node_dns.sources.probes import source as probe_source
from node_dns.zone import writer

if TYPE_CHECKING:
    from node_dns.app.server import Server

log = logging.getLogger("node_dns")


def load_probes(settings: Settings, zone: writer.Zone) -> probe_source.ProbeSource | None:
    """Reachability probes when a probe or a probe file is set."""
    if not settings.probes_enabled:
        return None
    plan = probe_spec.plan(settings)  # checked at startup already: cannot fail here
    prober = prober_mod.Prober(
        concurrency=settings.probe_concurrency, self_fault_share=settings.probe_self_fault_share
    )
    return probe_source.ProbeSource(zone, plan, prober, identity=settings.leader_identity or "")


def start_probes(server: Server, probes: probe_source.ProbeSource) -> None:
    """Without leader election this replica probes and answers from its own verdicts; with it,
    the leader probes and publishes, and every replica answers from what was published."""
    settings = server.settings
    if server.leadership is None:
        probes.probing = True
        server.tasks["prober"] = asyncio.create_task(probes.prober.run(), name="node-dns:prober")
        server.tasks["probe-verdicts"] = asyncio.create_task(
            probes.run_local(), name="node-dns:probe-verdicts"
        )
    else:
        namespace = settings.leader_lease_namespace or "default"
        name = settings.probe_verdicts_name
        publisher = probe_shared.Publisher(server.client, namespace, name, probes)
        server.leadership.register("probes", publisher.run)
        reader = probe_shared.Reader(
            server.client, namespace, name, probes, max_age=settings.probe_verdicts_max_age
        )
        server.tasks["probe-verdicts"] = asyncio.create_task(reader.run(), name="node-dns:probe-verdicts")
        if settings.leader_record_events:
            events = flips.FlipEvents(server.client, settings.leader_identity or "")
            probes.flip_listeners.append(events.add)
            probes.event_results = events.stats.results
            server.leadership.register("probe-events", events.run)
    log.info(
        "reachability probes (%s): %s",
        "verdicts local" if server.leadership is None else "leader probes, verdicts shared",
        "; ".join(f"{area}: {p.short if p else 'none'}" for area, p in sorted(probes.plan.areas.items()))
        or f"every area: {probes.plan.default.short if probes.plan.default else 'none'}",
    )
