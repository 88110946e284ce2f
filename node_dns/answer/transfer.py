"""AXFR and IXFR answers as DNS messages: pure functions of a snapshot (and the journal).

Messages are filled up to ``MAX_MESSAGE`` (64 KiB less room for a TSIG record), owner names are
compressed against earlier names of the same message, and the record bytes come pre-encoded
from the snapshot. The bodies of a full transfer are packed once per snapshot
(:class:`AxfrCache`); a request only adds its header, its question and, if signed, a TSIG.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from node_dns.protocol import AA, OPCODE_MASK, QR, RCODE_MASK, RD, TC
from node_dns.zone import journal as journal_mod
from node_dns.zone import snapshot

MAX_MESSAGE = 65535 - 512
"""Room is left for the TSIG record every message carries when the request was signed."""


@dataclass(frozen=True, slots=True)
class Body:
    """One message without header and question: its record count and bytes."""

    count: int
    data: bytes


def pack(
    records: Iterable[journal_mod.Record],
    origin: snapshot.NameKey,
    limit: int = MAX_MESSAGE,
    *,
    question: bool = True,
) -> list[Body]:
    """Pack records, in order, into as few message bodies as fit ``limit`` bytes each.

    The first body follows a question naming ``origin`` (its name sits at offset 12, where
    pointers may aim) unless ``question`` is False; later bodies follow a header alone. A
    record never spans two messages.
    """
    question_size = len(snapshot.wire_name(origin)) + 4
    bodies: list[Body] = []
    table: dict[snapshot.NameKey, int] = {}
    parts: list[bytes] = []
    count = 0
    first = question
    offset = 12 + question_size

    def fresh() -> None:
        nonlocal table, parts, count, offset
        table = {origin[i:]: 12 + sum(len(label) + 1 for label in origin[:i]) for i in range(len(origin))}
        if not first:
            table = {}
        parts = []
        count = 0
        offset = 12 + (question_size if first else 0)

    fresh()
    for owner, tail in records:
        encoded, new_entries = _compress(owner, table, offset)
        size = len(encoded) + len(tail)
        if count and offset + size > limit:
            bodies.append(Body(count, b"".join(parts)))
            first = False
            fresh()
            encoded, new_entries = _compress(owner, table, offset)
        for suffix, at in new_entries:
            table[suffix] = at
        parts.append(encoded)
        parts.append(tail)
        offset += len(encoded) + len(tail)
        count += 1
    if count or not bodies:
        bodies.append(Body(count, b"".join(parts)))
    return bodies


def pack_zone(
    records: Sequence[journal_mod.Record], origin: snapshot.NameKey, limit: int = MAX_MESSAGE
) -> list[Body]:
    """A full transfer: 64 KiB messages whose owners stay within a pointer's reach.

    A compression pointer reaches only the first 16 KiB of a message, so an owner first
    written after that costs a label and a pointer in every record, not two bytes. Within each
    message the first record of every owner it holds comes first; the message's other records
    follow in order and point to those names. The order within a transfer is free (RFC 5936
    §2.2) except for the SOAs: the first record stays first, the closing SOA stays last.
    """
    if len(records) < 2:
        return pack(records, origin, limit)
    *body, closing = records
    question_size = len(snapshot.wire_name(origin)) + 4
    groups: list[list[journal_mod.Record]] = []
    group: list[journal_mod.Record] = []
    base = 12 + question_size
    used = base
    firsts = base
    reach: dict[snapshot.NameKey, bool] = {}

    def cost(owner: snapshot.NameKey, tail: bytes) -> tuple[int, bool]:
        """Upper bound of a record's size here, and whether it opens a new owner."""
        full = sum(len(label) + 1 for label in owner) + 1
        if owner in reach:
            return len(tail) + (2 if reach[owner] else full), False
        return full + len(tail), True

    for owner, tail in body:
        size, new = cost(owner, tail)
        if group and used + size > limit:
            groups.append(group)
            group, base, reach = [], 12, {}
            used = firsts = base
            size, new = cost(owner, tail)
        if new:
            reach[owner] = firsts < 0x3FFF
            firsts += size
        used += size
        group.append((owner, tail))
    size, _ = cost(*closing)
    if group and used + size > limit:
        groups.append(group)
        group = []
    group.append(closing)
    groups.append(group)
    bodies: list[Body] = []
    for index, members in enumerate(groups):
        last = members is group  # the last message: the closing SOA stays last
        ordered = [*_owners_first(members[:-1]), members[-1]] if last else _owners_first(members)
        bodies += pack(ordered, origin, limit, question=index == 0)
    return bodies


