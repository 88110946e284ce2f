"""The DNS rules of README.md "DNS behaviour" (RFC 1034/1035/2308/6891 as an authoritative server
must apply them), one test per rule, against the pure answer path.

Queries are built with dnspython (or by hand when they must be malformed), answered by
``node_dns.answer.responder.answer()`` / ``Responder`` from a snapshot that ``Zone``
built, and read back with dnspython.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from node_dns.answer import responder
from node_dns.zone import snapshot
from tests.unit.zonekit import (
    OUR_EDNS_SIZE,
    ZONE,
    ask,
    big_area_ips,
    facts,
    new_zone,
    query,
    synced_zone,
)
from tests.unit.zonekit import settings as make_settings

A, AAAA, NS, SOA, ANY, TXT, MX, HINFO = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.NS,
    dns.rdatatype.SOA,
    dns.rdatatype.ANY,
    dns.rdatatype.TXT,
    dns.rdatatype.MX,
    dns.rdatatype.HINFO,
)
LIST_VERSION = "4242"
MEDIUM = 40  # A answer of ~680 bytes: over 512, under 1232
BIG = 200  # A answer of ~3.2 kB: over every UDP size we offer


def _nodes() -> list:
    nodes = [
        facts("node-a", ["home"], ["192.0.2.1", "2001:db8::1"]),
        facts("node-b", ["home"], ["192.0.2.2"]),
        facts("node-c", ["v4only"], ["198.51.100.1"]),
        facts("node-d", ["down"], ["192.0.2.99"], ready=False),
    ]
    nodes += [facts(f"medium-{i}", ["medium"], [ip]) for i, ip in enumerate(big_area_ips(MEDIUM, "10.1"))]
    nodes += [facts(f"big-{i}", ["big"], [ip]) for i, ip in enumerate(big_area_ips(BIG, "10.2"))]
    return nodes


@pytest.fixture(scope="module")
def snap() -> snapshot.Snapshot:
    return synced_zone(_nodes(), list_version=LIST_VERSION).snapshot


def _texts(msg: dns.message.Message, section: str = "answer") -> set[str]:
    return {rd.to_text() for rrset in getattr(msg, section) for rd in rrset}


def _header(
    qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def _question(name: str = f"home.{ZONE}", qtype: int = 1, qclass: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return labels + b"\x00" + struct.pack("!HH", qtype, qclass)


def _opt(version: int = 0, size: int = 1232, options: bytes = b"") -> bytes:
    ttl = version << 16
    return b"\x00" + struct.pack("!HHIH", 41, size, ttl, len(options)) + options


# --- header ----------------------------------------------------------------------------------


def test_reply_has_qr_set_and_ra_clear(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}"), snap)

    assert reply.flags & dns.flags.QR
    assert not reply.flags & dns.flags.RA


def test_aa_set_for_names_in_zone(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}"), snap)

    assert reply.flags & dns.flags.AA


def test_aa_set_on_negative_answers_in_zone(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"nosuch.{ZONE}"), snap)

    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA


@pytest.mark.parametrize("rd", [True, False])
def test_rd_copied_from_query(snap: snapshot.Snapshot, rd: bool) -> None:
    _, reply = ask(query(f"home.{ZONE}", rd=rd), snap)

    assert bool(reply.flags & dns.flags.RD) is rd


def test_ad_and_cd_clear_even_when_query_sets_them(snap: snapshot.Snapshot) -> None:
    data = query(f"home.{ZONE}", flags=dns.flags.RD | dns.flags.AD | dns.flags.CD)

    _, reply = ask(data, snap)

    assert not reply.flags & (dns.flags.AD | dns.flags.CD)


def test_reply_id_matches_query_id(snap: snapshot.Snapshot) -> None:
    data = query(f"home.{ZONE}", id=0xBEEF)

    _, reply = ask(data, snap)

    assert reply.id == 0xBEEF


# --- 0x20 --------------------------------------------------------------------------------------


def test_question_echoed_byte_for_byte_with_mixed_case(snap: snapshot.Snapshot) -> None:
    data = query("HoMe.Lb.ExAmPlE.nEt", "A")
    question_end = len(data)

    wire, _ = ask(data, snap)

    assert wire[12:question_end] == data[12:question_end]


def test_answer_owner_uses_client_spelling(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query("hOmE.LB.example.NET", "A"), snap)

    assert [rrset.name.to_text() for rrset in reply.answer] == ["hOmE.LB.example.NET."]


def test_negative_soa_owner_is_apex_in_client_spelling(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query("NoSuch.Lb.Example.Net", "A"), snap)

    assert [rrset.name.to_text() for rrset in reply.authority] == ["Lb.Example.Net."]


def test_cached_reply_echoes_each_clients_spelling_and_id(snap: snapshot.Snapshot) -> None:
    server = responder.Responder(snap)
    server.respond_udp(query(f"home.{ZONE}", id=1))

    wire = server.respond_udp(query("HOME.lb.EXAMPLE.net", id=2))

    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == 2
    assert reply.question[0].name.to_text() == "HOME.lb.EXAMPLE.net."
    assert [rrset.name.to_text() for rrset in reply.answer] == ["HOME.lb.EXAMPLE.net."]


CACHE_TABLE = [
    query(f"home.{ZONE}"),
    query(f"HoMe.{ZONE}", "AAAA", edns=0),
    query(f"home.{ZONE}", "AAAA", edns=0, options=[dns.edns.GenericOption(65001, b"xyz")]),
    query(f"v4only.{ZONE}", "AAAA"),
    query(f"nosuch.{ZONE}"),
    query(ZONE, "NS", edns=0),
    query(ZONE, "SOA", rd=False),
    query(f"big.{ZONE}"),
    query(f"big.{ZONE}", edns=0, payload=4096),
    query(f"medium.{ZONE}", edns=0),
    query("example.com"),
    query(".", "NS"),
    query(f"home.{ZONE}", edns=1),
    query(f"home.{ZONE}", rdclass="CH"),
]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("data", CACHE_TABLE, ids=range(len(CACHE_TABLE)))
def test_cached_reply_is_byte_identical_to_reference_path(
    snap: snapshot.Snapshot, data: bytes, tcp: bool
) -> None:
    server = responder.Responder(snap, edns_udp_size=OUR_EDNS_SIZE)
    respond = server.respond_tcp if tcp else server.respond_udp
    reference = responder.answer(data, snap, tcp=tcp, edns_udp_size=OUR_EDNS_SIZE)
    assert reference is not None

    first, second = respond(data), respond(data)

    assert first == second == reference[0]


def test_new_snapshot_drops_cached_replies() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    server = responder.Responder(zone.snapshot)
    zone.subscribe(lambda old, new: server.update(new))
    server.respond_udp(query(f"home.{ZONE}"))

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.7"]), "200")
    wire = server.respond_udp(query(f"home.{ZONE}"))

    assert wire is not None
    assert _texts(dns.message.from_wire(wire)) == {"192.0.2.7"}


# --- opcodes and malformed queries -----------------------------------------------------------


@pytest.mark.parametrize(
    "opcode",
    [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE],
    ids=["IQUERY", "STATUS", "NOTIFY", "UPDATE"],
)
def test_opcode_other_than_query_is_notimp(snap: snapshot.Snapshot, opcode: int) -> None:
    flags = dns.opcode.to_flags(opcode)
    data = _header(flags=flags) + _question(ZONE, qtype=6)

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == opcode


def test_formerr_for_qdcount_zero(snap: snapshot.Snapshot) -> None:
    _, reply = ask(_header(qd=0), snap)

    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.question == []


def test_formerr_for_qdcount_two(snap: snapshot.Snapshot) -> None:
    data = _header(qd=2) + _question() + _question(f"v4only.{ZONE}")

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_truncated_question(snap: snapshot.Snapshot) -> None:
    data = _header() + _question()[:-3]

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_name_running_past_the_message(snap: snapshot.Snapshot) -> None:
    data = _header() + b"\x04home\x10lb"

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_compression_pointer_in_question(snap: snapshot.Snapshot) -> None:
    data = _header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1)

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_two_opt_records(snap: snapshot.Snapshot) -> None:
    data = _header(ar=2) + _question() + _opt() + _opt()

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_opt_outside_the_additional_section(snap: snapshot.Snapshot) -> None:
    data = _header(an=1) + _question() + _opt()

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_formerr_for_malformed_edns_option(snap: snapshot.Snapshot) -> None:
    data = _header(ar=1) + _question() + _opt(options=b"\x00\x0a\x00\x08ab")

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


def test_a_response_packet_is_dropped(snap: snapshot.Snapshot) -> None:
    data = _header(flags=0x8400) + _question()

    assert responder.answer(data, snap, tcp=False, edns_udp_size=OUR_EDNS_SIZE) is None


def test_a_packet_shorter_than_a_header_is_dropped(snap: snapshot.Snapshot) -> None:
    assert responder.answer(b"\x12\x34\x01", snap, tcp=False, edns_udp_size=OUR_EDNS_SIZE) is None


# --- EDNS ---------------------------------------------------------------------------------------


def test_no_opt_in_reply_when_query_had_none(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}"), snap)

    assert reply.edns == -1
    assert reply.opt is None


def test_opt_in_reply_advertises_our_size_when_query_had_one(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", edns=0, payload=4096), snap)

    assert reply.edns == 0
    assert reply.payload == OUR_EDNS_SIZE


def test_opt_on_negative_answers_too(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"nosuch.{ZONE}", edns=0), snap)

    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.edns == 0


def test_badvers_for_edns_version_1(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", edns=1), snap)

    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0  # our version, in an OPT record that carries the extended rcode
    assert reply.answer == []


def test_unknown_edns_options_are_ignored_not_echoed(snap: snapshot.Snapshot) -> None:
    data = query(f"home.{ZONE}", edns=0, options=[dns.edns.GenericOption(65001, b"\x01\x02")])

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert list(reply.options) == []
    assert _texts(reply) == {"192.0.2.1", "192.0.2.2"}


def test_do_bit_is_copied(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", edns=0, want_dnssec=True), snap)

    assert reply.ednsflags & dns.flags.DO


# --- size and truncation -------------------------------------------------------------------------


def test_large_area_over_udp_without_edns_is_truncated_to_the_question(snap: snapshot.Snapshot) -> None:
    data = query(f"big.{ZONE}")

    wire, reply = ask(data, snap)

    assert reply.flags & dns.flags.TC
    assert (reply.answer, reply.authority, reply.additional) == ([], [], [])
    assert reply.question[0].name.to_text() == f"big.{ZONE}."
    assert len(wire) <= 512


def test_large_area_over_tcp_gets_every_address(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"big.{ZONE}"), snap, tcp=True)

    assert not reply.flags & dns.flags.TC
    assert _texts(reply) == set(big_area_ips(BIG, "10.2"))


def test_reply_over_512_without_edns_is_truncated(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"medium.{ZONE}"), snap)

    assert reply.flags & dns.flags.TC
    assert reply.answer == []


def test_reply_over_512_fits_with_edns_1232(snap: snapshot.Snapshot) -> None:
    wire, reply = ask(query(f"medium.{ZONE}", edns=0, payload=1232), snap)

    assert not reply.flags & dns.flags.TC
    assert len(_texts(reply)) == MEDIUM
    assert 512 < len(wire) <= 1232


def test_client_edns_size_below_512_counts_as_512(snap: snapshot.Snapshot) -> None:
    _, small = ask(query(f"home.{ZONE}", edns=0, payload=100), snap)
    _, medium = ask(query(f"medium.{ZONE}", edns=0, payload=100), snap)

    assert not small.flags & dns.flags.TC
    assert medium.flags & dns.flags.TC


def test_our_edns_size_caps_a_larger_client_size(snap: snapshot.Snapshot) -> None:
    wire, reply = ask(query(f"big.{ZONE}", edns=0, payload=65535), snap)

    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    assert reply.edns == 0  # the OPT record stays in a truncated reply
    assert len(wire) <= OUR_EDNS_SIZE


def test_client_edns_size_smaller_than_ours_is_respected(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"medium.{ZONE}", edns=0, payload=600), snap)

    assert reply.flags & dns.flags.TC


def test_larger_configured_edns_size_lets_big_answers_fit() -> None:
    zone = synced_zone(
        [facts(f"m{i}", ["medium"], [ip]) for i, ip in enumerate(big_area_ips(100))], edns_udp_size=4096
    )

    _, reply = ask(query(f"medium.{ZONE}", edns=0, payload=4096), zone.snapshot, our_size=4096)

    assert not reply.flags & dns.flags.TC
    assert reply.payload == 4096
    assert len(_texts(reply)) == 100


# --- names and types -------------------------------------------------------------------------------


def test_area_a_lists_healthy_ipv4_with_record_ttl(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", "A"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert _texts(reply) == {"192.0.2.1", "192.0.2.2"}
    assert [rrset.ttl for rrset in reply.answer] == [30]


def test_area_aaaa_lists_healthy_ipv6(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", "AAAA"), snap)

    assert _texts(reply) == {"2001:db8::1"}


def test_positive_answer_has_only_the_answer_section(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", "A", edns=0), snap)

    assert reply.authority == []
    assert reply.additional == []


def test_addresses_are_in_numeric_order(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"medium.{ZONE}"), snap, tcp=True)

    answered = [rd.to_text() for rd in reply.answer[0]]
    assert answered == big_area_ips(MEDIUM, "10.1")


def test_nodata_for_existing_area_without_aaaa(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"v4only.{ZONE}", "AAAA"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


def test_nodata_for_area_whose_nodes_are_all_unhealthy(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"down.{ZONE}", "A"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


@pytest.mark.parametrize("rdtype", [TXT, MX, NS, SOA, dns.rdatatype.HTTPS, 65280])
def test_nodata_for_type_an_area_never_has(snap: snapshot.Snapshot, rdtype: int) -> None:
    _, reply = ask(query(f"home.{ZONE}", rdtype), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


def test_nxdomain_for_unknown_name_with_soa_in_authority(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"nosuch.{ZONE}", "A"), snap)

    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []
    assert [(rrset.name.to_text(), rrset.rdtype) for rrset in reply.authority] == [(f"{ZONE}.", SOA)]


@pytest.mark.parametrize("qname", [f"x.home.{ZONE}", f"a.b.home.{ZONE}", f"x.down.{ZONE}"])
def test_nxdomain_for_names_below_an_area(snap: snapshot.Snapshot, qname: str) -> None:
    _, reply = ask(query(qname, "A"), snap)

    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


@pytest.mark.parametrize("rdtype", [A, AAAA, TXT])
def test_nodata_for_empty_non_terminal(snap: snapshot.Snapshot, rdtype: int) -> None:
    # sub.lb.example.net exists only because ns.sub.lb.example.net (a glue name) does.
    _, reply = ask(query(f"sub.{ZONE}", rdtype), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


def test_negative_soa_ttl_is_soa_minimum_when_smaller(snap: snapshot.Snapshot) -> None:
    # soa_ttl=300, negative_ttl (SOA MINIMUM)=60
    _, nx = ask(query(f"nosuch.{ZONE}"), snap)
    _, nodata = ask(query(f"v4only.{ZONE}", "AAAA"), snap)

    assert [rrset.ttl for rrset in nx.authority] == [60]
    assert [rrset.ttl for rrset in nodata.authority] == [60]


def test_negative_soa_ttl_is_soa_ttl_when_smaller() -> None:
    zone = synced_zone([facts("n", ["home"], ["192.0.2.1"])], soa_ttl=20, negative_ttl=600)

    _, nx = ask(query(f"nosuch.{ZONE}"), zone.snapshot)
    _, nodata = ask(query(f"home.{ZONE}", "AAAA"), zone.snapshot)

    assert [rrset.ttl for rrset in nx.authority] == [20]
    assert [rrset.ttl for rrset in nodata.authority] == [20]
    assert nx.authority[0][0].minimum == 600


def test_negative_soa_rdata_is_the_zone_soa(snap: snapshot.Snapshot) -> None:
    _, nx = ask(query(f"nosuch.{ZONE}"), snap)
    _, apex = ask(query(ZONE, "SOA"), snap)

    assert nx.authority[0][0] == apex.answer[0][0]


# --- apex ------------------------------------------------------------------------------------------


def test_apex_soa_fields(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(ZONE, "SOA"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    (rrset,) = reply.answer
    (soa,) = list(rrset)
    assert rrset.ttl == 300
    assert (soa.mname.to_text(), soa.rname.to_text()) == (f"ns1.{ZONE}.", "hostmaster.example.net.")
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == (
        int(LIST_VERSION),
        3600,
        600,
        86400,
        60,
    )
    assert reply.authority == []


def test_soa_rname_escapes_dots_in_the_mailbox_local_part() -> None:
    zone = synced_zone([], soa_email="dns.admin@example.net")

    _, reply = ask(query(ZONE, "SOA"), zone.snapshot)

    assert reply.answer[0][0].rname.to_text() == "dns\\.admin.example.net."


def test_apex_ns_lists_every_name_server(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(ZONE, "NS"), snap)

    assert _texts(reply) == {f"ns1.{ZONE}.", f"ns.sub.{ZONE}.", "ns2.example.org."}
    assert [rrset.ttl for rrset in reply.answer] == [3600]


def test_apex_ns_carries_glue_for_in_zone_name_servers_only(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(ZONE, "NS", edns=0), snap)

    glue = {(rrset.name.to_text(), rd.to_text()) for rrset in reply.additional for rd in rrset}
    assert glue == {
        (f"ns1.{ZONE}.", "192.0.2.53"),
        (f"ns1.{ZONE}.", "2001:db8::53"),
        (f"ns.sub.{ZONE}.", "192.0.2.54"),
    }
    assert reply.edns == 0  # the OPT record follows the glue


@pytest.mark.parametrize(
    ("qname", "rdtype", "expected"),
    [
        (f"ns1.{ZONE}", "A", {"192.0.2.53"}),
        (f"ns1.{ZONE}", "AAAA", {"2001:db8::53"}),
        (f"NS.sub.{ZONE}", "A", {"192.0.2.54"}),
    ],
)
def test_in_zone_name_server_names_resolve_to_their_glue(
    snap: snapshot.Snapshot, qname: str, rdtype: str, expected: set[str]
) -> None:
    _, reply = ask(query(qname, rdtype), snap)

    assert reply.flags & dns.flags.AA
    assert _texts(reply) == expected
    assert [rrset.ttl for rrset in reply.answer] == [3600]


def test_apex_a_is_nodata(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(ZONE, "A"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype for rrset in reply.authority] == [SOA]


# --- ANY -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("qname", [f"home.{ZONE}", ZONE])
def test_any_gets_one_rfc8482_hinfo(snap: snapshot.Snapshot, qname: str) -> None:
    _, reply = ask(query(qname, "ANY"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    (rrset,) = reply.answer
    assert rrset.rdtype == HINFO
    assert [(rd.cpu, rd.os) for rd in rrset] == [(b"RFC8482", b"")]


def test_any_for_big_area_is_small_and_not_truncated(snap: snapshot.Snapshot) -> None:
    wire, reply = ask(query(f"big.{ZONE}", "ANY"), snap)

    assert not reply.flags & dns.flags.TC
    assert len(wire) < 100


def test_any_for_unknown_name_is_nxdomain(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"nosuch.{ZONE}", "ANY"), snap)

    assert reply.rcode() == dns.rcode.NXDOMAIN


# --- classes and zone boundaries ------------------------------------------------------------------


@pytest.mark.parametrize("rdclass", ["CH", "HS", 254])
def test_class_other_than_in_or_any_is_refused(snap: snapshot.Snapshot, rdclass: str | int) -> None:
    _, reply = ask(query(f"home.{ZONE}", rdclass=rdclass), snap)

    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


def test_class_any_is_answered_like_in(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query(f"home.{ZONE}", rdclass="ANY"), snap)

    assert reply.rcode() == dns.rcode.NOERROR
    assert _texts(reply) == {"192.0.2.1", "192.0.2.2"}


def test_chaos_version_bind_is_refused(snap: snapshot.Snapshot) -> None:
    _, reply = ask(query("version.bind", "TXT", rdclass="CH"), snap)

    assert reply.rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize(
    ("qname", "rdtype"),
    [
        (".", "NS"),
        ("example.com", "A"),
        ("example.net", "SOA"),
        ("net", "NS"),
        ("xlb.example.net", "A"),  # shares a suffix with the zone, not a label boundary
        (f"home.{ZONE}.evil.example", "A"),
    ],
)
def test_out_of_zone_is_refused_without_aa(snap: snapshot.Snapshot, qname: str, rdtype: str) -> None:
    _, reply = ask(query(qname, rdtype), snap)

    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    assert (reply.answer, reply.authority) == ([], [])


@pytest.mark.parametrize("rdtype", ["AXFR", "IXFR"])
def test_zone_transfers_are_refused(snap: snapshot.Snapshot, rdtype: str) -> None:
    _, reply = ask(query(ZONE, rdtype), snap, tcp=True)

    assert reply.rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize("rdtype", [41, 249, 250], ids=["OPT", "TKEY", "TSIG"])
def test_meta_types_as_question_are_formerr(snap: snapshot.Snapshot, rdtype: int) -> None:
    data = _header() + _question(f"home.{ZONE}", qtype=rdtype)

    _, reply = ask(data, snap)

    assert reply.rcode() == dns.rcode.FORMERR


# --- before the first complete node list ----------------------------------------------------------


@pytest.fixture
def unsynced() -> snapshot.Snapshot:
    zone = new_zone(make_settings())
    zone.apply("node-a", facts("node-a", ["home"], ["192.0.2.1"]), "10")  # an event, but no list yet
    return zone.snapshot


@pytest.mark.parametrize(
    ("qname", "rdtype"),
    [(f"home.{ZONE}", "A"), (f"nosuch.{ZONE}", "A"), (ZONE, "SOA"), (ZONE, "NS"), (f"ns1.{ZONE}", "A")],
)
def test_servfail_before_sync_never_nxdomain(unsynced: snapshot.Snapshot, qname: str, rdtype: str) -> None:
    _, reply = ask(query(qname, rdtype), unsynced)

    assert reply.rcode() == dns.rcode.SERVFAIL
    assert not reply.flags & dns.flags.AA
    assert (reply.answer, reply.authority) == ([], [])


def test_out_of_zone_is_refused_before_sync_too(unsynced: snapshot.Snapshot) -> None:
    _, reply = ask(query(".", "NS"), unsynced)

    assert reply.rcode() == dns.rcode.REFUSED


def test_first_list_turns_servfail_into_answers() -> None:
    zone = new_zone(make_settings())
    server = responder.Responder(zone.snapshot)
    zone.subscribe(lambda old, new: server.update(new))
    before = server.respond_udp(query(f"home.{ZONE}"))

    zone.replace_all([(facts("node-a", ["home"], ["192.0.2.1"]), "10")], "10")
    after = server.respond_udp(query(f"home.{ZONE}"))

    assert before is not None
    assert after is not None
    assert dns.message.from_wire(before).rcode() == dns.rcode.SERVFAIL
    assert _texts(dns.message.from_wire(after)) == {"192.0.2.1"}
