"""DNS protocol numbers, in one place: header layout and flags, opcodes, rcodes, types, classes.

Every layer that reads or writes wire format takes its numbers from here. This module imports
nothing from node_dns, so every layer can depend on it.
"""

from __future__ import annotations

import struct
from enum import IntEnum

HEADER = struct.Struct("!HHHHHH")
"""ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT."""

# Flags in the 16-bit header word.
QR = 0x8000
OPCODE_MASK = 0x7800
AA = 0x0400
TC = 0x0200
RD = 0x0100
RCODE_MASK = 0x000F
"""The low four bits of the flags word; also of a message's fourth byte (``wire[3]``)."""
TC_BYTE2 = TC >> 8
"""The TC bit as seen in the third byte of a message (``wire[2]``)."""


EDNS_DO = 0x8000
"""DNSSEC OK, in the OPT record's TTL field."""


def opcode(flags: int) -> int:
    return (flags & OPCODE_MASK) >> 11


class Opcode(IntEnum):
    QUERY = 0
    IQUERY = 1
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5
    DSO = 6


class Rcode(IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    NOTAUTH = 9
    BADVERS = 16


class TsigError(IntEnum):
    """The TSIG record's Error field (RFC 8945 §5.2)."""

    NOERROR = 0
    BADSIG = 16
    BADKEY = 17
    BADTIME = 18
    BADTRUNC = 22


RCODE_NAMES = {rcode.value: rcode.name for rcode in Rcode}

CLASS_IN = 1
CLASS_ANY = 255

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_HINFO = 13
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
TYPE_SVCB = 64
TYPE_HTTPS = 65
TYPE_TKEY = 249
TYPE_TSIG = 250
TYPE_IXFR = 251
TYPE_AXFR = 252
TYPE_ANY = 255
TYPE_EXISTS = 65280
"""A private-use type (RFC 6895 §3.1) that marks, in transfers and dumps, a name that answers
NODATA with no record at all (an area whose nodes are all unhealthy, a ``v6.`` name of an
IPv4-only area, a Service without endpoints): a zone file cannot hold a name without records,
so without it a secondary would answer NXDOMAIN where node-dns answers NODATA."""

TYPE_NAMES = {
    TYPE_A: "A",
    TYPE_NS: "NS",
    TYPE_SOA: "SOA",
    TYPE_AAAA: "AAAA",
    TYPE_ANY: "ANY",
    TYPE_HINFO: "HINFO",
    TYPE_CNAME: "CNAME",
    TYPE_MX: "MX",
    TYPE_TXT: "TXT",
    TYPE_SRV: "SRV",
    TYPE_HTTPS: "HTTPS",
    TYPE_SVCB: "SVCB",
    TYPE_PTR: "PTR",
    TYPE_AXFR: "AXFR",
    TYPE_IXFR: "IXFR",
}
"""Mnemonics of the types node-dns names in metrics and zone dumps; others are 'other'/TYPEn."""
