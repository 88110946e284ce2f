"""The node's interface addresses from the kernel over rtnetlink, and word of changes.

Two sockets: one subscribed to the link and address multicast groups, which only says *that*
something changed, and one that dumps links and addresses when asked. Every change is answered
with a full dump rather than by applying the event to a copy: a dump of a node's addresses is
a few kilobytes, and a missed or reordered event can then never leave a stale address behind.
When the kernel drops notifications because the event socket's buffer is full (ENOBUFS, an
overrun under a burst of changes) that is one more reason to dump, and the socket goes on.
Nothing polls: the agent sleeps until the kernel writes to the event socket.

Reading addresses needs no capability: any process may dump rtnetlink and join these groups.
The wire format is :mod:`node_dns.agent.rtnetlink` (why not a library: see there).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable

from node_dns.agent import rtnetlink as rt
from node_dns.agent.addresses import InterfaceAddress

log = logging.getLogger(__name__)

EVENT_TYPES = tuple(rt.EVENT_NAMES.values())
GROUPS = rt.RTMGRP_LINK | rt.RTMGRP_IPV4_IFADDR | rt.RTMGRP_IPV6_IFADDR
RECEIVE = 65536
"""Bytes per recv: a dump part is at most 32 KiB (a page on older kernels); netlink truncates
a datagram larger than the buffer given."""
EVENT_BUFFER = 1 << 20
"""Receive buffer asked for the event socket (the kernel caps it at net.core.rmem_max)."""
DUMP_ATTEMPTS = 5


def _socket(groups: int) -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
    )
    try:
        if groups:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, EVENT_BUFFER)
        sock.bind((0, groups))
    except OSError:
        sock.close()
        raise
    return sock


def interface_addresses(links: list[rt.Link], found: list[rt.Address]) -> list[InterfaceAddress]:
    """Addresses with their interface's name and state (an index no link names: its IPv4 label)."""
    by_index = {entry.index: entry for entry in links}
    result = []
    for entry in found:
        owner = by_index.get(entry.index)
        name, up = (owner.name, owner.up) if owner is not None else (entry.label, False)
        result.append(InterfaceAddress(interface=name, ip=entry.ip, flags=entry.flags, link_up=up))
    return result


class Netlink:
    """Dumps and change notifications; ``counts`` holds netlink events by message type,
    ``overruns`` how often the kernel dropped notifications for lack of buffer."""

    def __init__(self) -> None:
        self._dump: socket.socket | None = None
        self._events: socket.socket | None = None
        self._seq = itertools.count(1)
        self.counts: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)
        self.overruns = 0

    async def open(self) -> None:
        """Subscribe first, then dump: a change between the two is never lost."""
        self._events = _socket(GROUPS)
        self._dump = _socket(0)

    def reopen_events(self) -> None:
        """A new event socket (the old one failed); the dump socket stays as it is."""
        if self._events is not None:
            self._events.close()
        self._events = _socket(GROUPS)

    def close(self) -> None:
        for sock in (self._events, self._dump):
            if sock is not None:
                sock.close()
        self._events = self._dump = None

    async def addresses(self) -> list[InterfaceAddress]:
        """Every address of every interface right now, with interface names and up/down state."""
        for attempt in range(1, DUMP_ATTEMPTS + 1):
            try:
                links = [rt.link(m.payload) for m in await self._dumped(rt.RTM_GETLINK, rt.RTM_NEWLINK)]
                found = [rt.address(m.payload) for m in await self._dumped(rt.RTM_GETADDR, rt.RTM_NEWADDR)]
            except rt.DumpInterrupted:
                if attempt == DUMP_ATTEMPTS:
                    raise
                continue
            return interface_addresses(links, [entry for entry in found if entry is not None])
        raise AssertionError("unreachable")  # pragma: no cover

    async def _dumped(self, request: int, wanted: int) -> list[rt.Message]:
        """The messages of type ``wanted`` of one complete dump.

        A dump given up on half-way (an error, a cancelled task) leaves the kernel still dumping
        into the socket, which refuses a new dump until that one is read: a new socket instead.
        """
        sock = self._dump
        if sock is None:
            raise OSError(errno.EBADF, "the netlink socket is closed")
        try:
            return await self._dump_on(sock, request, wanted)
        except BaseException:
            sock.close()
            self._dump = _socket(0)
            raise

    async def _dump_on(self, sock: socket.socket, request: int, wanted: int) -> list[rt.Message]:
        seq = next(self._seq)
        running = asyncio.get_running_loop()
        await running.sock_sendall(sock, rt.dump_request(request, seq))
        result: list[rt.Message] = []
        interrupted = False
        while True:
            data = await running.sock_recv(sock, RECEIVE)
            if not data:
                raise OSError(errno.EPIPE, "netlink dump ended without NLMSG_DONE")
            for message in rt.messages(data):
                if message.seq != seq:
                    continue  # the rest of a dump given up on (cancelled): not ours
                interrupted |= bool(message.flags & rt.NLM_F_DUMP_INTR)
                if message.type == rt.NLMSG_ERROR and rt.error_code(message):
                    code = rt.error_code(message)
                    raise OSError(code, f"netlink dump refused: {errno.errorcode.get(code, code)}")
                if message.type == rt.NLMSG_DONE:
                    if interrupted:
                        raise rt.DumpInterrupted()
                    return result
                if message.type == wanted:
                    result.append(message)

    async def changes(self) -> AsyncIterator[int]:
        """Yields the number of relevant events (an overrun counts as one) each time the kernel
        reports a batch of them."""
        running = asyncio.get_running_loop()
        while True:
            sock = self._events
            if sock is None:
                raise OSError(errno.EBADF, "the netlink socket is closed")
            try:
                first = await running.sock_recv(sock, RECEIVE)
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                yield self._overrun()
                continue
            queued, overrun = self._drain(sock)
            relevant = self._count([first, *queued]) + overrun
            if relevant:
                yield relevant

    def _overrun(self) -> int:
        self.overruns += 1
        log.warning("netlink notifications were dropped (socket buffer full): reading everything again")
        return 1

    def _drain(self, sock: socket.socket) -> tuple[list[bytes], int]:
        """What else is already queued, without waiting (a burst becomes one wake-up), and 1 if
        the kernel reported an overrun meanwhile."""
        queued: list[bytes] = []
        while True:
            try:
                queued.append(sock.recv(RECEIVE))
            except BlockingIOError:
                return queued, 0
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                return queued, self._overrun()

    def _count(self, datagrams: list[bytes]) -> int:
        relevant = 0
        for data in datagrams:
            for message in rt.messages(data):
                name = rt.EVENT_NAMES.get(message.type)
                if name is not None:
                    self.counts[name] += 1
                    relevant += 1
        return relevant


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
        except Exception as error:  # a closed or broken socket: start over
            log.warning("netlink event socket failed (%s: %s); reopening", type(error).__name__, error)
        await asyncio.sleep(reopen_delay)
        netlink.reopen_events()
        on_change()
