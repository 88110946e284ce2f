"""Decode a query once, in the order NSD checks it, and say what is wrong before any lookup.

Only what an authoritative answer needs is decoded: the header, the one question (its raw bytes
kept for an exact echo), and the OPT record. Other records in a query are walked for
well-formedness and ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from node_dns.protocol import EDNS_DO, HEADER, QR, TYPE_OPT, TYPE_TKEY, TYPE_TSIG, Opcode, Rcode, opcode


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int
    do: bool


@dataclass(frozen=True, slots=True)
class Query:
    """A decoded query. ``problem`` is set when the query must be refused before lookup."""

    id: int
    flags: int
    labels: tuple[bytes, ...] = ()
    """The question name as received (case kept), most specific label first."""
    question: bytes = b""
    """The question section exactly as received: echoed byte for byte."""
    qtype: int = 0
    qclass: int = 0
    edns: Edns | None = None
    problem: Rcode | None = None


class Malformed(ValueError):
    """Raised inside the decoder (it never escapes :func:`decode`) and by :func:`read_name`."""


def read_name(data: bytes, offset: int, allow_pointers: bool = True) -> tuple[tuple[bytes, ...], int]:
    """Read a name; return its labels and the offset just past it in the message.

    Compression pointers must point backwards (at most 128 of them); the name is at most 255
    octets. Raises :class:`Malformed` otherwise.
    """
    labels: list[bytes] = []
    end = -1
    total = 1
    jumps = 0
    while True:
        if offset >= len(data):
            raise Malformed("name runs past the message")
        length = data[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            if not allow_pointers or offset + 1 >= len(data):
                raise Malformed("compression pointer where none is allowed")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target >= offset or jumps > 127:
                raise Malformed("compression pointer does not point backwards")
            if end < 0:
                end = offset + 2
            offset = target
            jumps += 1
            continue
        if length & 0xC0:
            raise Malformed("unknown label type")
        label = data[offset + 1 : offset + 1 + length]
        if len(label) != length:
            raise Malformed("label runs past the message")
        total += length + 1
        if total > 255:
            raise Malformed("name longer than 255 octets")
        labels.append(label)
        offset += length + 1
    return tuple(labels), (end if end >= 0 else offset)


def decode(data: bytes) -> Query | None:
    """Decode ``data``; None means drop silently (too short to answer, or not a query)."""
    if len(data) < HEADER.size:
        return None
    qid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if flags & QR:
        return None  # a response: never answer one (reflection loops)
    if opcode(flags) != Opcode.QUERY:
        # A bare header, as NSD sends: the sections of other opcodes are not questions (UPDATE's
        # first section is the zone, which strict parsers insist is of type SOA), so echoing
        # them can make a reply its client cannot read.
        return Query(qid, flags, problem=Rcode.NOTIMP)
    if qdcount != 1:
        return Query(qid, flags, problem=Rcode.FORMERR)
    try:
        labels, offset = read_name(data, HEADER.size, allow_pointers=False)
        if offset + 4 > len(data):
            raise Malformed("question truncated")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        question = data[HEADER.size : offset + 4]
        offset += 4
        edns = None
        opt_seen = 0
        for index in range(ancount + nscount + arcount):
            owner, offset = read_name(data, offset, allow_pointers=True)
            if offset + 10 > len(data):
                raise Malformed("record header truncated")
            rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            if offset + rdlength > len(data):
                raise Malformed("rdata runs past the message")
            if rtype == TYPE_OPT:
                opt_seen += 1
                if opt_seen > 1 or owner or index < ancount + nscount:
                    raise Malformed("OPT must be a single record with the root name in additional")
                _check_options(data, offset, rdlength)
                edns = Edns(udp_size=max(rclass, 512), version=(ttl >> 16) & 0xFF, do=bool(ttl & EDNS_DO))
            offset += rdlength
    except Malformed:
        return Query(qid, flags, problem=Rcode.FORMERR)
    query = Query(qid, flags, labels, question, qtype, qclass, edns)
    if edns is not None and edns.version > 0:
        return _replace(query, Rcode.BADVERS)
    if qtype in (TYPE_OPT, TYPE_TKEY, TYPE_TSIG):  # not questions one can ask
        return _replace(query, Rcode.FORMERR)
    return query


def _check_options(data: bytes, offset: int, length: int) -> None:
    end = offset + length
    while offset < end:
        if offset + 4 > end:
            raise Malformed("EDNS option header truncated")
        (option_length,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + option_length
        if offset > end:
            raise Malformed("EDNS option runs past the OPT record")


def _replace(query: Query, rcode: Rcode) -> Query:
    return Query(
        query.id, query.flags, query.labels, query.question, query.qtype, query.qclass, query.edns, rcode
    )