def _owners_first(records: list[journal_mod.Record]) -> list[journal_mod.Record]:
    seen: set[snapshot.NameKey] = set()
    firsts: list[journal_mod.Record] = []
    rest: list[journal_mod.Record] = []
    for record in records:
        if record[0] in seen:
            rest.append(record)
        else:
            seen.add(record[0])
            firsts.append(record)
    return firsts + rest


def _compress(
    owner: snapshot.NameKey, table: dict[snapshot.NameKey, int], offset: int
) -> tuple[bytes, list[tuple[snapshot.NameKey, int]]]:
    """Owner name written as new labels plus a pointer to the longest suffix already written."""
    out = bytearray()
    new: list[tuple[snapshot.NameKey, int]] = []
    for i in range(len(owner)):
        suffix = owner[i:]
        at = table.get(suffix)
        if at is not None:
            out += struct.pack("!H", 0xC000 | at)
            return bytes(out), new
        if offset + len(out) < 0x3FFF:
            new.append((suffix, offset + len(out)))
        label = owner[i]
        out.append(len(label))
        out += label
    out.append(0)
    return bytes(out), new


def soa_tail(snap: snapshot.Snapshot, serial: int | None = None) -> bytes:
    """The zone's SOA record (after the owner), optionally with another serial in it."""
    tail = snap.soa.tails[0]
    if serial is None:
        return tail
    at = len(tail) - 20
    return tail[:at] + struct.pack("!I", serial) + tail[at + 4 :]


def zone_records(snap: snapshot.Snapshot) -> Iterator[journal_mod.Record]:
    """A full transfer's records: SOA, every other record, SOA again (RFC 5936 §2.2)."""
    soa = (snap.origin, soa_tail(snap))
    yield soa
    for owner, rrset in journal_mod.rrsets(snap):
        for tail in rrset.tails:
            yield owner, tail
    yield soa


def delta_records(
    snap: snapshot.Snapshot, client_serial: int, delta: journal_mod.Delta
) -> Iterator[journal_mod.Record]:
    """An incremental answer (RFC 1995 §4): new SOA, old SOA, deletions, new SOA, additions, new SOA."""
    new_soa = (snap.origin, soa_tail(snap))
    yield new_soa
    yield snap.origin, soa_tail(snap, client_serial)
    yield from delta.removed
    yield new_soa
    yield from delta.added
    yield new_soa


class AxfrCache:
    """The packed bodies of the current snapshot's full transfer, built on first use."""

    def __init__(self) -> None:
        self._generation: int | None = None
        self._serial: int | None = None
        self._bodies: list[Body] = []

    def bodies(self, snap: snapshot.Snapshot) -> list[Body]:
        if self._generation != snap.generation or self._serial != snap.serial:
            self._bodies = pack_zone(list(zone_records(snap)), snap.origin)
            self._generation, self._serial = snap.generation, snap.serial
        return self._bodies


def messages(qid: int, flags: int, question: bytes, bodies: Iterable[Body]) -> Iterator[bytes]:
    """Complete messages: header (answer count from the body), question in the first only."""
    response_flags = QR | AA | (flags & RD)
    first = True
    for body in bodies:
        header = struct.pack("!HHHHHH", qid, response_flags, 1 if first else 0, body.count, 0, 0)
        yield header + (question if first else b"") + body.data
        first = False


def single(
    qid: int, flags: int, question: bytes, rcode: int, *, tc: bool = False, answer: bytes = b""
) -> bytes:
    """A one-message answer: an error, a TC, or (``answer``: one record with owner) the SOA alone."""
    response_flags = QR | (flags & (RD | OPCODE_MASK)) | (rcode & RCODE_MASK) | (TC if tc else 0)
    if rcode == 0:
        response_flags |= AA
    qd = 1 if question else 0
    return struct.pack("!HHHHHH", qid, response_flags, qd, 1 if answer else 0, 0, 0) + question + answer
