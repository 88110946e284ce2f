"""The node's interface addresses from the kernel over rtnetlink (pyroute2), and word of changes.

Two sockets: one subscribed to the link and address multicast groups, which only says *that*
something changed, and one that dumps links and addresses when asked. Every change is answered
with a full dump rather than by applying the event to a copy: a dump of a node's addresses is
a few kilobytes, and a missed or reordered event (a socket overrun under a burst of changes)
can then never leave a stale address behind. Nothing polls: the agent sleeps until the kernel
writes to the event socket.

Reading addresses needs no capability: any process may dump rtnetlink and join these groups.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from node_dns.agent.addresses import InterfaceAddress

log = logging.getLogger(__name__)

# linux/rtnetlink.h multicast groups and linux/if.h link flags.
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
IFF_UP = 0x1
EVENT_TYPES = ("RTM_NEWADDR", "RTM_DELADDR", "RTM_NEWLINK", "RTM_DELLINK")


def _attr(message: Any, name: str) -> Any:
    return message.get_attr(name)


def address_of(message: Any, links: Mapping[int, tuple[str, bool]]) -> InterfaceAddress | None:
    """One RTM_NEWADDR message as an :class:`InterfaceAddress` (None if it names no address).

    IFA_LOCAL is the address of the interface; IFA_ADDRESS is the peer on point-to-point links
    and the same address otherwise. IFA_FLAGS carries all 32 flag bits; the header only 8.
    """
    text = _attr(message, "IFA_LOCAL") or _attr(message, "IFA_ADDRESS")
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(str(text).partition("%")[0])
    except ValueError:
        return None
    flags = _attr(message, "IFA_FLAGS")
    name, up = links.get(int(message["index"]), (str(_attr(message, "IFA_LABEL") or ""), False))
    return InterfaceAddress(
        interface=name, ip=ip, flags=int(message["flags"] if flags is None else flags), link_up=up
    )


class Netlink:
    """Dumps and change notifications; ``counts`` holds netlink events by message type."""

    def __init__(self) -> None:
        self._dump: Any = None
        self._events: Any = None
        self.counts: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)

    async def open(self) -> None:
        """Subscribe first, then dump: a change between the two is never lost."""
        from pyroute2 import AsyncIPRoute  # imported here: the controller never loads it

        self._events = AsyncIPRoute()
        await self._events.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        self._dump = AsyncIPRoute()

    def close(self) -> None:
        for sock in (self._events, self._dump):
            if sock is not None:
                sock.close()
        self._events = self._dump = None

    async def addresses(self) -> list[InterfaceAddress]:
        """Every address of every interface right now, with interface names and up/down state."""
        links: dict[int, tuple[str, bool]] = {}
        async for link in await self._dump.link("dump"):
            links[int(link["index"])] = (str(_attr(link, "IFLA_IFNAME")), bool(link["flags"] & IFF_UP))
        found = []
        async for message in await self._dump.addr("dump"):
            address = address_of(message, links)
            if address is not None:
                found.append(address)
        return found

    async def changes(self) -> AsyncIterator[int]:
        """Yields the number of relevant events each time the kernel reports a batch of them."""
        while True:
            relevant = 0
            async for message in self._events.get():
                kind = str(message.get("event", ""))
                if kind in self.counts:
                    self.counts[kind] += 1
                    relevant += 1
            if relevant:
                yield relevant


async def follow(netlink: Netlink, on_change: Callable[[], None], *, reopen_delay: float = 1.0) -> None:
    """Call ``on_change`` after every batch of events, forever; a failed socket is reopened.

    After a reopen ``on_change`` is called once more: events may have been missed meanwhile.
    """
    while True:
        try:
            async for _ in netlink.changes():
                on_change()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an overrun (ENOBUFS) or a closed socket: start over
            log.warning("netlink event socket failed (%s: %s); reopening", type(error).__name__, error)
        netlink.close()
        await asyncio.sleep(reopen_delay)
        await netlink.open()
        on_change()
