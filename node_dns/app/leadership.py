"""Leader election and serial agreement between replicas, an optional part (--leader-elect).

The Lease that elects a leader also carries the leader's SOA serial, so that replicas serving
the same content answer the same serial; both are wired here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from node_dns import kube, leader
from node_dns.settings import Settings
from node_dns.sources import nodes
from node_dns.zone import serial, writer

log = logging.getLogger("node_dns")


def start_leadership(settings: Settings, client: kube.Client, source: nodes.NodeSource) -> leader.Leadership:
    """Leader election; its tasks are created before kopf starts (see serving.serve())."""
    config = leader.Config(
        name=settings.leader_lease_name,
        namespace=settings.leader_lease_namespace or "default",
        identity=settings.leader_identity or "",
        lease_duration=settings.leader_lease_duration,
        renew_deadline=settings.leader_renew_deadline,
        retry_period=settings.leader_retry_period,
    )
    leadership = leader.Leadership(client, config, record_events=bool(settings.leader_record_events))
    if leadership.events is not None:
        source.problem_listeners.append(leadership.events.update)
    return leadership


def agree_serials(zone: writer.Zone, elector: leader.Elector) -> Callable[[], bool]:
    """The leader records its serial and content hash in the Lease; others adopt it for the
    same content (:class:`node_dns.zone.serial.Agreement`). Returns the readiness check: a
    replica is ready once its first authoritative serial was checked against the Lease."""
    agreement = serial.Agreement()

    def annotate() -> dict[str, str]:
        snap = zone.snapshot
        if snap.synced:
            agreement.provisional = False  # we lead: the record is ours
        return agreement.record(snap)

    def observe(annotations: Mapping[str, str]) -> None:
        snap = zone.snapshot
        number = agreement.observe(annotations.get(serial.ANNOTATION), snap)
        if number is not None:
            log.info("serial %d: the leader's for the same content (ours was %d)", number, snap.serial)
            zone.adopt_serial(number)

    elector.annotate = annotate
    elector.observe = observe
    return lambda: not agreement.provisional
