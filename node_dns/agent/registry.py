"""Which addresses are globally reachable, per the IANA IPv4 and IPv6 Special-Purpose Address Registries.

The tables below are the registries' rows with their "Globally Reachable" column. An address is
judged by the most specific row that contains it (192.0.0.9/32 inside 192.0.0.0/24, 2001:3::/32
inside 2001::/23). Rows whose column reads "N/A" (the deprecated 6to4 relay anycast block, 6to4,
Teredo, the first ORCHID block) count as not reachable: such an address is a tunnel endpoint or a
retired assignment, not an address a node should be found at. Two rules come from outside the
special-purpose registries: multicast is never a node address, and in IPv6 only the Global Unicast
space 2000::/3 (IANA IPv6 Address Space registry) is, unless a special-purpose row says otherwise
(64:ff9b::/96 does).

Python's :attr:`ipaddress.IPv4Address.is_global` is close but not the same, and it changes between
Python releases; :func:`python_differences` lists where the running Python disagrees (documented
in docs/agent.md). Pure module: no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Row:
    """One registry entry; ``reachable`` is None where the registry says N/A."""

    block: IPNetwork
    name: str
    reachable: bool | None


def _rows(entries: list[tuple[str, str, bool | None]]) -> tuple[Row, ...]:
    return tuple(Row(ipaddress.ip_network(block), name, reachable) for block, name, reachable in entries)


IPV4_SPECIAL = _rows(
    [
        ("0.0.0.0/8", '"This network"', False),
        ("0.0.0.0/32", '"This host on this network"', False),
        ("10.0.0.0/8", "Private-Use", False),
        ("100.64.0.0/10", "Shared Address Space", False),
        ("127.0.0.0/8", "Loopback", False),
        ("169.254.0.0/16", "Link Local", False),
        ("172.16.0.0/12", "Private-Use", False),
        ("192.0.0.0/24", "IETF Protocol Assignments", False),
        ("192.0.0.0/29", "IPv4 Service Continuity Prefix", False),
        ("192.0.0.8/32", "IPv4 dummy address", False),
        ("192.0.0.9/32", "Port Control Protocol Anycast", True),
        ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", True),
        ("192.0.0.170/32", "NAT64/DNS64 Discovery", False),
        ("192.0.0.171/32", "NAT64/DNS64 Discovery", False),
        ("192.0.2.0/24", "Documentation (TEST-NET-1)", False),
        ("192.31.196.0/24", "AS112-v4", True),
        ("192.52.193.0/24", "AMT", True),
        ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", None),
        ("192.168.0.0/16", "Private-Use", False),
        ("192.175.48.0/24", "Direct Delegation AS112 Service", True),
        ("198.18.0.0/15", "Benchmarking", False),
        ("198.51.100.0/24", "Documentation (TEST-NET-2)", False),
        ("203.0.113.0/24", "Documentation (TEST-NET-3)", False),
        ("240.0.0.0/4", "Reserved", False),
        ("255.255.255.255/32", "Limited Broadcast", False),
    ]
)

IPV6_SPECIAL = _rows(
    [
        ("::1/128", "Loopback Address", False),
        ("::/128", "Unspecified Address", False),
        ("::ffff:0:0/96", "IPv4-mapped Address", False),
        ("64:ff9b::/96", "IPv4-IPv6 Translat.", True),
        ("64:ff9b:1::/48", "IPv4-IPv6 Translat.", False),
        ("100::/64", "Discard-Only Address Block", False),
        ("100:0:0:1::/64", "Dummy IPv6 Prefix", False),
        ("2001::/23", "IETF Protocol Assignments", False),
        ("2001::/32", "TEREDO", None),
        ("2001:1::1/128", "Port Control Protocol Anycast", True),
        ("2001:1::2/128", "Traversal Using Relays around NAT Anycast", True),
        ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", True),
        ("2001:2::/48", "Benchmarking", False),
        ("2001:3::/32", "AMT", True),
        ("2001:4:112::/48", "AS112-v6", True),
        ("2001:10::/28", "Deprecated (previously ORCHID)", None),
        ("2001:20::/28", "ORCHIDv2", True),
        ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", True),
        ("2001:db8::/32", "Documentation", False),
        ("2002::/16", "6to4", None),
        ("2620:4f:8000::/48", "Direct Delegation AS112 Service", True),
        ("3fff::/20", "Documentation", False),
        ("5f00::/16", "Segment Routing (SRv6) SIDs", False),
        ("fc00::/7", "Unique-Local", False),
        ("fe80::/10", "Link-Local Unicast", False),
    ]
)

GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
"""IANA IPv6 Address Space: the only block allocated as Global Unicast."""


def special_row(ip: IPAddress) -> Row | None:
    """The most specific special-purpose row containing ``ip``, or None."""
    rows = IPV4_SPECIAL if ip.version == 4 else IPV6_SPECIAL
    best: Row | None = None
    for row in rows:
        if ip in row.block and (best is None or row.block.prefixlen > best.block.prefixlen):
            best = row
    return best


def globally_reachable(ip: IPAddress) -> bool:
    """True when the registries say a datagram to ``ip`` is forwardable beyond its domain."""
    if ip.is_multicast:
        return False
    row = special_row(ip)
    if row is not None:
        return row.reachable is True
    return ip.version == 4 or ip in GLOBAL_UNICAST_V6


def representative(row: Row) -> IPAddress:
    """An address that the row itself governs (not a more specific row inside it)."""
    first = row.block.network_address
    for offset in (*range(17), row.block.num_addresses // 2):
        candidate: IPAddress = first + min(offset, row.block.num_addresses - 1)
        if special_row(candidate) == row:
            return candidate
    raise ValueError(f"no address of {row.block} is governed by its own row")


OUTSIDE_REGISTRY = _rows(
    [
        ("224.0.0.0/4", "Multicast (not a node address)", False),
        ("ff00::/8", "Multicast (not a node address)", False),
        ("fec0::/10", "Deprecated site-local (outside 2000::/3)", False),
        ("4000::/3", "Reserved by IETF (outside 2000::/3)", False),
    ]
)
"""Blocks judged by the two rules from outside the special-purpose registries (samples only)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """A block where Python's ``is_global`` and :func:`globally_reachable` disagree."""

    block: IPNetwork
    name: str
    sample: IPAddress
    python: bool
    ours: bool


def python_differences() -> list[Difference]:
    """Where the running Python's ``is_global`` disagrees with :func:`globally_reachable`."""
    found = []
    samples = [(row, representative(row)) for row in IPV4_SPECIAL + IPV6_SPECIAL]
    samples += [(row, row.block.network_address + 1) for row in OUTSIDE_REGISTRY]
    for row, sample in samples:
        ours, theirs = globally_reachable(sample), sample.is_global
        if ours != theirs:
            found.append(Difference(row.block, row.name, sample, theirs, ours))
    return found
