"""The query path the transports call: bytes in, bytes out, against the current snapshot.

Fast path: a response depends only on the snapshot and on the query minus its ID and the case
of its name. So each response is encoded once and kept in a dict keyed on that normalised
query; a hit splices in the client's ID and question bytes. Anything unusual (several records,
compression, unknown shapes) takes the full path, which is also the reference the fast path is
tested against byte for byte.

A publication does not empty the cache (under churn that turned the next queries of every name
into misses at once): :meth:`Responder.publish` keeps the answers that cannot have changed.
A positive answer (NOERROR, records in the answer section, nothing in the authority section)
depends on the RRsets of its own name only, so it is kept unless the zone's diff names it; so
are a truncated one (an area too large for a client without EDNS: TC and no records) and the
windows of an answer cut by ``max_answers``. The apex and every negative answer carry the SOA,
whose serial moves with every publication: they are kept with the new serial written in
(:mod:`node_dns.answer.restamp`) unless the diff may have changed them otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

from node_dns.answer import encode, lookup, query, restamp, stats
from node_dns.protocol import TC_BYTE2
from node_dns.zone import diff, snapshot

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"
_ROOT_OPT = b"\x00\x00\x29"  # owner: the root; type: OPT

RESTAMP_LIMIT = 500
"""Answers carrying the SOA rewritten per publication, at most (~1.6 µs each, so under 1 ms of
the loop); past this (a flood of distinct negative names) they are dropped instead, as before."""


def cache_key(data: bytes) -> tuple[bytes, int] | None:
    """Normalised query (without ID, name lower-cased, EDNS options dropped) and question end.

    None when the query is not of the common shape: one question, no answer/authority records,
    at most one OPT record, no compression. Those go to the full path.
    """
    size = len(data)
    if size < 17 or size > 512 or data[4:10] != _ONE_QUESTION:
        return None
    i = 12
    while True:
        if i >= size:
            return None
        length = data[i]
        if length == 0:
            break
        if length > 63:
            return None
        i += length + 1
    qend = i + 5
    if data[10] or data[11] > 1:  # ARCOUNT: none, or the OPT record
        return None
    if not data[11]:
        if qend != size:
            return None
        return data[2:12] + data[12:i].lower() + data[i:], qend
    if size < qend + 11 or data[qend : qend + 3] != _ROOT_OPT:
        return None
    rdlength = data[qend + 9] << 8 | data[qend + 10]
    if qend + 11 + rdlength != size:
        return None
    if rdlength:
        offset, end = qend + 11, size
        while offset < end:  # options are ignored, but must be well-formed
            if offset + 4 > end:
                return None
            offset += 4 + (data[offset + 2] << 8 | data[offset + 3])
        if offset != end:
            return None
    return data[2:12] + data[12:i].lower() + data[i : qend + 9], qend


_Hit = tuple[bytes, bytes, list[int], bool]
"""A cached answer cut for splicing: header after the ID (flags and counts), everything after
the question, the counter cell of its (protocol, qtype, rcode), and whether TC is set. A hit is
``client ID + header + client's question + rest``: no slicing of the cached answer per query."""


class _Fleeting(NamedTuple):
    """A cached answer that carries the SOA: negative answers and the apex's."""

    tcp: bool
    key: bytes
    owner: bytes
    """Its name, wire form, lower case."""
    offset: int | None
    """Where the SOA serial sits in the cached tail (None: not found, drop it at the next publication)."""


class _Rotation:
    """UDP answers of one normalised query under ``max_answers``: one reply per window, built lazily.

    ``turns`` is shared by every query of the same name and type, so the round-robin offset
    moves per name whatever the client's EDNS shape, and it survives snapshot swaps.
    """

    __slots__ = ("key", "turns", "wires")

    def __init__(self, turns: list[int], windows: int, key: tuple[str, str, str]) -> None:
        self.turns = turns
        self.wires: list[bytes | None] = [None] * windows
        self.key = key


