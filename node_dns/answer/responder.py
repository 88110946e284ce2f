"""The query path the transports call: bytes in, bytes out, against the current snapshot.

Fast path: a response depends only on the snapshot and on the query minus its ID and the case
of its name. So each response is encoded once and kept in a dict keyed on that normalised
query; a hit splices in the client's ID and question bytes. The dict belongs to one snapshot
and is dropped when the next is published. Anything unusual (several records, compression,
unknown shapes) takes the full path, which is also the reference the fast path is tested
against byte for byte.
"""

from __future__ import annotations

from node_dns.answer import encode, lookup, query, stats
from node_dns.zone import snapshot

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"
_OPT_TYPE = b"\x00\x29"
TC_BIT = 0x02


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
    arcount = data[10:12]
    if arcount == b"\x00\x00":
        if qend != size:
            return None
        return data[2:12] + data[12:i].lower() + data[i:], qend
    if (
        arcount != b"\x00\x01"
        or size < qend + 11
        or data[qend] != 0
        or data[qend + 1 : qend + 3] != _OPT_TYPE
    ):
        return None
    rdlength = int.from_bytes(data[qend + 9 : qend + 11], "big")
    if qend + 11 + rdlength != size:
        return None
    if rdlength:
        offset, end = qend + 11, size
        while offset < end:  # options are ignored, but must be well-formed
            if offset + 4 > end:
                return None
            offset += 4 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        if offset != end:
            return None
    return data[2:12] + data[12:i].lower() + data[i : qend + 9], qend


class Responder:
    """Holds the current snapshot and its response caches (one per transport)."""

    def __init__(
        self, snap: snapshot.Snapshot, *, edns_udp_size: int = 1232, max_cached: int = 50_000
    ) -> None:
        self.edns_udp_size = edns_udp_size
        self.max_cached = max_cached
        self.stats = stats.QueryStats()
        self.snapshot = snap
        self._udp: dict[bytes, tuple[bytes, tuple[str, str, str]]] = {}
        self._tcp: dict[bytes, tuple[bytes, tuple[str, str, str]]] = {}

    def update(self, snap: snapshot.Snapshot) -> None:
        """Swap to a new snapshot; its caches start empty."""
        self.snapshot = snap
        self._udp = {}
        self._tcp = {}

    def respond_udp(self, data: bytes) -> bytes | None:
        found = cache_key(data)
        if found is not None:
            hit = self._udp.get(found[0])
            if hit is not None:
                wire, key = hit
                self.stats.count(key)
                qend = found[1]
                return data[:2] + wire[2:12] + data[12:qend] + wire[qend:]
        return self._full(data, tcp=False, found=found)

    def respond_tcp(self, data: bytes) -> bytes | None:
        found = cache_key(data)
        if found is not None:
            hit = self._tcp.get(found[0])
            if hit is not None:
                wire, key = hit
                self.stats.count(key)
                qend = found[1]
                return data[:2] + wire[2:12] + data[12:qend] + wire[qend:]
        return self._full(data, tcp=True, found=found)

    def _full(self, data: bytes, *, tcp: bool, found: tuple[bytes, int] | None) -> bytes | None:
        proto = "tcp" if tcp else "udp"
        reply = answer(data, self.snapshot, tcp=tcp, edns_udp_size=self.edns_udp_size)
        if reply is None:
            self.stats.drop("not_a_query")
            return None
        wire, qtype, rcode = reply
        key = (proto, stats.qtype_label(qtype), stats.RCODES.get(rcode, "other"))
        self.stats.count(key)
        if wire[2] & TC_BIT:
            self.stats.truncated[proto] += 1
        if found is not None and wire[4:6] == b"\x00\x01":  # only replies that echo the question
            cache = self._tcp if tcp else self._udp
            if len(cache) >= self.max_cached:
                cache.clear()  # a flood of unique names must not grow memory without bound
            cache[found[0]] = (wire, key)
        return wire


def answer(
    data: bytes, snap: snapshot.Snapshot, *, tcp: bool, edns_udp_size: int
) -> tuple[bytes, int, int] | None:
    """The reference path: decode, look up, encode. Pure: same input, same bytes.

    Returns the response with the query type and response code (for counting), or None when
    the packet must be dropped.
    """
    parsed = query.decode(data)
    if parsed is None:
        return None
    result = lookup.lookup(parsed, snap)
    limit = encode.MAX_TCP if tcp else encode.udp_limit(parsed, edns_udp_size)
    return encode.encode(parsed, result, limit, edns_udp_size), parsed.qtype, int(result.rcode)
