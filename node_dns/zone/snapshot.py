"""The immutable view of the zone that every query reads exactly one of.

Record data is pre-encoded to wire format when the snapshot is built, so answering is
concatenation: an answer costs the same whether an area has one node or five hundred. The maps
are persistent (``immutables.Map``): the next snapshot shares everything but the names a change
touched, so building it costs work proportional to the change, not to the zone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import immutables

from node_dns import protocol
from node_dns.zone.policy import ScopeHealth

if TYPE_CHECKING:
    from node_dns.zone.records import AddressRecords

# Query types the zone has data for.
TYPE_A = protocol.TYPE_A
TYPE_NS = protocol.TYPE_NS
TYPE_SOA = protocol.TYPE_SOA
TYPE_AAAA = protocol.TYPE_AAAA
TYPE_EXISTS = protocol.TYPE_EXISTS

NameKey = tuple[bytes, ...]
"""A name as lower-case labels, most specific first, without the root: (b'home', b'lb', ...)."""
ServiceKey = tuple[str, str]
"""(namespace, name) of a Service."""

TYPE_ORDER = (TYPE_SOA, TYPE_NS, TYPE_A, TYPE_AAAA)
"""Order of RRsets within one name in dumps and transfers: SOA first, as a transfer starts."""


def wire_name(labels: Iterable[bytes]) -> bytes:
    """A name key (or any labels, most specific first) in DNS wire form, root label included."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def canonical(key: NameKey) -> NameKey:
    """Sort key of DNS canonical name order (RFC 4034 §6.1) for lower-case names."""
    return tuple(reversed(key))


def type_order(rtype: int) -> tuple[int, int]:
    return (TYPE_ORDER.index(rtype) if rtype in TYPE_ORDER else len(TYPE_ORDER), rtype)


@dataclass(frozen=True, slots=True)
class RRset:
    """Records of one name and type; each item is the wire tail after the owner name."""

    rtype: int
    ttl: int
    tails: tuple[bytes, ...]
    texts: tuple[str, ...]
    """Presentation form of each rdata, for zone dumps and logs."""


@dataclass(frozen=True, slots=True)
class Node:
    """All RRsets at one owner name, by type."""

    rrsets: Mapping[int, RRset]


@dataclass(frozen=True, slots=True)
class Health:
    """How each area and Service stands, as of the build (whether or not content moved)."""

    areas: immutables.Map[str, ScopeHealth]
    """Areas with at least one member node."""
    services: immutables.Map[ServiceKey, ScopeHealth]
    """Opted-in Services."""


@dataclass(frozen=True, slots=True)
class Parts:
    """What the builder keeps between builds so a change re-encodes only what it touched."""

    records: immutables.Map[str, Mapping[str, AddressRecords]]
    """Per area, its members' addresses encoded (a member's are encoded again when they change)."""
    areas: immutables.Map[str, Node]
    services: immutables.Map[ServiceKey, Node]
    glue: frozenset[NameKey]
    """Names of in-zone name servers: their glue is served over any area of the same name."""


@dataclass(frozen=True, slots=True)
class Delta:
    """Names whose records may differ from those of the snapshot of generation ``base``."""

    base: int
    names: frozenset[NameKey]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A complete, consistent zone; replaced as a whole, never mutated."""

    origin: NameKey
    serial: int
    synced: bool
    names: immutables.Map[NameKey, Node]
    soa: RRset
    negative_ttl: int
    """TTL of the SOA placed in the authority section of negative answers (RFC 2308 §5)."""
    generation: int = 0
    """Counts publications, so caches can tell snapshots apart cheaply."""
    below: immutables.Map[NameKey, int] = field(default_factory=immutables.Map)
    """For each name above another (up to the apex, excluded): how many names are below it."""
    health: Health = field(default_factory=lambda: Health(immutables.Map(), immutables.Map()))
    parts: Parts | None = field(default=None, compare=False, repr=False)
    delta: Delta | None = field(default=None, compare=False, repr=False)
    lineage: object = field(default=None, compare=False, repr=False)
    """Shared by the snapshots built one from another, so :attr:`delta` is only trusted there."""

    @property
    def zone(self) -> str:
        return b".".join(self.origin).decode("ascii")

    def is_empty_non_terminal(self, key: NameKey) -> bool:
        """A name that exists only because something below it does (RFC 8020: NODATA)."""
        return key in self.below and key not in self.names

    @property
    def empty_non_terminals(self) -> frozenset[NameKey]:
        return frozenset(key for key in self.below if key not in self.names)

    def owners(self) -> list[NameKey]:
        """Every name with a node, the apex first, then in canonical order."""
        return sorted(self.names, key=lambda k: (k != self.origin, canonical(k)))

    def exists_marker(self) -> RRset:
        """The one record a name without records carries in a transfer (see TYPE_EXISTS)."""
        tail = struct.pack("!HHIH", TYPE_EXISTS, protocol.CLASS_IN, self.negative_ttl, 0)
        return RRset(TYPE_EXISTS, self.negative_ttl, (tail,), ("\\# 0",))

    def transferred(self, node: Node | None) -> Mapping[int, RRset]:
        """A node's RRsets as a transfer carries them: a name that exists with no records gets
        the marker, so secondaries answer NODATA for it as node-dns does."""
        if node is None:
            return {}
        return node.rrsets if node.rrsets else {TYPE_EXISTS: self.exists_marker()}

    def rrsets(self) -> Iterator[tuple[NameKey, RRset]]:
        """The whole zone as a transfer carries it, as (owner, RRset): the apex SOA first, then
        in canonical order."""
        for key in self.owners():
            rrsets = self.transferred(self.names[key])
            for rtype in sorted(rrsets, key=type_order):
                yield key, rrsets[rtype]
