"""Wire encoding of the zone's RRsets: names and addresses in, pre-encoded RRsets out.

dnslib encodes each rdata once here; the answer path only concatenates these bytes.
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from dnslib import NS, SOA, DNSBuffer, DNSLabel

from node_dns import model
from node_dns.protocol import CLASS_IN
from node_dns.zone import snapshot
from node_dns.zone.config import ZoneConfig


def name_key(name: str) -> snapshot.NameKey:
    """Lower-case label tuple for a dotted name; our own names never carry escaped dots."""
    name = name.rstrip(".").lower()
    return tuple(label.encode("ascii") for label in name.split(".")) if name else ()


def _tail(rtype: int, ttl: int, rdata: bytes) -> bytes:
    return struct.pack("!HHIH", rtype, CLASS_IN, ttl, len(rdata)) + rdata


def _pack(rd: object) -> bytes:
    buffer = DNSBuffer()
    # Names inside rdata are written uncompressed: the tail must stand on its own in any message.
    buffer.names = _NoCompression()
    rd.pack(buffer)  # type: ignore[attr-defined]
    return bytes(buffer.data)


class _NoCompression(dict[object, int]):
    """A names table that never remembers, so dnslib writes every name in full."""

    def __setitem__(self, key: object, value: int) -> None:
        return None


_RECORDS: dict[tuple[model.IPAddress, int], tuple[bytes, str]] = {}
"""(address, TTL) -> (wire tail, text): an area is rebuilt on every change of one of its
nodes, and encoding its other members again each time was most of the cost of an update."""
_RECORDS_MAX = 100_000


def _record(ip: model.IPAddress, ttl: int) -> tuple[bytes, str]:
    key = (ip, ttl)
    found = _RECORDS.get(key)
    if found is None:
        if len(_RECORDS) >= _RECORDS_MAX:
            _RECORDS.clear()
        rtype = snapshot.TYPE_A if ip.version == 4 else snapshot.TYPE_AAAA
        found = _RECORDS[key] = (_tail(rtype, ttl, ip.packed), str(ip))
    return found


@dataclass(frozen=True, slots=True)
class AddressRecords:
    """One node's addresses encoded once, so rebuilding its area only merges and sorts.

    Each family is a tuple of (number, (wire tail, text)); the number identifies an address
    within its family unless an IPv6 address carries a scope (``plain`` is then False and
    :func:`merged_rrsets` falls back to :func:`address_rrsets`).
    """

    ips: tuple[model.IPAddress, ...]
    v4: tuple[tuple[int, tuple[bytes, str]], ...]
    v6: tuple[tuple[int, tuple[bytes, str]], ...]
    plain: bool


def address_records(ips: Iterable[model.IPAddress], ttl: int) -> AddressRecords:
    ips = tuple(ips)
    v4, v6 = [], []
    plain = True
    for ip in ips:
        if ip.version == 4:
            v4.append((int(ip), (_tail(snapshot.TYPE_A, ttl, ip.packed), str(ip))))
        else:
            plain = plain and ip.scope_id is None
            v6.append((int(ip), (_tail(snapshot.TYPE_AAAA, ttl, ip.packed), str(ip))))
    return AddressRecords(ips, tuple(v4), tuple(v6), plain)


_number = operator.itemgetter(0)


def merged_rrsets(groups: Iterable[AddressRecords], ttl: int) -> dict[int, snapshot.RRset]:
    """What ``address_rrsets`` gives for all the groups' addresses, without re-encoding any."""
    groups = list(groups)
    if not all(group.plain for group in groups):
        return address_rrsets([ip for group in groups for ip in group.ips], ttl)
    result: dict[int, snapshot.RRset] = {}
    v4 = [record for group in groups for record in group.v4]
    v6 = [record for group in groups for record in group.v6]
    for rtype, records in ((snapshot.TYPE_A, v4), (snapshot.TYPE_AAAA, v6)):
        if records:
            records.sort(key=_number)
            tails: list[bytes] = []
            texts: list[str] = []
            last = -1
            for number, (tail, text) in records:
                if number != last:  # an address two nodes share is served once
                    tails.append(tail)
                    texts.append(text)
                    last = number
            result[rtype] = snapshot.RRset(rtype, ttl, tuple(tails), tuple(texts))
    return result


def address_rrsets(ips: Iterable[model.IPAddress], ttl: int) -> dict[int, snapshot.RRset]:
    """A and AAAA RRsets in a stable order (numeric), so every replica answers identically."""
    ips = list(ips)
    # key=int: the order of ipaddress' own comparison (by number within a version), far cheaper
    v4 = sorted({ip for ip in ips if ip.version == 4}, key=int)
    v6 = sorted({ip for ip in ips if ip.version == 6}, key=int)
    result: dict[int, snapshot.RRset] = {}
    for rtype, members in ((snapshot.TYPE_A, v4), (snapshot.TYPE_AAAA, v6)):
        if members:
            records = [_record(ip, ttl) for ip in members]
            result[rtype] = snapshot.RRset(
                rtype, ttl, tuple(tail for tail, _ in records), tuple(text for _, text in records)
            )
    return result


def soa_rrset(config: ZoneConfig, serial: int) -> snapshot.RRset:
    """The apex SOA: MNAME is the first name server; the minimum is the negative-answer TTL."""
    mname, rname = config.nameservers[0].name, config.soa_rname  # rname: dots in the local part escaped
    timers = (config.soa_refresh, config.soa_retry, config.soa_expire, config.negative_ttl)
    rdata = _soa_names(mname, rname) + struct.pack("!IIIII", serial, *timers)
    text = f"{mname}. {rname}. {serial} " + " ".join(str(t) for t in timers)
    ttl = config.soa_ttl
    return snapshot.RRset(snapshot.TYPE_SOA, ttl, (_tail(snapshot.TYPE_SOA, ttl, rdata),), (text,))


@functools.lru_cache(maxsize=16)
def _soa_names(mname: str, rname: str) -> bytes:
    """MNAME and RNAME of an SOA, packed once: the snapshot of every update carries a new serial,
    and packing the names through dnslib was a sixth of a zone update's CPU."""
    rdata = _pack(SOA(DNSLabel(mname), DNSLabel(_split_escaped(rname)), (0, 0, 0, 0, 0)))
    return rdata[:-20]  # the five 32-bit numbers follow the names


def ns_rrset(names: Iterable[str], ttl: int) -> snapshot.RRset:
    names = list(dict.fromkeys(names))
    return snapshot.RRset(
        snapshot.TYPE_NS,
        ttl,
        tuple(_tail(snapshot.TYPE_NS, ttl, _pack(NS(DNSLabel(n)))) for n in names),
        tuple(f"{n}." for n in names),
    )


def _split_escaped(name: str) -> list[bytes]:
    """Split a presentation name on unescaped dots ('first\\.last.example.net')."""
    labels: list[bytes] = []
    current = ""
    escaped = False
    for char in name.rstrip("."):
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            labels.append(current.encode())
            current = ""
        else:
            current += char
    labels.append(current.encode())
    return labels
