"""The SOA serial: when it moves and to what.

It moves exactly when served content moves. Its value is derived from the Kubernetes
resourceVersion of the change that moved content (the list's resourceVersion for a full list),
so replicas that saw the same change agree on it, and a restart never makes it go back. When no
version is known, the clock stands in. It never moves backwards (RFC 1982 arithmetic): a
version that is not newer bumps the current serial by one.
"""

from __future__ import annotations

import hashlib

from node_dns.zone.snapshot import TYPE_SOA, Snapshot

SERIAL_MODULO = 2**32


def serial_newer(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: is a greater than b?"""
    return a != b and ((a - b) % SERIAL_MODULO) < 2**31


def next_serial(current: int, version: int | None, now: float) -> int:
    """The serial for a content change at ``version`` (None: not known, ``now`` is used)."""
    candidate = version % SERIAL_MODULO if version is not None else int(now) % SERIAL_MODULO
    if serial_newer(candidate, current):
        return candidate
    return (current + 1) % SERIAL_MODULO


# --- agreement between replicas -------------------------------------------------------------------
#
# Replicas derive the serial from the resourceVersion of the change that moved content, so
# replicas that saw the same change agree. Two cases escape that rule: a replica that starts
# later sees no change, only a complete list (its resourceVersion counts every unrelated write
# in the cluster since), and a resync that repairs a missed event uses its own list's version.
# For those, the leader records ``<serial> <content hash>`` of what it serves in the Lease it
# already renews, and every replica reads it on each Lease poll. A replica serving the same
# content adopts the recorded serial when it is newer than its own; a replica that has not yet
# reported ready (its serial is provisional: no Service routes to it) adopts it even when older.

ANNOTATION = "node-dns.io/serial"
"""Lease annotation holding the leader's ``<serial> <content hash>``."""


def content_hash(snap: Snapshot) -> str:
    """A digest of every record served but the SOA: equal content, equal digest, on any replica."""
    digest = hashlib.blake2b(digest_size=12)
    for owner, rrset in snap.rrsets():
        if rrset.rtype == TYPE_SOA and owner == snap.origin:
            continue
        digest.update(b".".join(owner) + b"\x00")
        for tail in sorted(rrset.tails):
            digest.update(len(tail).to_bytes(2, "big") + tail)
    return digest.hexdigest()


def parse_record(value: str | None) -> tuple[int, str] | None:
    """``"<serial> <hash>"`` from the Lease, or None when absent or malformed."""
    if not value:
        return None
    number, _, digest = value.partition(" ")
    if not number.isdigit() or not digest or int(number) >= SERIAL_MODULO:
        return None
    return int(number), digest


class Agreement:
    """One replica's side of the serial agreement: what to record, and what to adopt."""

    def __init__(self) -> None:
        self._hashes: dict[int, tuple[int, str]] = {}
        """Snapshot generation -> (serial, content hash): hashing is done once per snapshot."""
        self.provisional = True
        """Until this replica has checked its first authoritative serial against the Lease."""
        self.adopted = 0

    def describe(self, snap: Snapshot) -> str:
        key = snap.generation
        found = self._hashes.get(key)
        if found is None or found[0] != snap.serial:
            self._hashes = {key: (snap.serial, content_hash(snap))}
            found = self._hashes[key]
        return f"{found[0]} {found[1]}"

    def record(self, snap: Snapshot) -> dict[str, str]:
        """The leader's annotation for the snapshot it serves (empty before the first list)."""
        return {ANNOTATION: self.describe(snap)} if snap.synced else {}

    def observe(self, value: str | None, snap: Snapshot) -> int | None:
        """The serial to adopt given the Lease's record, or None to keep ours.

        Only a record of the very content we serve counts. Once authoritative, the first
        observation settles the provisional period whatever it says.
        """
        if not snap.synced:
            return None
        record = parse_record(value)
        provisional, self.provisional = self.provisional, False
        if record is None:
            return None
        number, digest = record
        if number == snap.serial or digest != self.describe(snap).partition(" ")[2]:
            return None
        if serial_newer(number, snap.serial) or provisional:
            self.adopted += 1
            return number
        return None
