"""What changed between two snapshots, as RRsets removed and added: pure.

Zone transfers (an IXFR journal) and render hooks consume this. A snapshot built from another
says which names it may have touched (:attr:`Snapshot.delta`), so the diff of two consecutive
publications looks at those names only; any other pair is compared name by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from node_dns.zone.snapshot import NameKey, RRset, Snapshot, canonical, type_order


@dataclass(frozen=True, slots=True)
class ZoneDiff:
    """RRsets of ``old`` that ``new`` no longer has, and RRsets ``new`` has that ``old`` had not.

    An RRset whose records or TTL moved appears in both: its old form removed, its new one added.
    Each list is in the order of :meth:`Snapshot.rrsets` (apex first, then canonical order).
    """

    removed: tuple[tuple[NameKey, RRset], ...]
    added: tuple[tuple[NameKey, RRset], ...]

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


def _candidates(old: Snapshot, new: Snapshot) -> Iterable[NameKey]:
    delta = new.delta
    if delta is not None and new.lineage is old.lineage and delta.base == old.generation:
        return delta.names
    return set(old.names) | set(new.names)


def diff(old: Snapshot, new: Snapshot) -> ZoneDiff:
    if old.origin != new.origin:
        raise ValueError("snapshots of different zones")
    removed: list[tuple[NameKey, RRset]] = []
    added: list[tuple[NameKey, RRset]] = []
    origin = new.origin
    for key in sorted(_candidates(old, new), key=lambda k: (k != origin, canonical(k))):
        before, after = old.names.get(key), new.names.get(key)
        if before is after:
            continue
        was, now = old.transferred(before), new.transferred(after)
        for rtype in sorted(set(was) | set(now), key=type_order):
            a, b = was.get(rtype), now.get(rtype)
            if a == b:
                continue
            if a is not None:
                removed.append((key, a))
            if b is not None:
                added.append((key, b))
    return ZoneDiff(tuple(removed), tuple(added))
