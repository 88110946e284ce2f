"""The protocol rules that need real sockets: TCP framing and pipelining, TC over UDP followed by
the TCP retry real clients make, and the main rules of README.md "DNS behaviour" as dig reports them. The full
rule table runs without sockets in tests/unit/test_answer_protocol.py."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import NodeSpec
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import (
    AREAS_ANNOTATION,
    HOST,
    IPS_ANNOTATION,
    addresses,
    answers,
    dig,
    dig_answers,
    node_reader,
    tcp,
    udp,
    unique,
    wait_for,
)

pytestmark = pytest.mark.controlplane

BIG = 200
BIG_IPS = {f"10.77.{i // 250}.{i % 250 + 1}" for i in range(BIG)}


class Zone:
    def __init__(self, server: NodeDns, home: str, big: str) -> None:
        self.server, self.home, self.big = server, home, big

    def name(self, area: str) -> str:
        return f"{area}.{self.server.zone}"


@pytest.fixture(scope="module")
def zone(control_plane: ControlPlane) -> Iterator[Zone]:
    """node-dns with a small dual-stack area and one area of 200 nodes."""
    home, big = unique("home"), unique("big")
    specs = [
        NodeSpec(
            unique("home"), annotations={AREAS_ANNOTATION: home, IPS_ANNOTATION: "192.0.2.1,2001:db8::1"}
        ),
        NodeSpec(unique("home"), annotations={AREAS_ANNOTATION: home, IPS_ANNOTATION: "192.0.2.2"}),
    ]
    specs += [
        NodeSpec(f"{big}-{i:03d}", annotations={AREAS_ANNOTATION: big, IPS_ANNOTATION: ip})
        for i, ip in enumerate(sorted(BIG_IPS))
    ]
    control_plane.create_nodes(specs, concurrency=8)
    kubeconfig, _ = node_reader(control_plane, "protocol")
    try:
        with NodeDns(kubeconfig) as server:
            wait_for(lambda: answers(server, home) == {"192.0.2.1", "192.0.2.2"}, timeout=10, what="home")
            wait_for(
                lambda: addresses(tcp(server, f"{big}.{server.zone}")) == BIG_IPS, timeout=10, what="big area"
            )
            yield Zone(server, home, big)
    finally:
        control_plane.delete_nodes([s.name for s in specs])


# --- TCP -------------------------------------------------------------------------------------------


def _framed(message: dns.message.Message) -> bytes:
    wire = message.to_wire()
    return len(wire).to_bytes(2, "big") + wire


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def _read_reply(sock: socket.socket) -> dns.message.Message:
    length = int.from_bytes(_read_exactly(sock, 2), "big")
    return dns.message.from_wire(_read_exactly(sock, length))


def _connect(zone: Zone) -> socket.socket:
    sock = socket.create_connection((HOST, zone.server.dns_port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_tcp_pipelined_queries_on_one_connection_are_all_answered_in_order(zone: Zone) -> None:
    names = [zone.name(zone.home), zone.name("nosuch"), zone.server.zone, zone.name(zone.big)] * 3
    queries = [dns.message.make_query(name, "A", id=1000 + i) for i, name in enumerate(names)]

    with _connect(zone) as sock:
        sock.sendall(b"".join(_framed(q) for q in queries))  # all at once, before reading anything
        replies = [_read_reply(sock) for _ in queries]

    assert [r.id for r in replies] == [q.id for q in queries]
    by_name = {str(r.question[0].name): r for r in replies}
    assert addresses(by_name[zone.name(zone.home) + "."]) == {"192.0.2.1", "192.0.2.2"}
    assert by_name[zone.name("nosuch") + "."].rcode() == dns.rcode.NXDOMAIN
    assert addresses(by_name[zone.name(zone.big) + "."]) == BIG_IPS  # over TCP: never truncated


def test_tcp_sequential_queries_reuse_one_connection(zone: Zone) -> None:
    with _connect(zone) as sock:
        for i in range(5):
            sock.sendall(_framed(dns.message.make_query(zone.name(zone.home), "AAAA", id=i)))
            reply = _read_reply(sock)
            assert (reply.id, addresses(reply)) == (i, {"2001:db8::1"})


def test_tcp_message_split_across_segments_is_reassembled(zone: Zone) -> None:
    framed = _framed(dns.message.make_query(zone.name(zone.home), "A", id=77))

    with _connect(zone) as sock:
        for piece in (framed[:1], framed[1:9], framed[9:]):
            sock.sendall(piece)
            time.sleep(0.05)
        reply = _read_reply(sock)

    assert reply.id == 77
    assert addresses(reply) == {"192.0.2.1", "192.0.2.2"}


# --- TC and the TCP retry ----------------------------------------------------------------------------


def test_big_area_over_udp_without_edns_is_truncated(zone: Zone) -> None:
    request = dns.message.make_query(zone.name(zone.big), "A")

    reply = dns.query.udp(request, HOST, port=zone.server.dns_port, timeout=2, raise_on_truncation=False)

    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    assert len(reply.to_wire()) <= 512


def test_big_area_over_udp_with_edns_is_truncated_and_keeps_opt(zone: Zone) -> None:
    request = dns.message.make_query(zone.name(zone.big), "A", use_edns=0, payload=4096)

    reply = dns.query.udp(request, HOST, port=zone.server.dns_port, timeout=2, raise_on_truncation=False)

    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    assert reply.edns == 0
    assert reply.payload == 1232


def test_truncated_udp_answer_is_complete_on_tcp_retry(zone: Zone) -> None:
    request = dns.message.make_query(zone.name(zone.big), "A")

    reply, used_tcp = dns.query.udp_with_fallback(request, HOST, port=zone.server.dns_port, timeout=2)

    assert used_tcp
    assert not reply.flags & dns.flags.TC
    assert addresses(reply) == BIG_IPS


def test_dig_retries_a_truncated_answer_over_tcp(zone: Zone) -> None:
    output = dig(zone.server, zone.name(zone.big), "A")

    assert "Truncated, retrying in TCP mode" in output
    assert {rdata for _, rtype, rdata in dig_answers(_answer_lines(output)) if rtype == "A"} == BIG_IPS


def _answer_lines(output: str) -> str:
    section = output.split(";; ANSWER SECTION:\n", 1)[1]
    return section.split("\n\n", 1)[0]


# --- 0x20 --------------------------------------------------------------------------------------------


def test_mixed_case_query_gets_its_own_spelling_back_over_udp_and_tcp(zone: Zone) -> None:
    spelled = "".join(c.upper() if i % 2 else c for i, c in enumerate(zone.name(zone.home)))

    for reply in (udp(zone.server, spelled), tcp(zone.server, spelled)):
        assert str(reply.question[0].name) == spelled + "."
        assert [str(rrset.name) for rrset in reply.answer] == [spelled + "."]


# --- dig: the main rules -----------------------------------------------------------------------------


def _flags(output: str) -> set[str]:
    found = re.search(r";; flags: ([a-z ]*);", output)
    assert found, output
    return set(found.group(1).split())


def _status(output: str) -> str:
    found = re.search(r"status: ([A-Z]+)", output)
    assert found, output
    return found.group(1)


def test_dig_answer_has_aa_and_rd_without_ra(zone: Zone) -> None:
    output = dig(zone.server, zone.name(zone.home), "A")

    assert _status(output) == "NOERROR"
    assert _flags(output) == {"qr", "aa", "rd"}


def test_dig_norecurse_gets_rd_clear(zone: Zone) -> None:
    assert _flags(dig(zone.server, "+norecurse", zone.name(zone.home), "A")) == {"qr", "aa"}


def test_dig_nodata_for_missing_type_carries_soa_with_negative_ttl(zone: Zone) -> None:
    output = dig(zone.server, zone.name("nosuch"), "A", "+noall", "+comments", "+authority")
    nodata = dig(zone.server, zone.name(zone.big), "AAAA", "+noall", "+comments", "+authority")

    assert _status(output) == "NXDOMAIN"
    assert _status(nodata) == "NOERROR"
    for text in (output, nodata):
        (row,) = [line.split() for line in text.splitlines() if line and not line.startswith(";")]
        assert (row[0], row[1], row[3]) == (f"{zone.server.zone}.", "30", "SOA")  # min(300, 30)


def test_dig_apex_ns_with_glue(zone: Zone) -> None:
    output = dig(zone.server, zone.server.zone, "NS", "+noall", "+answer", "+additional")

    rows = dig_answers(output)
    assert (f"{zone.server.zone}.", "NS", f"ns1.{zone.server.zone}.") in rows
    assert (f"ns1.{zone.server.zone}.", "A", "127.0.0.1") in rows


def test_dig_soa_serial_matches_readyz(zone: Zone) -> None:
    (row,) = dig_answers(dig(zone.server, zone.server.zone, "SOA", "+noall", "+answer"))
    _, body = zone.server.http_get("/readyz")

    assert row[1] == "SOA"
    assert int(row[2].split()[2]) == int(re.search(r'"serial": (\d+)', body).group(1))  # type: ignore[union-attr]


def test_dig_any_gets_rfc8482_hinfo(zone: Zone) -> None:
    rows = dig_answers(dig(zone.server, zone.name(zone.big), "ANY", "+noall", "+answer"))

    assert rows == [(f"{zone.name(zone.big)}.", "HINFO", '"RFC8482" ""')]


def test_dig_root_ns_probe_is_refused_without_aa(zone: Zone) -> None:
    output = dig(zone.server, ".", "NS")

    assert _status(output) == "REFUSED"
    assert "aa" not in _flags(output)


def test_dig_chaos_class_is_refused(zone: Zone) -> None:
    assert _status(dig(zone.server, "-c", "CH", "version.bind", "TXT")) == "REFUSED"


def test_dig_edns_version_1_gets_badvers(zone: Zone) -> None:
    assert _status(dig(zone.server, "+edns=1", "+noednsnegotiation", zone.name(zone.home))) == "BADVERS"


def test_dig_without_edns_gets_no_opt(zone: Zone) -> None:
    output = dig(zone.server, "+noedns", zone.name(zone.home))

    assert "OPT PSEUDOSECTION" not in output


def test_dig_with_edns_gets_our_udp_size(zone: Zone) -> None:
    output = dig(zone.server, "+bufsize=4096", zone.name(zone.home))

    assert re.search(r"EDNS: version: 0, flags:; udp: 1232", output), output


def test_dig_notify_opcode_is_notimp(zone: Zone) -> None:
    assert _status(dig(zone.server, "+opcode=notify", zone.server.zone, "SOA")) == "NOTIMP"


@pytest.mark.parametrize("opcode", range(16))
def test_every_opcode_gets_a_reply_dnspython_reads_over_udp_and_tcp(zone: Zone, opcode: int) -> None:
    """Other opcodes get NOTIMP as a bare header (an UPDATE's zone section of type A included)."""
    server = (HOST, zone.server.dns_port)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.SOA):
        request = dns.message.make_query(zone.name(zone.home), rdtype)
        request.set_opcode(opcode)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            dns.query.send_udp(sock, request, server)
            over_udp, _ = dns.query.receive_udp(sock, server, time.time() + 5)
        with socket.create_connection(server, timeout=5) as sock:
            dns.query.send_tcp(sock, request)
            over_tcp, _ = dns.query.receive_tcp(sock, time.time() + 5)
        for reply in (over_udp, over_tcp):
            assert reply.id == request.id and reply.opcode() == opcode
            if opcode == dns.opcode.QUERY:
                assert reply.rcode() == dns.rcode.NOERROR
            else:
                assert reply.rcode() == dns.rcode.NOTIMP
                assert reply.question == [] and reply.answer == []


