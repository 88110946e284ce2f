"""Where a reply's SOA serial sits, whether only it moved, and which negative answers a change makes stale."""

from __future__ import annotations

import dataclasses

import dnslib

from node_dns.answer import responder, restamp
from node_dns.zone import snapshot
from tests.unit.zonekit import facts, query, synced_zone

ZONE = "lb.example.net"


def wire_of(name: str) -> bytes:
    return snapshot.wire_name(tuple(label.encode() for label in name.split(".")))


def reply_to(packet: bytes) -> tuple[bytes, int]:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    answered = responder.answer(packet, zone.snapshot, tcp=False, edns_udp_size=1232)
    assert answered is not None
    found = responder.cache_key(packet)
    assert found is not None
    return answered[0], found[1]


def serial_at(wire: bytes, offset: int) -> int:
    return int.from_bytes(wire[offset : offset + 4], "big")


def test_the_serial_of_a_negative_answer_is_found_in_its_authority_section() -> None:
    wire, qend = reply_to(query(f"nothere.{ZONE}"))
    offset = restamp.serial_offset(wire, qend)

    assert offset is not None
    assert serial_at(wire, offset) == dnslib.DNSRecord.parse(wire).auth[0].rdata.times[0]


def test_the_serial_of_the_apex_soa_is_found_in_its_answer_section() -> None:
    wire, qend = reply_to(query(ZONE, "SOA"))
    offset = restamp.serial_offset(wire, qend)

    assert offset is not None
    assert serial_at(wire, offset) == dnslib.DNSRecord.parse(wire).rr[0].rdata.times[0]


def test_a_positive_answer_has_no_serial() -> None:
    wire, qend = reply_to(query(f"home.{ZONE}"))

    assert restamp.serial_offset(wire, qend) is None


def test_a_serial_behind_compressed_names_is_found() -> None:
    record = dnslib.DNSRecord(dnslib.DNSHeader(qr=1, rcode=3), q=dnslib.DNSQuestion(f"x.{ZONE}"))
    soa = dnslib.SOA(f"ns1.{ZONE}", f"hm.{ZONE}", (77, 1, 2, 3, 4))
    record.add_auth(dnslib.RR(ZONE, dnslib.QTYPE.SOA, ttl=60, rdata=soa))
    wire = record.pack()
    qend = 12 + len(wire_of(f"x.{ZONE}")) + 4

    assert wire.count(b"\xc0") >= 2  # the owner and both names in the rdata point back
    offset = restamp.serial_offset(wire, qend)
    assert offset is not None and serial_at(wire, offset) == 77


def test_a_cut_reply_has_no_serial() -> None:
    wire, qend = reply_to(query(f"nothere.{ZONE}"))

    assert restamp.serial_offset(wire[:-10], qend) is None


def test_two_soas_that_differ_in_their_serial_only_are_told_apart_from_other_changes() -> None:
    old = synced_zone([]).snapshot.soa
    tail = old.tails[0]
    serial = tail[:-20] + (12345).to_bytes(4, "big") + tail[-16:]
    refresh = tail[:-16] + (999).to_bytes(4, "big") + tail[-12:]

    assert restamp.only_serial_moved(old, dataclasses.replace(old, tails=(serial,)))
    assert not restamp.only_serial_moved(old, dataclasses.replace(old, tails=(refresh,)))
    assert not restamp.only_serial_moved(old, dataclasses.replace(old, tails=(serial,), ttl=old.ttl + 1))


def test_a_changed_name_makes_itself_and_the_names_below_it_stale() -> None:
    stale = restamp.Stale({wire_of(f"home.{ZONE}")}, wire_of(ZONE))

    assert wire_of(f"home.{ZONE}") in stale
    assert wire_of(f"x.home.{ZONE}") in stale
    assert wire_of(f"work.{ZONE}") not in stale


def test_a_changed_name_makes_the_names_above_it_stale_but_not_the_apex() -> None:
    stale = restamp.Stale({wire_of(f"a.b.{ZONE}")}, wire_of(ZONE))

    assert wire_of(f"b.{ZONE}") in stale  # NXDOMAIN may have become an empty non-terminal's NODATA
    assert wire_of(ZONE) not in stale


def test_a_changed_wildcard_makes_every_negative_answer_stale() -> None:
    stale = restamp.Stale({wire_of(f"*.{ZONE}")}, wire_of(ZONE))

    assert wire_of(f"anything.{ZONE}") in stale and wire_of(ZONE) in stale


def test_suffixes_run_from_the_name_to_the_root() -> None:
    assert list(restamp.suffixes(wire_of("a.b"))) == [wire_of("a.b"), wire_of("b"), b"\x00"]


def test_a_name_key_is_written_in_wire_form() -> None:
    assert snapshot.wire_name((b"home", b"lb")) == b"\x04home\x02lb\x00"
