"""Find what a decoded query gets from one snapshot: sections plus an outcome.

Owner names are written as compression pointers into the question, so answers carry the
client's spelling of the name (0x20) and a cached response stays valid for any spelling.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from enum import Enum

from node_dns.answer.query import Query
from node_dns.protocol import CLASS_ANY, CLASS_IN, TYPE_ANY, TYPE_AXFR, TYPE_HINFO, TYPE_IXFR, Rcode
from node_dns.zone import snapshot

TRANSFER_TYPES = frozenset({TYPE_IXFR, TYPE_AXFR})  # not offered
QNAME_POINTER = b"\xc0\x0c"
_RFC8482_HINFO = b"\x07RFC8482\x00"


class Outcome(Enum):
    SUCCESS = "success"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    REFUSED = "refused"
    NOT_READY = "not_ready"
    ERROR = "error"


@dataclass(slots=True)
class Result:
    outcome: Outcome
    rcode: Rcode
    authoritative: bool
    answer: list[bytes] = field(default_factory=list)
    authority: list[bytes] = field(default_factory=list)
    additional: list[bytes] = field(default_factory=list)


def _pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def _apex_owner(query: Query, origin_len: int) -> bytes:
    """Pointer to where the zone's name starts inside the question's name."""
    offset = 12 + sum(len(label) + 1 for label in query.labels[: len(query.labels) - origin_len])
    return _pointer(offset)


def _negative_soa(query: Query, snap: snapshot.Snapshot) -> bytes:
    tail = snap.soa.tails[0]
    return _apex_owner(query, len(snap.origin)) + tail[:4] + struct.pack("!I", snap.negative_ttl) + tail[8:]


def lookup(query: Query, snap: snapshot.Snapshot) -> Result:
    """All DNS rules for a well-formed query live here; no sockets, clocks or Kubernetes."""
    if query.problem is not None:
        return Result(Outcome.ERROR, query.problem, authoritative=False)
    if query.qclass not in (CLASS_IN, CLASS_ANY):
        return Result(Outcome.REFUSED, Rcode.REFUSED, authoritative=False)
    key = tuple(label.lower() for label in query.labels)
    origin = snap.origin
    if len(key) < len(origin) or key[len(key) - len(origin) :] != origin:
        return Result(Outcome.REFUSED, Rcode.REFUSED, authoritative=False)
    if query.qtype in TRANSFER_TYPES:
        return Result(Outcome.REFUSED, Rcode.REFUSED, authoritative=False)
    if not snap.synced:
        return Result(Outcome.NOT_READY, Rcode.SERVFAIL, authoritative=False)
    node = snap.names.get(key)
    if node is None:
        if snap.is_empty_non_terminal(key):
            return Result(Outcome.NODATA, Rcode.NOERROR, True, authority=[_negative_soa(query, snap)])
        return Result(Outcome.NXDOMAIN, Rcode.NXDOMAIN, True, authority=[_negative_soa(query, snap)])
    if query.qtype == TYPE_ANY:
        # RFC 8482: one synthesized HINFO instead of every RRset (no amplification).
        ttl = min(rrset.ttl for rrset in node.rrsets.values()) if node.rrsets else 0
        hinfo = struct.pack("!HHIH", TYPE_HINFO, CLASS_IN, ttl, len(_RFC8482_HINFO)) + _RFC8482_HINFO
        return Result(Outcome.SUCCESS, Rcode.NOERROR, True, answer=[QNAME_POINTER + hinfo])
    rrset = node.rrsets.get(query.qtype)
    if rrset is None:
        return Result(Outcome.NODATA, Rcode.NOERROR, True, authority=[_negative_soa(query, snap)])
    result = Result(
        Outcome.SUCCESS, Rcode.NOERROR, True, answer=[QNAME_POINTER + tail for tail in rrset.tails]
    )
    if query.qtype == snapshot.TYPE_NS and key == origin:
        result.additional = _glue(snap)
    return result


def limit(result: Result, qtype: int, max_answers: int, turn: int) -> tuple[Result, int]:
    """At most ``max_answers`` address records, a different window for each turn.

    Returns the result and how many distinct windows the RRset has (1: not limited). Window
    ``turn % windows`` starts at record ``(turn * max_answers) % n`` and wraps around, so
    consecutive turns hand out disjoint slices and every record is served equally often.
    """
    count = len(result.answer)
    if (
        max_answers <= 0
        or count <= max_answers
        or result.outcome is not Outcome.SUCCESS
        or qtype not in (snapshot.TYPE_A, snapshot.TYPE_AAAA)
    ):
        return result, 1
    windows = count // math.gcd(count, max_answers)
    start = (turn % windows) * max_answers % count
    picked = [result.answer[(start + j) % count] for j in range(max_answers)]
    limited = Result(
        result.outcome,
        result.rcode,
        result.authoritative,
        answer=picked,
        authority=result.authority,
        additional=result.additional,
    )
    return limited, windows


def _glue(snap: snapshot.Snapshot) -> list[bytes]:
    """A/AAAA of in-zone name servers, so resolvers can reach them without another query."""
    glue: list[bytes] = []
    for text in snap.names[snap.origin].rrsets[snapshot.TYPE_NS].texts:
        key = tuple(label.encode("ascii") for label in text.rstrip(".").split("."))
        node = snap.names.get(key)
        if node is None:
            continue
        owner = snapshot.wire_name(key)
        for rtype in (snapshot.TYPE_A, snapshot.TYPE_AAAA):
            rrset = node.rrsets.get(rtype)
            if rrset is not None:
                glue.extend(owner + tail for tail in rrset.tails)
    return glue
