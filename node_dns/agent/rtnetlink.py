"""The rtnetlink wire format the agent needs: dump requests out; links and addresses in. Pure.

Only what the agent reads is decoded: from RTM_NEWLINK the interface index, name and IFF_UP;
from RTM_NEWADDR the family, the interface index, the address (IFA_LOCAL, else IFA_ADDRESS),
its flags (IFA_FLAGS, all 32 bits; the header holds only the low 8), the IPv4 label and the
lifetimes (IFA_CACHEINFO). Every other attribute is skipped by its length, so a newer kernel
that adds attributes changes nothing here.

Why not a library: pyroute2 (0.9) imports every netlink family it knows (netfilter, nl80211,
devlink, WireGuard, ...) from its package ``__init__``, whatever one imports from it; that was
13.4 MB of the agent's RSS, a third of its 40 MB budget, for two dumps and one subscription.
The layouts below are those of linux/netlink.h, linux/rtnetlink.h, linux/if_link.h and
linux/if_addr.h, stable kernel ABI; native byte order, as netlink uses.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from node_dns.agent.registry import IPAddress

# linux/netlink.h
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH

# linux/rtnetlink.h: message types and the multicast groups of the legacy bind() mask.
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100

EVENT_NAMES = {
    RTM_NEWADDR: "RTM_NEWADDR",
    RTM_DELADDR: "RTM_DELADDR",
    RTM_NEWLINK: "RTM_NEWLINK",
    RTM_DELLINK: "RTM_DELLINK",
}
"""The notifications the agent counts (and acts on), by message type."""

# linux/if_link.h, linux/if_addr.h attribute types; linux/if.h link flag.
IFLA_IFNAME = 3
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_CACHEINFO = 6
IFA_FLAGS = 8
IFF_UP = 0x1
INFINITY_LIFE_TIME = 0xFFFFFFFF

HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), device type, index, flags, change mask
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
RTATTR = struct.Struct("=HH")  # length, type
CACHEINFO = struct.Struct("=IIII")  # preferred, valid (seconds), created, updated (1/100 s)
U32 = struct.Struct("=I")
ERRNO = struct.Struct("=i")


class DumpInterrupted(Exception):
    """The kernel's tables changed during the dump (NLM_F_DUMP_INTR): dump again."""


@dataclass(frozen=True, slots=True)
class Message:
    """One netlink message: its type, flags, sequence number and payload (after the header)."""

    type: int
    flags: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    up: bool


@dataclass(frozen=True, slots=True)
class Address:
    """An RTM_NEWADDR as the agent reads it; lifetimes in seconds, None when infinite/absent."""

    index: int
    ip: IPAddress
    flags: int
    label: str = ""
    preferred: int | None = None
    valid: int | None = None


def _align(length: int) -> int:
    return (length + 3) & ~3


def dump_request(kind: int, seq: int) -> bytes:
    """An RTM_GETLINK or RTM_GETADDR dump of every family (AF_UNSPEC)."""
    body = IFINFOMSG.pack(0, 0, 0, 0, 0) if kind == RTM_GETLINK else IFADDRMSG.pack(0, 0, 0, 0, 0)
    return HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def messages(data: bytes) -> Iterator[Message]:
    """The messages of one datagram (a dump part holds many; a notification usually one)."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, flags, seq, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            raise ValueError(f"netlink message of length {length} at {offset} of {len(data)} bytes")
        yield Message(kind, flags, seq, data[offset + HEADER.size : offset + length])
        offset += _align(length)


def error_code(message: Message) -> int:
    """The errno of an NLMSG_ERROR (0: an acknowledgement) or of an NLMSG_DONE (0: complete)."""
    if len(message.payload) < ERRNO.size:
        return 0
    return -int(ERRNO.unpack_from(message.payload)[0])


def attributes(payload: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each route attribute from ``offset``; nested/byte-order bits masked off."""
    while offset + RTATTR.size <= len(payload):
        length, kind = RTATTR.unpack_from(payload, offset)
        if length < RTATTR.size:
            return
        yield kind & 0x3FFF, payload[offset + RTATTR.size : offset + length]
        offset += _align(length)


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def link(payload: bytes) -> Link:
    """An RTM_NEWLINK payload: index, name, and whether the interface is administratively up."""
    _, _, index, flags, _ = IFINFOMSG.unpack_from(payload)
    name = ""
    for kind, value in attributes(payload, IFINFOMSG.size):
        if kind == IFLA_IFNAME:
            name = _text(value)
    return Link(index, name, bool(flags & IFF_UP))


def address(payload: bytes) -> Address | None:
    """An RTM_NEWADDR payload (None when it carries no IPv4/IPv6 address).

    IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links
    and the same address otherwise, so IFA_LOCAL wins when both are present.
    """
    _, _, header_flags, _, index = IFADDRMSG.unpack_from(payload)
    local = peer = None
    flags: int | None = None
    label = ""
    preferred = valid = None
    for kind, value in attributes(payload, IFADDRMSG.size):
        if kind == IFA_LOCAL:
            local = value
        elif kind == IFA_ADDRESS:
            peer = value
        elif kind == IFA_FLAGS and len(value) >= U32.size:
            flags = int(U32.unpack_from(value)[0])
        elif kind == IFA_LABEL:
            label = _text(value)
        elif kind == IFA_CACHEINFO and len(value) >= CACHEINFO.size:
            prefered_lft, valid_lft, _, _ = CACHEINFO.unpack_from(value)
            preferred = None if prefered_lft == INFINITY_LIFE_TIME else int(prefered_lft)
            valid = None if valid_lft == INFINITY_LIFE_TIME else int(valid_lft)
    raw = local or peer
    if raw is None or len(raw) not in (4, 16):
        return None
    ip = ipaddress.ip_address(raw)
    return Address(index, ip, header_flags if flags is None else flags, label, preferred, valid)
