"""A snapshot as a zone file (RFC 1035 master file), for troubleshooting.

What is printed is exactly what the snapshot answers: the SOA and NS of the apex, glue, every
area and Service name and their ``v4.``/``v6.`` family names. Names are absolute, one record per
line, apex first and then in DNS canonical order (RFC 4034 §6.1), so two dumps diff cleanly and
the text loads into NSD, knot or BIND as is. Empty non-terminals appear as comments; a name
without records (a Service with no endpoints, which answers NODATA) carries the private-use
``TYPE65280`` marker that zone transfers carry too, so this text equals a secondary's zone.
"""

from __future__ import annotations

from node_dns.protocol import TYPE_NAMES
from node_dns.zone import snapshot


def _name(key: snapshot.NameKey) -> str:
    return ".".join(label.decode("ascii", "backslashreplace") for label in key) + "."


def render(snap: snapshot.Snapshot) -> str:
    """The zone file text; a comment header says whether the zone is authoritative yet."""
    origin = _name(snap.origin)
    lines = [
        f"; zone {origin} serial {snap.serial} (generation {snap.generation})",
    ]
    if not snap.synced:
        lines.append("; NOT SYNCED: no complete node list yet, every query is answered SERVFAIL")
    lines.append(f"$ORIGIN {origin}")
    for key in snap.owners():
        node = snap.names[key]
        owner = _name(key)
        if not node.rrsets:
            lines.append(f"; {owner} exists with no records (NODATA): marked for secondaries")
        rrsets = snap.transferred(node)
        for rtype in sorted(rrsets, key=snapshot.type_order):
            rrset = rrsets[rtype]
            type_name = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
            lines.extend(f"{owner} {rrset.ttl} IN {type_name} {text}" for text in rrset.texts)
    if snap.empty_non_terminals:
        lines.append("; empty non-terminals (NODATA):")
        lines.extend(f";   {_name(key)}" for key in sorted(snap.empty_non_terminals, key=snapshot.canonical))
    return "\n".join(lines) + "\n"
