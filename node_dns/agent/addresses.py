"""Which of a node's interface addresses it publishes: a pure function of what netlink reported.

The rules, in the order they are applied (the first that refuses an address names the reason):

1. the interface: it must be up, match an include pattern and no exclude pattern (exclude wins);
2. the family must be one of those asked for;
3. IPv6 state: tentative (duplicate address detection still running), DAD-failed and deprecated
   (preferred lifetime over) addresses never count; temporary (privacy) addresses only when asked;
4. reachability: globally reachable per the IANA registries (see :mod:`node_dns.agent.registry`),
   or inside one of the extra allowed networks (LAN-only setups). Loopback, link-local,
   multicast and unspecified addresses never count, whatever the allowed networks say: they
   mean nothing to a client on another link.

Finally at most ``limit`` addresses are kept, the two families taking turns (so a cap of 2 with
three IPv4 and one IPv6 address keeps one of each), each family in numeric order: the same
addresses give the same annotation, whatever order the kernel lists them in.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from node_dns.agent.registry import IPAddress, IPNetwork, globally_reachable
from node_dns.settings.agent import DEFAULT_EXCLUDE

# Address flags (IFA_F_* in linux/if_addr.h); netlink reports them in IFA_FLAGS. Bit 0x01 is
# IFA_F_TEMPORARY for IPv6 but IFA_F_SECONDARY for IPv4 (a second address in the same subnet).
IFA_F_TEMPORARY = 0x01
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40


_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


@dataclass(frozen=True, slots=True)
class InterfaceAddress:
    """One address as netlink reports it, with its interface's name and state."""

    interface: str
    ip: IPAddress
    flags: int = 0
    link_up: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    """What the operator asked for (built from the agent's settings)."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    allowed: tuple[IPNetwork, ...] = ()
    families: frozenset[int] = frozenset({4, 6})
    temporary: bool = False
    limit: int = 16


def never_publishable(ip: IPAddress) -> bool:
    """Addresses no allowed network can make count: they mean nothing off the node's link."""
    return (
        ip.is_loopback
        or ip.is_multicast
        or ip.is_unspecified
        or any(ip in net for net in _LINK_LOCAL if net.version == ip.version)
    )


def interface_selected(name: str, policy: Policy) -> bool:
    """Glob patterns on the interface name, case-sensitive as Linux names are; exclude wins."""
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.exclude):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.include)


def refusal(address: InterfaceAddress, policy: Policy) -> str | None:
    """Why ``address`` is not published, or None when it is."""
    ip = address.ip
    if not interface_selected(address.interface, policy):
        return "interface excluded"
    if not address.link_up:
        return "interface down"
    if ip.version not in policy.families:
        return "family not published"
    if address.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
        return "tentative"
    if address.flags & IFA_F_DEPRECATED:
        return "deprecated"
    if ip.version == 6 and address.flags & IFA_F_TEMPORARY and not policy.temporary:
        return "temporary"
    if never_publishable(ip):
        return "loopback, link-local, multicast or unspecified"
    if globally_reachable(ip):
        return None
    if any(ip in net for net in policy.allowed if net.version == ip.version):
        return None
    return "not globally reachable"


@dataclass(frozen=True, slots=True)
class Selection:
    """The addresses to publish, and how many qualifying ones the cap left out."""

    ips: tuple[IPAddress, ...]
    capped: int = 0

    def annotation(self) -> str:
        """The annotation value: comma separated, IPv4 first, numeric order within a family."""
        return ",".join(str(ip) for ip in sorted(self.ips, key=_order))


def _order(ip: IPAddress) -> tuple[int, int]:
    return ip.version, int(ip)


def select(addresses: Iterable[InterfaceAddress], policy: Policy) -> Selection:
    """The addresses to publish (see the module docstring for the rules and their order)."""
    chosen = {address.ip for address in addresses if refusal(address, policy) is None}
    by_family = [sorted((ip for ip in chosen if ip.version == v), key=_order) for v in (4, 6)]
    kept: list[IPAddress] = []
    while len(kept) < policy.limit and any(by_family):
        for family in by_family:
            if family and len(kept) < policy.limit:
                kept.append(family.pop(0))
    return Selection(tuple(sorted(kept, key=_order)), len(chosen) - len(kept))
