"""Turn a lookup result into response bytes: header flags, EDNS, and truncation."""

from __future__ import annotations

import struct

from node_dns.answer.lookup import Result
from node_dns.answer.query import Query
from node_dns.protocol import AA, EDNS_DO, HEADER, OPCODE_MASK, QR, RCODE_MASK, RD, TC, TYPE_OPT

MAX_TCP = 65535
PLAIN_UDP = 512


def udp_limit(query: Query, our_size: int) -> int:
    """The largest UDP reply this client can take (RFC 6891 §6.2.5: never below 512)."""
    if query.edns is None:
        return PLAIN_UDP
    return max(PLAIN_UDP, min(query.edns.udp_size, our_size))


def _opt(query: Query, rcode: int, our_size: int) -> bytes:
    assert query.edns is not None
    ttl = ((rcode >> 4) << 24) | (EDNS_DO if query.edns.do else 0)
    return b"\x00" + struct.pack("!HHIH", TYPE_OPT, our_size, ttl, 0)


def encode(query: Query, result: Result, limit: int, our_size: int) -> bytes:
    """Encode; if it does not fit in ``limit`` bytes, send header + question (+ OPT) with TC."""
    rcode = int(result.rcode)
    flags = QR | (query.flags & (OPCODE_MASK | RD)) | (rcode & RCODE_MASK)
    if result.authoritative:
        flags |= AA
    question = query.question
    opt = _opt(query, rcode, our_size) if query.edns is not None and query.question else b""
    additional = result.additional
    body = b"".join((question, *result.answer, *result.authority, *additional, opt))
    counts = (len(result.answer), len(result.authority), len(additional) + (1 if opt else 0))
    if HEADER.size + len(body) > limit:
        flags |= TC
        body = question + opt
        counts = (0, 0, 1 if opt else 0)
    header = HEADER.pack(query.id, flags, 1 if question else 0, *counts)
    return header + body
