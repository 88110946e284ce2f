"""A publication keeps the cached answers it cannot have changed, and drops the others."""

from __future__ import annotations

import pytest

from node_dns.answer import responder as responder_mod
from node_dns.zone.writer import Zone
from tests.unit.udp_paths import PATHS, udp_respond
from tests.unit.zonekit import facts, query, synced_zone

ZONE = "lb.example.net"


@pytest.fixture
def zone() -> Zone:
    return synced_zone(
        [facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["work"], ["192.0.2.2"])],
    )


def cached(responder: responder_mod.Responder, packet: bytes) -> bool:
    found = responder_mod.cache_key(packet)
    assert found is not None
    return found[0] in responder._udp


def warm(zone: Zone, *packets: bytes) -> responder_mod.Responder:
    responder = responder_mod.Responder(zone.snapshot)
    zone.subscribe(responder.publish)
    for packet in packets:
        responder.respond(packet)
    return responder


@pytest.mark.parametrize("path", PATHS)
def test_an_answer_for_a_name_the_change_did_not_touch_stays_cached(zone: Zone, path: str) -> None:
    home, work = query(f"home.{ZONE}"), query(f"work.{ZONE}")
    responder = warm(zone, home, work)

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert cached(responder, work)
    assert not cached(responder, home)
    reference = responder_mod.answer(home, zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reference is not None and udp_respond(responder, path)(home) == reference[0]
    kept = responder_mod.answer(work, zone.snapshot, tcp=False, edns_udp_size=1232)
    assert kept is not None and udp_respond(responder, path)(work) == kept[0]


def test_negative_answers_and_the_apex_go_with_every_publication(zone: Zone) -> None:
    nxdomain, nodata, soa = query(f"nothere.{ZONE}"), query(f"work.{ZONE}", "AAAA"), query(ZONE, "SOA")
    responder = warm(zone, nxdomain, nodata, soa, query(f"work.{ZONE}"))

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert not any(cached(responder, p) for p in (nxdomain, nodata, soa))


@pytest.mark.parametrize("path", PATHS)
def test_a_name_that_leaves_the_zone_is_not_answered_from_the_cache(zone: Zone, path: str) -> None:
    work = query(f"work.{ZONE}")
    responder = warm(zone, work)

    zone.apply("n2", facts("n2", [], ["192.0.2.2"]), "200")

    assert not cached(responder, work)
    wire = udp_respond(responder, path)(work)
    assert wire is not None and wire[3] & 0x0F == 3  # NXDOMAIN


def test_a_publication_of_a_snapshot_not_served_drops_everything(zone: Zone) -> None:
    work = query(f"work.{ZONE}")
    responder = warm(zone, work)
    other = synced_zone([facts("n2", ["work"], ["192.0.2.2"])])

    responder.publish(other.snapshot, other.snapshot)

    assert not cached(responder, work)
