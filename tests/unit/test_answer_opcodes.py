"""Every reply parses with a strict reader (dnspython), whatever the opcode or the packet.

A query with an opcode other than QUERY gets NOTIMP as a bare header, as NSD answers: its first
section is not a question to echo (UPDATE's is the zone, which a strict parser insists is of
type SOA). Checked through both transport paths of the responder, for every opcode, and over
packets mutated as an outside fuzzer would.
"""

from __future__ import annotations

import random
import struct

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from node_dns.answer import responder
from node_dns.zone import snapshot
from tests.fuzz import engine
from tests.unit.zonekit import ZONE, facts, synced_zone

OPCODES = range(16)
QUESTION_TYPES = (1, 6, 16, 28, 0, 255, 65535)


@pytest.fixture(scope="module")
def snap() -> snapshot.Snapshot:
    return synced_zone([facts("n1", ["home"], ["192.0.2.1", "2001:db8::1"])]).snapshot


def _packet(opcode: int, qtype: int, *, qdcount: int = 1, edns: bool = False) -> bytes:
    flags = 0x0100 | (opcode << 11)
    question = b"".join(bytes([len(p)]) + p.encode() for p in f"home.{ZONE}".split(".")) + b"\x00"
    body = (question + struct.pack("!HH", qtype, 1)) * qdcount
    additional = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0) if edns else b""
    return struct.pack("!HHHHHH", 0x4242, flags, qdcount, 0, 0, 1 if edns else 0) + body + additional


def _replies(server: responder.Responder, data: bytes) -> list[bytes]:
    out = []
    for respond in (server.respond_udp, server.respond_tcp):
        wire = respond(data)
        assert wire is not None, "a query must be answered"
        out.append(wire)
    return out


@pytest.mark.parametrize("opcode", OPCODES)
def test_every_opcode_gets_a_reply_a_strict_parser_reads(snap: snapshot.Snapshot, opcode: int) -> None:
    server = responder.Responder(snap)
    for qtype in QUESTION_TYPES:
        for qdcount in (0, 1, 2):
            for edns in (False, True):
                data = _packet(opcode, qtype, qdcount=qdcount, edns=edns)
                for wire in _replies(server, data):
                    reply = dns.message.from_wire(wire, ignore_trailing=False)
                    assert reply.id == 0x4242
                    assert reply.flags & dns.flags.QR
                    assert reply.opcode() == opcode


@pytest.mark.parametrize("opcode", [op for op in OPCODES if op != dns.opcode.QUERY])
def test_other_opcodes_get_notimp_as_a_bare_header(snap: snapshot.Snapshot, opcode: int) -> None:
    server = responder.Responder(snap)
    for qtype in QUESTION_TYPES:
        for wire in _replies(server, _packet(opcode, qtype, edns=True)):
            reply = dns.message.from_wire(wire)
            assert reply.rcode() == dns.rcode.NOTIMP
            assert wire[4:12] == bytes(8), "no section is echoed"
            assert len(wire) == 12
            assert reply.flags & dns.flags.RD  # the header's RD is copied, as for any reply


def test_an_update_for_a_zone_of_type_a_reads_back_as_notimp(snap: snapshot.Snapshot) -> None:
    """The packet an outside fuzzer found: UPDATE whose zone section is not of type SOA."""
    data = _packet(dns.opcode.UPDATE, 1)
    for wire in _replies(responder.Responder(snap), data):
        assert dns.message.from_wire(wire).rcode() == dns.rcode.NOTIMP


def _opcode_heavy(mutator: engine.Mutator, rng: random.Random) -> bytes:
    data = bytearray(mutator.mutate(rng.choice(mutator.corpus)))
    if len(data) >= 3 and rng.random() < 0.5:  # most outside fuzzers soon find the opcode bits
        data[2] = (data[2] & 0x87) | (rng.randrange(16) << 3)
    return bytes(data)


def test_mutated_packets_get_replies_a_strict_parser_reads_or_are_dropped(snap: snapshot.Snapshot) -> None:
    rng = random.Random(20261203)
    mutator = engine.Mutator(rng, engine.seeds())
    server = responder.Responder(snap)
    unreadable: list[str] = []
    answered = 0
    for _ in range(20_000):
        data = _opcode_heavy(mutator, rng)
        for respond in (server.respond_udp, server.respond_tcp):
            wire = respond(data)
            if wire is None:
                continue
            answered += 1
            try:
                dns.message.from_wire(wire, ignore_trailing=False)
            except dns.exception.DNSException as error:
                unreadable.append(f"{data.hex()} -> {wire.hex()}: {error!r}")
    assert unreadable == []
    assert answered > 20_000  # most inputs are answered, not dropped
