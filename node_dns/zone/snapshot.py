"""The immutable view of the zone that every query reads exactly one of.

Record data is pre-encoded to wire format when the snapshot is built, so answering is
concatenation: an answer costs the same whether an area has one node or five hundred.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Query types the zone has data for.
TYPE_A = 1
TYPE_NS = 2
TYPE_SOA = 6
TYPE_AAAA = 28

NameKey = tuple[bytes, ...]
"""A name as lower-case labels, most specific first, without the root: (b'home', b'lb', ...)."""


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
class Snapshot:
    """A complete, consistent zone; replaced as a whole, never mutated."""

    origin: NameKey
    serial: int
    synced: bool
    names: Mapping[NameKey, Node]
    empty_non_terminals: frozenset[NameKey]
    soa: RRset
    negative_ttl: int
    """TTL of the SOA placed in the authority section of negative answers (RFC 2308 §5)."""
    generation: int = 0
    """Counts publications, so caches can tell snapshots apart cheaply."""
    areas: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Area name to (healthy node count, member node count), for metrics and fail-open logs."""

    @property
    def zone(self) -> str:
        return b".".join(self.origin).decode("ascii")
