"""Builders for unit tests of the zone and answer layers: settings, node facts, zones, queries.

Everything here is pure (no sockets, no Kubernetes), so the protocol tables run in milliseconds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype

from node_dns import model
from node_dns.answer import responder
from node_dns.settings import Settings
from node_dns.zone import snapshot
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone

ZONE = "lb.example.net"
NAMESERVERS = "ns1.lb.example.net=192.0.2.53,2001:db8::53; ns.sub.lb.example.net=192.0.2.54; ns2.example.org"
OUR_EDNS_SIZE = 1232


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "zone": ZONE,
        "nameservers": NAMESERVERS,
        "soa_email": "hostmaster@example.net",
        "record_ttl": 30,
        "ns_ttl": 3600,
        "soa_ttl": 300,
        "negative_ttl": 60,
        "edns_udp_size": OUR_EDNS_SIZE,
    }
    values.update(overrides)
    return Settings(**values)


def facts(
    name: str,
    areas: Iterable[str] = (),
    ips: Iterable[str] = (),
    *,
    ready: bool = True,
    schedulable: bool = True,
    deleting: bool = False,
) -> model.NodeFacts:
    return model.NodeFacts(
        name=name,
        areas=frozenset(areas),
        ips=tuple(model.parse_ip(ip) for ip in ips),
        ready=ready,
        schedulable=schedulable,
        deleting=deleting,
    )


def new_zone(values: Settings, policy: Policy | None = None) -> Zone:
    """A zone configured from ``values``; strict (no fail-open) unless ``policy`` says otherwise."""
    return Zone(zone_config(values), policy or Policy(cordoned_healthy=values.cordoned_healthy))


def synced_zone(nodes: Iterable[model.NodeFacts], *, list_version: str = "100", **overrides: Any) -> Zone:
    """A zone that has received one complete list of ``nodes`` (all at ``list_version``)."""
    state = new_zone(settings(**overrides))
    state.replace_all([(f, list_version) for f in nodes], list_version)
    return state


def big_area_ips(count: int, prefix: str = "10.0") -> list[str]:
    return [str(ipaddress.IPv4Address(f"{prefix}.0.0") + i + 1) for i in range(count)]


def query(
    qname: str,
    rdtype: str | int = "A",
    *,
    rdclass: str | int = "IN",
    edns: int | bool = False,
    payload: int = OUR_EDNS_SIZE,
    rd: bool = True,
    **kwargs: Any,
) -> bytes:
    """Wire bytes of a query made by dnspython; the name's case is kept as given (0x20)."""
    if edns is not False:
        kwargs.update(use_edns=edns, payload=payload)
    msg = dns.message.make_query(
        qname, dns.rdatatype.RdataType.make(rdtype), dns.rdataclass.RdataClass.make(rdclass), **kwargs
    )
    if not rd:
        msg.flags &= ~dns.flags.RD
    return msg.to_wire()


def ask(
    data: bytes, snap: snapshot.Snapshot, *, tcp: bool = False, our_size: int = OUR_EDNS_SIZE
) -> tuple[bytes, dns.message.Message]:
    """Run the reference path; return the raw reply and dnspython's reading of it."""
    reply = responder.answer(data, snap, tcp=tcp, edns_udp_size=our_size)
    assert reply is not None, "the query was dropped"
    wire = reply[0]
    return wire, dns.message.from_wire(wire, ignore_trailing=False)


def metrics_inputs(zone: Zone, **overrides: Any) -> Any:
    """``metrics.Inputs`` of an idle server for this zone (no queries, no watch yet, no TCP
    connection); ``overrides`` set any input a test or bench wants otherwise."""
    from node_dns.answer import stats
    from node_dns.sinks import metrics
    from node_dns.sources import nodes

    given: dict[str, Any] = {
        "queries": stats.QueryStats(metrics.DURATION_BUCKETS),
        "source": nodes.SourceStats(),
        "zone": zone,
        "serial": lambda: zone.snapshot.serial,
        "areas": lambda: zone.area_counts,
        "tcp_connections": lambda: 0,
        "tcp_refused": lambda: 0,
        "internal_errors": lambda: 0,
    }
    given.update(overrides)
    return metrics.Inputs(**given)


def metrics_text(zone: Zone) -> str:
    """/metrics as the running server renders it for this zone (no queries, no watch yet)."""
    from prometheus_client import generate_latest

    from node_dns.sinks import metrics

    registry = metrics.registry(metrics_inputs(zone))
    return generate_latest(registry).decode()
