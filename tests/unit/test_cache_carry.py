"""A publication keeps the cached answers it cannot have changed, and drops the others."""

from __future__ import annotations

import dataclasses

import pytest

from node_dns.answer import responder as responder_mod
from node_dns.protocol import TC_BYTE2
from node_dns.zone.writer import Zone
from tests.unit.udp_paths import PATHS, udp_respond
from tests.unit.zonekit import big_area_ips, facts, query, synced_zone

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


@pytest.mark.parametrize("path", PATHS)
def test_negative_answers_and_the_apex_stay_cached_with_the_new_serial(zone: Zone, path: str) -> None:
    nxdomain, nodata, soa = query(f"nothere.{ZONE}"), query(f"work.{ZONE}", "AAAA"), query(ZONE, "SOA")
    responder = warm(zone, nxdomain, nodata, soa)
    serial = zone.snapshot.serial

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert zone.snapshot.serial != serial
    for packet in (nxdomain, nodata, soa):
        assert cached(responder, packet)
        reference = responder_mod.answer(packet, zone.snapshot, tcp=False, edns_udp_size=1232)
        assert reference is not None and udp_respond(responder, path)(packet) == reference[0]


@pytest.mark.parametrize("path", PATHS)
def test_the_nxdomain_of_a_name_the_change_adds_goes(zone: Zone, path: str) -> None:
    new = query(f"new.{ZONE}")
    responder = warm(zone, new)

    zone.apply("n1", facts("n1", ["home", "new"], ["192.0.2.1"]), "200")

    assert not cached(responder, new)
    wire = udp_respond(responder, path)(new)
    assert wire is not None and wire[3] & 0x0F == 0 and wire[6:8] == b"\x00\x01"


def test_the_nodata_of_a_name_the_change_gives_that_type_goes(zone: Zone) -> None:
    nodata = query(f"work.{ZONE}", "AAAA")
    responder = warm(zone, nodata)

    zone.apply("n2", facts("n2", ["work"], ["192.0.2.2", "2001:db8::2"]), "200")

    assert not cached(responder, nodata)
    wire = responder.respond(nodata)
    assert wire is not None and wire[6:8] == b"\x00\x01"


def test_answers_carrying_the_soa_go_when_its_other_fields_change(zone: Zone) -> None:
    nxdomain, soa = query(f"nothere.{ZONE}"), query(ZONE, "SOA")
    responder = warm(zone, nxdomain, soa)
    old = zone.snapshot
    changed = synced_zone(
        [facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["work"], ["192.0.2.2"])], soa_refresh=1234
    ).snapshot
    new = dataclasses.replace(old, soa=changed.soa, serial=old.serial + 1, generation=old.generation + 1)

    responder.publish(old, new)

    assert not cached(responder, nxdomain) and not cached(responder, soa)


def test_past_the_limit_answers_carrying_the_soa_go_instead_of_being_rewritten(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(responder_mod, "RESTAMP_LIMIT", 1)
    negatives = [query(f"nothere-{i}.{ZONE}") for i in range(2)]
    positives = [query(f"home.{ZONE}"), query(f"work.{ZONE}")]
    responder = warm(zone, *negatives, *positives)

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert not any(cached(responder, p) for p in negatives)
    assert cached(responder, positives[1])


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


def test_a_truncated_answer_for_a_name_the_change_did_not_touch_stays_cached() -> None:
    zone = synced_zone(
        [facts(f"b{i}", ["big"], [ip]) for i, ip in enumerate(big_area_ips(40))]
        + [facts("n1", ["home"], ["192.0.2.1"])]
    )
    big = query(f"big.{ZONE}")  # no EDNS: 40 addresses do not fit in 512 bytes
    responder = warm(zone, big)
    assert responder.respond(big)[2] & TC_BYTE2  # type: ignore[index]

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert cached(responder, big)


def test_a_truncated_answer_for_a_name_the_change_touched_goes() -> None:
    zone = synced_zone([facts(f"b{i}", ["big"], [ip]) for i, ip in enumerate(big_area_ips(40))])
    big = query(f"big.{ZONE}")
    responder = warm(zone, big)

    zone.apply("b0", facts("b0", ["big"], ["10.9.9.9"]), "200")

    assert not cached(responder, big)


def rotating(zone: Zone, packet: bytes) -> responder_mod.Responder:
    responder = responder_mod.Responder(zone.snapshot, max_answers=2)
    zone.subscribe(responder.publish)
    responder.respond(packet)
    return responder


def test_the_rotation_of_a_limited_answer_outlives_a_change_elsewhere() -> None:
    zone = synced_zone(
        [facts(f"b{i}", ["big"], [ip]) for i, ip in enumerate(big_area_ips(6))]
        + [facts("n1", ["home"], ["192.0.2.1"])]
    )
    big = query(f"big.{ZONE}")
    responder = rotating(zone, big)
    found = responder_mod.cache_key(big)
    assert found is not None and found[0] in responder._rotating

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert found[0] in responder._rotating


def test_the_rotation_of_a_limited_answer_goes_when_its_name_changes() -> None:
    zone = synced_zone([facts(f"b{i}", ["big"], [ip]) for i, ip in enumerate(big_area_ips(6))])
    big = query(f"big.{ZONE}")
    responder = rotating(zone, big)
    found = responder_mod.cache_key(big)
    assert found is not None

    zone.apply("b0", facts("b0", ["big"], ["10.9.9.9"]), "200")

    assert found[0] not in responder._rotating
    reference = responder_mod.answer(big, zone.snapshot, tcp=False, edns_udp_size=1232, max_answers=2, turn=1)
    assert reference is not None and responder.respond(big) == reference[0]


def test_answers_carrying_the_soa_go_when_the_negative_ttl_changes(zone: Zone) -> None:
    nxdomain = query(f"nothere.{ZONE}")
    responder = warm(zone, nxdomain)
    old = zone.snapshot
    new = dataclasses.replace(
        old, negative_ttl=old.negative_ttl + 1, serial=old.serial + 1, generation=old.generation + 1
    )

    responder.publish(old, new)

    assert not cached(responder, nxdomain)


@pytest.mark.parametrize("path", PATHS)
def test_the_family_names_of_an_area_go_when_a_node_joins_it(zone: Zone, path: str) -> None:
    v6, v4 = query(f"v6.home.{ZONE}", "AAAA"), query(f"v4.home.{ZONE}")
    responder = warm(zone, v6, v4)

    zone.apply("n3", facts("n3", ["home"], ["2001:db8::3"]), "200")

    assert not cached(responder, v6)
    reference = responder_mod.answer(v6, zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reference is not None and udp_respond(responder, path)(v6) == reference[0]
    assert reference[0][6:8] == b"\x00\x01"
