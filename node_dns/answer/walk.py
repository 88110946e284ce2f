"""Walking the records of a DNS message in wire form, without decoding them.

Three readers need to find one record in a message and no more: the TSIG signer (the last
record of a request), the IXFR server (the client's SOA in the authority section) and the
response cache (where the SOA serial of a cached reply sits, to rewrite it). They share this
one bounds-checked walk, so a name or a length that runs past the message is refused the
same way everywhere: :class:`~node_dns.answer.query.Malformed`, a ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from node_dns.answer.query import Malformed
from node_dns.zone.snapshot import TYPE_SOA

__all__ = [
    "HEADER",
    "SOA_NUMBERS",
    "Malformed",
    "Record",
    "counts",
    "question_end",
    "records",
    "skip_name",
    "soa_serial_at",
]

HEADER = 12

SOA_NUMBERS = 20
"""Serial, refresh, retry, expire, minimum: the fixed tail of an SOA's rdata."""


class Record(NamedTuple):
    """Where one resource record sits: its owner name, type, rdata, and the end of the rdata."""

    start: int
    rtype: int
    rdata: int
    end: int


def skip_name(data: bytes, at: int) -> int:
    """The offset just past the (possibly compressed) name at ``at``; pointers are not followed."""
    size = len(data)
    while at < size:
        length = data[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:
            if at + 2 > size:
                break
            return at + 2
        if length & 0xC0:
            raise Malformed("unknown label type")
        at += length + 1
    raise Malformed("name runs past the message")


def counts(data: bytes) -> tuple[int, int, int, int]:
    """QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT."""
    if len(data) < HEADER:
        raise Malformed("short message")
    qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
    return qd, an, ns, ar


def question_end(data: bytes, qdcount: int) -> int:
    """The offset of the first record after ``qdcount`` questions."""
    at = HEADER
    for _ in range(qdcount):
        at = skip_name(data, at) + 4
        if at > len(data):
            raise Malformed("question runs past the message")
    return at


def records(data: bytes, at: int, count: int) -> Iterator[Record]:
    """The next ``count`` records from ``at``, in order; Malformed where one is cut short."""
    for _ in range(count):
        start = at
        at = skip_name(data, at)
        if at + 10 > len(data):
            raise Malformed("record header runs past the message")
        rtype = data[at] << 8 | data[at + 1]
        rdata = at + 10
        at = rdata + (data[at + 8] << 8 | data[at + 9])
        if at > len(data):
            raise Malformed("rdata runs past the message")
        yield Record(start, rtype, rdata, at)


def soa_serial_at(data: bytes, record: Record) -> int:
    """The offset of the serial in an SOA record: past its two names, 20 bytes before its end."""
    if record.rtype != TYPE_SOA:
        raise Malformed("not an SOA record")
    at = skip_name(data, skip_name(data, record.rdata))
    if at + SOA_NUMBERS != record.end:
        raise Malformed("SOA rdata is not two names and five numbers")
    return at