def test_dig_header_only_query_is_formerr(zone: Zone) -> None:
    assert _status(dig(zone.server, "+header-only", zone.server.zone)) == "FORMERR"


def test_dig_qdcount_0_over_udp_is_answered_formerr_not_dropped(zone: Zone) -> None:
    request = dns.message.Message(id=4242)

    reply = dns.query.udp(request, HOST, port=zone.server.dns_port, timeout=2)

    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.id == 4242


def test_dig_nxdomain_for_subdomain_of_an_area(zone: Zone) -> None:
    output = dig(zone.server, f"www.{zone.name(zone.home)}", "A")

    assert _status(output) == "NXDOMAIN"
    assert "aa" in _flags(output)


def test_dig_aaaa_of_dual_stack_area(zone: Zone) -> None:
    rows = dig_answers(dig(zone.server, zone.name(zone.home), "AAAA", "+noall", "+answer"))

    assert rows == [(f"{zone.name(zone.home)}.", "AAAA", "2001:db8::1")]


def test_queries_for_an_out_of_zone_name_get_no_records(zone: Zone) -> None:
    reply = udp(zone.server, "example.com", "A")

    assert reply.rcode() == dns.rcode.REFUSED
    assert (reply.answer, reply.authority) == ([], [])
    assert reply.question[0].rdtype == dns.rdatatype.A
