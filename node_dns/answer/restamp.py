"""Carry negative answers and the apex across a publication by rewriting their SOA serial.

Every publication moves the zone's serial, and every negative answer (NXDOMAIN, NODATA) and
the apex SOA answer carry the SOA. Dropping them at each publication made each of them a slow
miss right after it: with 50 node changes a second, a third to a half of a usual query mix went
through the full path again every 20 ms. Most publications move one area's addresses and the
serial, nothing else a negative answer depends on, so the cached reply stays right once its
four serial bytes are rewritten.

Pure functions: where the serial sits in an encoded reply, whether two SOA RRsets differ in
their serial only, and which owners a diff may have changed the negative answers of.
"""

from __future__ import annotations

from collections.abc import Iterable

from node_dns.answer import walk
from node_dns.zone.snapshot import TYPE_SOA, RRset

WILDCARD = b"*"


def serial_offset(wire: bytes, start: int) -> int | None:
    """Offset in ``wire`` of the serial of its first SOA record in the answer or authority
    section; ``start`` is where the question ends. None when there is none or the reply is
    not well formed (the caller then drops the cached answer, as before)."""
    try:
        _, an, ns, _ = walk.counts(wire)
        for record in walk.records(wire, start, an + ns):
            if record.rtype == TYPE_SOA:
                return walk.soa_serial_at(wire, record)
    except walk.Malformed:
        return None
    return None


def only_serial_moved(old: RRset, new: RRset) -> bool:
    """Whether two apex SOA RRsets are the same but for the serial (the last 20 bytes of the
    rdata are serial, refresh, retry, expire, minimum)."""
    if old.ttl != new.ttl or len(old.tails) != 1 or len(new.tails) != 1:
        return False
    before, after = old.tails[0], new.tails[0]
    return len(before) == len(after) >= 20 and before[:-20] + before[-16:] == after[:-20] + after[-16:]


def suffixes(name: bytes) -> Iterable[bytes]:
    """A wire name and every name above it, itself first, the root last."""
    at = 0
    while at < len(name):
        yield name[at:]
        if name[at] == 0:
            return
        at += name[at] + 1


class Stale:
    """The owners whose negative answers a diff may have changed.

    A negative answer for a name stays right unless that name changed, a name below it came or
    went (it may turn from NXDOMAIN into an empty non-terminal's NODATA, RFC 8020), or a name
    above it changed (it may have become a delegation or vanished). The apex always exists, so
    changes below it never change its own negative answers. A wildcard owner changes answers
    for names anywhere beside it: then every negative answer is stale.
    """

    def __init__(self, touched: Iterable[bytes], apex: bytes) -> None:
        self.touched = frozenset(touched)
        self.everything = any(name[1 : 1 + name[0]] == WILDCARD for name in self.touched if name)
        self._above = frozenset(
            parent for name in self.touched for parent in suffixes(name) if len(parent) > len(apex)
        )

    def __contains__(self, owner: bytes) -> bool:
        if self.everything or owner in self._above:
            return True
        return any(name in self.touched for name in suffixes(owner))
