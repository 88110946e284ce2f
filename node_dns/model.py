"""Frozen values that cross the layers: what sources know about a node, and nothing else.

This module imports nothing from node_dns, so every layer can depend on it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TypeAlias

from pydantic import BaseModel, ConfigDict

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


class Frozen(BaseModel):
    """Immutable, hashable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeFacts(Frozen):
    """What the zone needs to know about one Node, already validated.

    Sources build these from Node objects; the zone decides membership from them. Keeping this
    small is what makes per-event work proportional to what changed.
    """

    name: str
    areas: frozenset[str] = frozenset()
    ips: tuple[IPAddress, ...] = ()
    ready: bool = False
    schedulable: bool = True
    deleting: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    """The Node's labels, sorted by key; filled only when something reads them (render hooks),
    so a label change costs nothing otherwise."""


FAMILY_PREFIXES: dict[str, int] = {"v4": 4, "v6": 6}
"""First labels that select one address family: ``v4.<name>`` answers only A records and
``v6.<name>`` only AAAA, for areas and Services alike. They are reserved: an area or a Service
named ``v4`` or ``v6`` is rejected (with a warning), since its name would clash with a prefix."""


class ServiceFacts(Frozen):
    """What the zone needs to know about one Service: whether it is opted in to be served."""

    namespace: str
    name: str
    exposed: bool = False


class SliceFacts(Frozen):
    """One EndpointSlice reduced to the nodes its endpoints run on.

    ``ready``: nodes hosting an endpoint whose ``conditions.ready`` is true (or unset, as
    kube-proxy reads it). ``terminating``: nodes hosting an endpoint that is serving and
    terminating, the fallback when a Service has no ready endpoint at all.
    """

    namespace: str
    name: str
    service: str
    """The Service it belongs to (label ``kubernetes.io/service-name``); empty if unlabelled."""
    ready: frozenset[str] = frozenset()
    terminating: frozenset[str] = frozenset()


def parse_ip(text: str) -> IPAddress:
    """Parse an address, folding IPv4-mapped IPv6 (::ffff:1.2.3.4) into IPv4."""
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_dns_label(text: str) -> bool:
    """One lower-case DNS label: a-z, 0-9 and '-' (not first or last), 1-63 characters.

    The rule for areas, namespaces and each label of a name, wherever they come from (settings,
    annotations). ASCII is checked too, because ``str.lower()`` folds some non-ASCII letters
    into ASCII (KELVIN SIGN -> 'k').
    """
    return text.isascii() and _DNS_LABEL.fullmatch(text) is not None