class Responder:
    """Holds the current snapshot and its response caches (one per transport)."""

    def __init__(
        self,
        snap: snapshot.Snapshot,
        *,
        edns_udp_size: int = 1232,
        max_cached: int = 50_000,
        max_answers: int = 0,
        query_stats: stats.QueryStats | None = None,
    ) -> None:
        self.edns_udp_size = edns_udp_size
        self.max_cached = max_cached
        self.max_answers = max_answers
        """At most this many A/AAAA per UDP answer, rotating per name (0: off)."""
        self._rotating: dict[bytes, _Rotation] = {}
        self._rotating_owners: dict[bytes, list[bytes]] = {}
        """Keys of :attr:`_rotating` by owner name (wire form, lower case), for :meth:`publish`."""
        self._turns: dict[tuple[bytes, int], list[int]] = {}
        self.stats = query_stats if query_stats is not None else stats.QueryStats()
        self.snapshot = snap
        # normalised query -> a hit's splice pieces and counters (see _Hit): counts what a miss counts
        self._udp: dict[bytes, _Hit] = {}
        self._tcp: dict[bytes, _Hit] = {}
        # What a publication must drop: cached answers by owner name (wire form, lower case),
        # and those that carry the SOA (negative answers, the apex: rewritten or dropped).
        self._owners: dict[bytes, list[tuple[bool, bytes]]] = {}
        self._fleeting: list[_Fleeting] = []

    def update(self, snap: snapshot.Snapshot) -> None:
        """Swap to a new snapshot; its caches start empty."""
        self.snapshot = snap
        self._udp = {}
        self._tcp = {}
        self._rotating = {}
        self._rotating_owners = {}
        self._owners = {}
        self._fleeting = []

    def publish(self, old: snapshot.Snapshot, new: snapshot.Snapshot) -> None:
        """Subscriber of the zone: swap to ``new``, keeping the answers whose RRsets did not change.

        Costs the names the diff touched plus the answers carrying the SOA (each rewritten to
        the new serial, or dropped), not the whole cache. Anything unexpected (a snapshot we did
        not serve, another zone, a zone not yet or no longer synced) falls back to :meth:`update`.
        """
        if old is not self.snapshot or old.origin != new.origin or not (old.synced and new.synced):
            self.update(new)
            return
        restamping = len(self._fleeting) <= RESTAMP_LIMIT
        if not restamping and len(self._fleeting) * 2 > len(self._udp) + len(self._tcp):
            self.update(new)  # mostly volatile: start over
            return
        changes = diff.diff(old, new)
        caches = {False: self._udp, True: self._tcp}
        apex = snapshot.wire_name(new.origin)
        touched = {
            snapshot.wire_name(owner)
            for owner, rrset in (*changes.removed, *changes.added)
            if not (owner == new.origin and rrset.rtype == snapshot.TYPE_SOA)
        }
        for owner in touched:
            for tcp, key in self._owners.pop(owner, ()):
                caches[tcp].pop(key, None)
            for key in self._rotating_owners.pop(owner, ()):
                self._rotating.pop(key, None)
        same_soa = old.negative_ttl == new.negative_ttl and restamp.only_serial_moved(old.soa, new.soa)
        if restamping and apex not in touched and same_soa:
            self._fleeting = self._restamp(restamp.Stale(touched, apex), caches, new.serial)
        else:
            for entry in self._fleeting:
                caches[entry.tcp].pop(entry.key, None)
            self._fleeting = []
        self.snapshot = new

    def _restamp(
        self, stale: restamp.Stale, caches: dict[bool, dict[bytes, _Hit]], serial: int
    ) -> list[_Fleeting]:
        """Rewrite the serial of the cached answers carrying the SOA; drop those ``stale`` names."""
        kept = []
        stamp = serial.to_bytes(4, "big")
        for entry in self._fleeting:
            cache = caches[entry.tcp]
            hit = cache.get(entry.key)
            if hit is None:
                continue
            if entry.offset is None or entry.owner in stale:
                del cache[entry.key]
                continue
            head, tail, cell, truncated = hit
            tail = tail[: entry.offset] + stamp + tail[entry.offset + 4 :]
            cache[entry.key] = (head, tail, cell, truncated)
            kept.append(entry)
        return kept

    def _remember(self, tcp: bool, key: bytes, qend: int, wire: bytes) -> None:
        """Index a cached answer for :meth:`publish`: by its owner if it outlives publications."""
        owner = key[10 : qend - 6]  # the lower-cased name in the key, root label included
        stable = (
            wire[3] & 0x0F == 0  # NOERROR
            and (wire[6:8] != b"\x00\x00" or wire[2] & TC_BYTE2)  # records, or too many for UDP
            and wire[8:10] == b"\x00\x00"  # no SOA in the authority section
            and owner != self._apex
        )
        if stable:
            self._owners.setdefault(owner, []).append((tcp, key))
        else:
            offset = restamp.serial_offset(wire, qend)
            self._fleeting.append(_Fleeting(tcp, key, owner, None if offset is None else offset - qend))

    @property
    def _apex(self) -> bytes:
        return snapshot.wire_name(self.snapshot.origin)

    def respond(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The reply to one query (None: drop it); a cache hit splices in the client's ID and name."""
        found = cache_key(data)
        if found is not None:
            hit = (self._tcp if tcp else self._udp).get(found[0])
            if hit is not None:
                head, tail, cell, truncated = hit
                cell[0] += 1
                if truncated:
                    self.stats.truncated["tcp" if tcp else "udp"] += 1
                return data[:2] + head + data[12 : found[1]] + tail
            if self._rotating and not tcp:  # answers limited by max_answers: only consulted on a miss
                rotation = self._rotating.get(found[0])
                if rotation is not None:
                    return self._rotate(data, found[1], rotation)
        return self._full(data, tcp=tcp, found=found)

    def respond_udp(self, data: bytes) -> bytes | None:
        """:meth:`respond` over UDP (a method, not an alias, so mypyc can compile the class)."""
        return self.respond(data)

    def respond_tcp(self, data: bytes) -> bytes | None:
        return self.respond(data, tcp=True)

    def _full(self, data: bytes, *, tcp: bool, found: tuple[bytes, int] | None) -> bytes | None:
        proto = "tcp" if tcp else "udp"
        parsed = query.decode(data)
        if parsed is None:
            self.stats.drop("not_a_query")
            return None
        max_answers = 0 if tcp else self.max_answers
        counter: list[int] | None = None
        turn = 0
        if max_answers:
            turn_key = (b".".join(parsed.labels).lower(), parsed.qtype)
            counter = self._turns.get(turn_key)
            turn = counter[0] if counter is not None else 0
        wire, rcode, windows = reply(
            parsed,
            self.snapshot,
            tcp=tcp,
            edns_udp_size=self.edns_udp_size,
            max_answers=max_answers,
            turn=turn,
        )
        key = (proto, stats.qtype_label(parsed.qtype), stats.rcode_label(rcode))
        self.stats.count(key)
        truncated = bool(wire[2] & TC_BYTE2)
        if truncated:
            self.stats.truncated[proto] += 1
        if windows > 1:
            if counter is None:
                if len(self._turns) >= self.max_cached:
                    self._turns.clear()
                counter = self._turns[turn_key] = [turn]
            counter[0] = turn + 1
            if found is not None and wire[4:6] == b"\x00\x01":
                if len(self._rotating) >= self.max_cached:
                    self._rotating.clear()
                    self._rotating_owners.clear()
                rotation = self._rotating[found[0]] = _Rotation(counter, windows, key)
                self._rotating_owners.setdefault(found[0][10 : found[1] - 6], []).append(found[0])
                rotation.wires[turn % windows] = wire
            return wire
        if found is not None and wire[4:6] == b"\x00\x01":  # only replies that echo the question
            cache = self._tcp if tcp else self._udp
            if len(cache) >= self.max_cached:
                self.update(self.snapshot)  # a flood of unique names must not grow memory without bound
                cache = self._tcp if tcp else self._udp
            qend = found[1]
            cache[found[0]] = (wire[2:12], wire[qend:], self.stats.cell(key), truncated)
            self._remember(tcp, found[0], found[1], wire)
        return wire

    def _rotate(self, data: bytes, qend: int, rotation: _Rotation) -> bytes:
        """The next window of a limited answer: cached per window, spliced like any hit."""
        turn = rotation.turns[0]
        rotation.turns[0] = turn + 1
        index = turn % len(rotation.wires)
        wire = rotation.wires[index]
        if wire is None:
            parsed = query.decode(data)
            assert parsed is not None  # same normalised query as the one that made the rotation
            wire, _, _ = reply(
                parsed,
                self.snapshot,
                tcp=False,
                edns_udp_size=self.edns_udp_size,
                max_answers=self.max_answers,
                turn=turn,
            )
            rotation.wires[index] = wire
        self.stats.count(rotation.key)
        if wire[2] & TC_BYTE2:
            self.stats.truncated["udp"] += 1
        return data[:2] + wire[2:12] + data[12:qend] + wire[qend:]


def reply(
    parsed: query.Query,
    snap: snapshot.Snapshot,
    *,
    tcp: bool,
    edns_udp_size: int,
    max_answers: int = 0,
    turn: int = 0,
) -> tuple[bytes, int, int]:
    """Look up and encode a decoded query: the response, its rcode and its number of windows.

    With ``max_answers`` (UDP only) an A/AAAA answer larger than that is cut to window
    ``turn``; the window count (1 when nothing was cut) tells the caller it rotates.
    """
    result = lookup.lookup(parsed, snap)
    windows = 1
    if max_answers and not tcp:
        result, windows = lookup.limit(result, parsed.qtype, max_answers, turn)
    limit = encode.MAX_TCP if tcp else encode.udp_limit(parsed, edns_udp_size)
    return encode.encode(parsed, result, limit, edns_udp_size), int(result.rcode), windows


def answer(
    data: bytes,
    snap: snapshot.Snapshot,
    *,
    tcp: bool,
    edns_udp_size: int,
    max_answers: int = 0,
    turn: int = 0,
) -> tuple[bytes, int, int] | None:
    """The reference path: decode, look up, encode. Pure: same input, same bytes.

    Returns the response with the query type and response code (for counting), or None when
    the packet must be dropped. ``max_answers``/``turn``: see :func:`reply`.
    """
    parsed = query.decode(data)
    if parsed is None:
        return None
    wire, rcode, _ = reply(
        parsed, snap, tcp=tcp, edns_udp_size=edns_udp_size, max_answers=max_answers, turn=turn
    )
    return wire, parsed.qtype, rcode
