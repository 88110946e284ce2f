"""A served zone as a stream: the whole snapshot once, then each publication's change: pure.

Worker processes answer from copies of the zone the one writer builds. Sending each of them a
whole snapshot per publication would cost work in proportion to the zone on every change;
instead the writer's own record of what a build touched (:attr:`Snapshot.delta`) names the
owners to send, and a copy is brought up to date by replacing those owners in its persistent
maps, as the writer did. The copy gets the same :class:`Delta` and keeps one lineage, so
:func:`node_dns.zone.diff.diff` between two consecutive copies is again proportional to the
change, and ``Responder.publish`` keeps the cached answers of every other name.

Messages are plain tuples of bytes, ints, strs, bools and None (``marshal`` carries them:
no classes on the wire, nothing that executes on load). A change names the generation it
applies to and the sizes of the maps it leads to; :func:`apply` refuses one that does not fit
the copy held (:class:`StreamError`), and the receiver asks for the whole snapshot again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import immutables

from node_dns.zone.snapshot import Delta, NameKey, Node, RRset, Snapshot

FULL = "full"
CHANGE = "change"

Message = tuple[Any, ...]
"""``(FULL, ...)`` or ``(CHANGE, ...)``: see :func:`full` and :func:`change`."""


class StreamError(ValueError):
    """A message that cannot be applied to the snapshot held: start over from a full one."""


def _rrset(rrset: RRset) -> tuple[int, int, tuple[bytes, ...], tuple[str, ...]]:
    return (rrset.rtype, rrset.ttl, rrset.tails, rrset.texts)


def _node(node: Node) -> tuple[tuple[int, int, tuple[bytes, ...], tuple[str, ...]], ...]:
    return tuple(_rrset(rrset) for rrset in node.rrsets.values())


def _read_rrset(item: Any) -> RRset:
    rtype, ttl, tails, texts = item
    return RRset(int(rtype), int(ttl), tuple(tails), tuple(texts))


def _read_node(items: Iterable[Any]) -> Node:
    rrsets: dict[int, RRset] = {}
    for item in items:
        rrset = _read_rrset(item)
        rrsets[rrset.rtype] = rrset
    return Node(rrsets)


def full(snap: Snapshot) -> Message:
    """The whole snapshot: what a copy starts from."""
    return (
        FULL,
        snap.origin,
        snap.serial,
        snap.synced,
        _rrset(snap.soa),
        snap.negative_ttl,
        snap.generation,
        tuple((key, _node(node)) for key, node in snap.names.items()),
        tuple(snap.below.items()),
    )


def change(old: Snapshot, new: Snapshot) -> Message | None:
    """What turns a copy of ``old`` into a copy of ``new``, in proportion to the names touched.

    None when ``new`` was not built from ``old`` (another lineage, or publications in between):
    send :func:`full` of ``new`` then.
    """
    delta = new.delta
    if delta is None or new.lineage is not old.lineage or delta.base != old.generation:
        return None
    if old.origin != new.origin:
        return None
    touched = sorted(delta.names)
    nodes = tuple((key, _node(node) if (node := new.names.get(key)) is not None else None) for key in touched)
    depth = len(new.origin)
    above = {key[cut:] for key in touched for cut in range(1, len(key) - depth)}
    below = tuple((key, new.below.get(key)) for key in sorted(above))
    return (
        CHANGE,
        old.generation,
        new.serial,
        new.synced,
        _rrset(new.soa),
        new.negative_ttl,
        new.generation,
        nodes,
        below,
        len(new.names),
        len(new.below),
    )


def encode(old: Snapshot | None, new: Snapshot) -> Message:
    """The change from ``old`` when there is one, else the whole of ``new``."""
    message = change(old, new) if old is not None else None
    return message if message is not None else full(new)


def apply(current: Snapshot | None, message: Message) -> Snapshot:
    """The snapshot ``message`` leads to from ``current`` (None: nothing held yet).

    Raises :class:`StreamError` when a change does not apply to ``current``, or when the
    message is not one this module writes.
    """
    try:
        kind = message[0]
        if kind == FULL:
            return _apply_full(message)
        if kind == CHANGE:
            return _apply_change(current, message)
    except StreamError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise StreamError(f"unreadable {message[0] if message else 'empty'} message: {error}") from None
    raise StreamError(f"unknown message kind {kind!r}")


def _apply_full(message: Message) -> Snapshot:
    _, origin, serial, synced, soa, negative_ttl, generation, names, below = message
    return Snapshot(
        origin=tuple(origin),
        serial=int(serial),
        synced=bool(synced),
        names=immutables.Map((tuple(key), _read_node(node)) for key, node in names),
        soa=_read_rrset(soa),
        negative_ttl=int(negative_ttl),
        generation=int(generation),
        below=immutables.Map((tuple(key), int(count)) for key, count in below),
        lineage=object(),
    )


def _apply_change(current: Snapshot | None, message: Message) -> Snapshot:
    _, base, serial, synced, soa, negative_ttl, generation, nodes, below, name_count, below_count = message
    if current is None:
        raise StreamError("a change arrived before any full snapshot")
    if current.generation != base:
        raise StreamError(f"a change from generation {base} arrived for generation {current.generation}")
    names = current.names.mutate()
    touched: set[NameKey] = set()
    for raw, node in nodes:
        key = tuple(raw)
        touched.add(key)
        if node is None:
            if key in names:
                del names[key]
        else:
            names[key] = _read_node(node)
    counts = current.below.mutate()
    for raw, count in below:
        parent = tuple(raw)
        if count is None:
            if parent in counts:
                del counts[parent]
        else:
            counts[parent] = int(count)
    result = Snapshot(
        origin=current.origin,
        serial=int(serial),
        synced=bool(synced),
        names=names.finish(),
        soa=_read_rrset(soa),
        negative_ttl=int(negative_ttl),
        generation=int(generation),
        below=counts.finish(),
        delta=Delta(current.generation, frozenset(touched)),
        lineage=current.lineage,
    )
    if len(result.names) != name_count or len(result.below) != below_count:
        raise StreamError(
            f"generation {generation}: {len(result.names)} names and {len(result.below)} parents "
            f"after the change, the writer has {name_count} and {below_count}"
        )
    return result
