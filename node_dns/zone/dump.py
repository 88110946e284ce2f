"""A snapshot as a zone file (RFC 1035 master file), for troubleshooting.

What is printed is exactly what the snapshot answers: the SOA and NS of the apex, glue, every
area and Service name and their ``v4.``/``v6.`` family names. Names are absolute, one record per
line, apex first and then in DNS canonical order (RFC 4034 §6.1), so two dumps diff cleanly and
the text loads into NSD, knot or BIND as is. Empty non-terminals appear as comments; a name
without records (a Service with no endpoints, which answers NODATA) carries the private-use
``TYPE65280`` marker that zone transfers carry too, so this text equals a secondary's zone.
"""

from __future__ import annotations

from collections.abc import Iterator

from node_dns.protocol import TYPE_NAMES
from node_dns.zone import snapshot


def _name(key: snapshot.NameKey) -> str:
    return ".".join(label.decode("ascii", "backslashreplace") for label in key) + "."


def render(snap: snapshot.Snapshot) -> str:
    """The zone file text; a comment header says whether the zone is authoritative yet."""
    return "".join(lines(snap))


def lines(snap: snapshot.Snapshot) -> Iterator[str]:
    """:func:`render` a line at a time (each with its newline): to write it in slices."""
    origin = _name(snap.origin)
    yield f"; zone {origin} serial {snap.serial} (generation {snap.generation})\n"
    if not snap.synced:
        yield "; NOT SYNCED: no complete node list yet, every query is answered SERVFAIL\n"
    yield f"$ORIGIN {origin}\n"
    for key in snap.owners():
        node = snap.names[key]
        owner = _name(key)
        if not node.rrsets:
            yield f"; {owner} exists with no records (NODATA): marked for secondaries\n"
        rrsets = snap.transferred(node)
        for rtype in sorted(rrsets, key=snapshot.type_order):
            rrset = rrsets[rtype]
            type_name = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
            for text in rrset.texts:
                yield f"{owner} {rrset.ttl} IN {type_name} {text}\n"
    if snap.empty_non_terminals:
        yield "; empty non-terminals (NODATA):\n"
        for key in sorted(snap.empty_non_terminals, key=snapshot.canonical):
            yield f";   {_name(key)}\n"
