"""max_answers: UDP answers carry a rotating window of an area's records; TCP carries them all."""

from __future__ import annotations

import collections

import dns.flags
import dns.message
import pytest

from node_dns.answer import responder as responder_mod
from node_dns.zone.writer import Zone
from tests.unit.zonekit import big_area_ips, facts, query, synced_zone

FIVE = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]


def zone_of(ips: list[str], **overrides: object) -> Zone:
    return synced_zone([facts(f"n{i}", ["big"], [ip]) for i, ip in enumerate(ips)], **overrides)


def records(wire: bytes | None) -> list[str]:
    assert wire is not None
    msg = dns.message.from_wire(wire)
    return [rd.to_text() for rrset in msg.answer for rd in rrset]


def serve(zone: Zone, max_answers: int) -> responder_mod.Responder:
    responder = responder_mod.Responder(zone.snapshot, max_answers=max_answers)
    zone.subscribe(lambda old, new: responder.update(new))
    return responder


def test_udp_answers_rotate_through_disjoint_windows() -> None:
    responder = serve(zone_of(FIVE), max_answers=2)
    packet = query("big.lb.example.net")

    windows = [records(responder.respond_udp(packet)) for _ in range(10)]

    assert all(len(w) == 2 for w in windows)
    assert windows[:3] == [FIVE[0:2], FIVE[2:4], [FIVE[4], FIVE[0]]]
    assert windows[5:] == windows[:5], "the cycle has n / gcd(n, max) windows"
    counts = collections.Counter(ip for w in windows[:5] for ip in w)
    assert set(counts.values()) == {2}, "every record is served equally often"


def test_each_rotated_answer_is_the_reference_answer_for_its_turn() -> None:
    zone = zone_of(FIVE)
    responder = serve(zone, max_answers=2)

    for turn in range(12):
        packet = query("BiG.lb.Example.net", edns=0, id=1000 + turn)
        expected = responder_mod.answer(
            packet, zone.snapshot, tcp=False, edns_udp_size=1232, max_answers=2, turn=turn
        )
        assert expected is not None
        assert responder.respond_udp(packet) == expected[0]


def test_tcp_carries_the_full_set() -> None:
    responder = serve(zone_of(FIVE), max_answers=2)

    for _ in range(3):
        assert records(responder.respond_tcp(query("big.lb.example.net"))) == FIVE


def test_the_offset_is_per_name_whatever_the_spelling_or_edns_shape() -> None:
    responder = serve(zone_of(FIVE), max_answers=2)

    first = records(responder.respond_udp(query("big.lb.example.net")))
    second = records(responder.respond_udp(query("BIG.lb.example.net", edns=0, payload=4096)))
    third = records(responder.respond_udp(query("big.LB.example.net", edns=0)))

    assert [first, second, third] == [FIVE[0:2], FIVE[2:4], [FIVE[4], FIVE[0]]]


def test_names_and_types_rotate_independently() -> None:
    ips = [*FIVE, "2001:db8::1", "2001:db8::2", "2001:db8::3"]
    responder = serve(zone_of(ips), max_answers=2)

    assert records(responder.respond_udp(query("big.lb.example.net"))) == FIVE[0:2]
    assert records(responder.respond_udp(query("big.lb.example.net", "AAAA"))) == [
        "2001:db8::1",
        "2001:db8::2",
    ]
    assert records(responder.respond_udp(query("v4.big.lb.example.net"))) == FIVE[0:2]
    assert records(responder.respond_udp(query("big.lb.example.net"))) == FIVE[2:4]


def test_the_offset_survives_a_new_snapshot() -> None:
    zone = zone_of(FIVE)
    responder = serve(zone, max_answers=2)
    responder.respond_udp(query("big.lb.example.net"))

    zone.apply("other", facts("other", ["elsewhere"], ["198.51.100.1"]), "500")

    assert records(responder.respond_udp(query("big.lb.example.net"))) == FIVE[2:4]


def test_small_answers_and_other_types_are_not_limited() -> None:
    responder = serve(zone_of(FIVE[:2]), max_answers=2)

    for _ in range(3):
        assert records(responder.respond_udp(query("big.lb.example.net"))) == FIVE[:2]
    ns = records(responder.respond_udp(query("lb.example.net", "NS")))
    assert len(ns) == 3


def test_zero_means_off() -> None:
    responder = serve(zone_of(FIVE), max_answers=0)

    for _ in range(3):
        assert records(responder.respond_udp(query("big.lb.example.net"))) == FIVE


def test_a_limit_keeps_a_large_area_under_the_plain_udp_size() -> None:
    ips = big_area_ips(100)
    plain = serve(zone_of(ips), max_answers=0).respond_udp(query("big.lb.example.net"))
    limited = serve(zone_of(ips), max_answers=16).respond_udp(query("big.lb.example.net"))

    assert plain is not None and dns.message.from_wire(plain).flags & dns.flags.TC
    assert limited is not None and len(limited) <= 512
    assert not dns.message.from_wire(limited).flags & dns.flags.TC
    assert len(records(limited)) == 16


@pytest.mark.parametrize("max_answers", [1, 3, 4, 7])
def test_any_limit_covers_every_record_over_one_cycle(max_answers: int) -> None:
    ips = big_area_ips(12)
    responder = serve(zone_of(ips), max_answers=max_answers)
    seen = collections.Counter()
    for _ in range(12):
        seen.update(records(responder.respond_udp(query("big.lb.example.net"))))

    assert set(seen) == set(ips)
    assert len(set(seen.values())) == 1
