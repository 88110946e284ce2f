"""The IXFR journal: what changed between recent serials, bounded in entries and bytes.

Each publication appends the record-level difference between the previous snapshot and the new
one (SOA excluded: IXFR carries SOAs as the delimiters). A request from a serial still in the
journal gets the *condensed* difference from there to now: a record added and removed again
in between appears in neither list (RFC 1995 §5 allows condensing). A serial not in the
journal, or a broken chain, answers None and the caller sends the whole zone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from node_dns.zone import diff as diff_mod
from node_dns.zone import snapshot
from node_dns.zone.snapshot import canonical

Record = tuple[snapshot.NameKey, bytes]
"""(owner, wire tail after the owner name): one resource record, hashable."""


def _key(record: Record) -> tuple[tuple[bytes, ...], bytes]:
    return canonical(record[0]), record[1]


def rrsets(snap: snapshot.Snapshot) -> Iterator[tuple[snapshot.NameKey, snapshot.RRset]]:
    """Every RRset of the zone but the SOA, in :meth:`Snapshot.rrsets` order."""
    for owner, rrset in snap.rrsets():
        if rrset.rtype == snapshot.TYPE_SOA and owner == snap.origin:
            continue
        yield owner, rrset


def changes(old: snapshot.Snapshot, new: snapshot.Snapshot) -> tuple[list[Record], list[Record]]:
    """Records removed and added from ``old`` to ``new`` (SOA left out), in canonical order.

    The zone's :func:`~node_dns.zone.diff.diff` gives whole RRsets; an IXFR carries records, so
    an RRset that lost one address of fifty removes that one record only.
    """
    before: dict[tuple[snapshot.NameKey, int], set[bytes]] = {}
    after: dict[tuple[snapshot.NameKey, int], set[bytes]] = {}
    found = diff_mod.diff(old, new)
    for owner, rrset in found.removed:
        before.setdefault((owner, rrset.rtype), set()).update(rrset.tails)
    for owner, rrset in found.added:
        after.setdefault((owner, rrset.rtype), set()).update(rrset.tails)
    removed: list[Record] = []
    added: list[Record] = []
    for key in before.keys() | after.keys():
        owner, rtype = key
        if rtype == snapshot.TYPE_SOA:
            continue
        was, now = before.get(key, set()), after.get(key, set())
        removed.extend((owner, tail) for tail in was - now)
        added.extend((owner, tail) for tail in now - was)
    removed.sort(key=_key)
    added.sort(key=_key)
    return removed, added


def record_size(record: Record) -> int:
    return sum(len(label) + 1 for label in record[0]) + 1 + len(record[1])


@dataclass(frozen=True, slots=True)
class Entry:
    old_serial: int
    new_serial: int
    removed: tuple[Record, ...]
    added: tuple[Record, ...]
    size: int
    """Bytes of the records, uncompressed: what the byte bound counts."""


@dataclass(frozen=True, slots=True)
class Delta:
    """The condensed difference from one serial to the current one."""

    removed: list[Record]
    added: list[Record]


class Journal:
    """Recent differences, oldest first; trimmed from the front to stay within both bounds."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[Entry] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)

    @property
    def oldest_serial(self) -> int | None:
        return self._entries[0].old_serial if self._entries else None

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def append(
        self, old_serial: int, new_serial: int, removed: Iterable[Record], added: Iterable[Record]
    ) -> None:
        if self._entries and self._entries[-1].new_serial != old_serial:
            self.clear()  # a chain with a hole is useless: start again from here
        removed, added = tuple(removed), tuple(added)
        size = sum(map(record_size, removed)) + sum(map(record_size, added))
        if self.max_entries <= 0 or size > self.max_bytes:
            self.clear()  # this change alone is over the bound: only a full transfer can carry it
            return
        self._entries.append(Entry(old_serial, new_serial, removed, added, size))
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self.bytes -= self._entries.popleft().size

    def record(self, old: snapshot.Snapshot, new: snapshot.Snapshot) -> None:
        """Append the difference between two published snapshots (a subscriber's job)."""
        if old.serial == new.serial or not old.synced:
            return
        removed, added = changes(old, new)
        self.append(old.serial, new.serial, removed, added)

    def since(self, serial: int) -> Delta | None:
        """Condensed changes from ``serial`` to the newest entry, or None if it is not here."""
        start = None
        for index, entry in enumerate(self._entries):
            if entry.old_serial == serial:
                start = index  # a serial can repeat only after 2**32 changes; take the latest
        if start is None:
            return None
        removed: dict[Record, None] = {}
        added: dict[Record, None] = {}
        for entry in list(self._entries)[start:]:
            for record in entry.removed:
                if record in added:
                    del added[record]
                else:
                    removed[record] = None
            for record in entry.added:
                if record in removed:
                    del removed[record]
                else:
                    added[record] = None
        return Delta(sorted(removed, key=_key), sorted(added, key=_key))
