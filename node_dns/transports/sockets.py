"""The DNS UDP socket's kernel side: its receive buffer, and the datagrams the kernel dropped.

A burst of queries that arrives while the event loop is busy (a publication, a collection, a
scrape) waits in the socket's receive buffer. When that buffer is full the kernel drops the
datagram and the client retries after its timeout, a second or more. The default buffer
(``net.core.rmem_default``, ~208 KiB) holds a few milliseconds of traffic at 60k queries/s;
:func:`size_receive_buffer` asks for more, and says once, clearly, when the kernel gives less.

Drops are the socket's ``sk_drops``, the counter ``SO_RXQ_OVFL`` hands out as ancillary data,
read at scrape time without any cost on the receive path whatever the path is (batched
``recvmmsg``, asyncio's endpoint, uvloop): from a socket we hold, by ``SO_MEMINFO`` (one
``getsockopt``, microseconds); for sockets handed to worker processes, from the ``drops`` column
of their inodes in ``/proc/net/udp`` and ``/proc/net/udp6`` (the kernel prints every UDP socket of
the namespace there, so that reading is taken off the event loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("node_dns.transports")

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
"""Like SO_RCVBUF but ignores ``net.core.rmem_max``; needs CAP_NET_ADMIN (Linux)."""
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")
PROC_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))


@dataclass(frozen=True, slots=True)
class Sizing:
    """What was asked for and what the kernel gave (both as the application sees them, bytes)."""

    wanted: int
    granted: int
    forced: bool
    """True when SO_RCVBUFFORCE was needed (and allowed) to pass ``net.core.rmem_max``."""

    @property
    def capped(self) -> bool:
        return self.granted < self.wanted


def granted(sock: socket.socket) -> int:
    """The receive buffer the kernel gave, as asked for: Linux reports twice the usable size
    (it reserves half for bookkeeping), so the figure is halved there to compare with the setting."""
    value = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return value // 2 if sys.platform.startswith("linux") else value


def size_receive_buffer(sock: socket.socket, wanted: int, *, force: bool = True) -> Sizing | None:
    """Ask for ``wanted`` bytes of receive buffer (0: leave the kernel's default, return None).

    SO_RCVBUF is capped silently at ``net.core.rmem_max``; when that cap bites and ``force`` is
    on, SO_RCVBUFFORCE is tried (it works with CAP_NET_ADMIN, e.g. as root). The result says
    what the kernel gave; :func:`report` writes the log line.
    """
    if wanted <= 0:
        return None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    if granted(sock) >= wanted or not force:
        return Sizing(wanted, granted(sock), forced=False)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, wanted)
    except OSError:  # EPERM without CAP_NET_ADMIN; ENOPROTOOPT off Linux
        return Sizing(wanted, granted(sock), forced=False)
    return Sizing(wanted, granted(sock), forced=granted(sock) >= wanted)


def rmem_max(path: Path = RMEM_MAX) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def report(sizing: Sizing | None, *, limit: int | None) -> None:
    """One line: a warning when the kernel capped the buffer (with the cure), else a debug line."""
    if sizing is None:
        return
    if sizing.capped:
        cap = f"net.core.rmem_max={limit}" if limit is not None else "net.core.rmem_max"
        log.warning(
            "UDP receive buffer is %d bytes, not the %d asked for (--udp-receive-buffer): the kernel "
            "caps it at %s and this process lacks CAP_NET_ADMIN to pass the cap; queries arriving in a "
            "burst while the server is busy are dropped sooner. Raise the cap on the host "
            "(sysctl -w net.core.rmem_max=%d) or lower --udp-receive-buffer",
            sizing.granted,
            sizing.wanted,
            cap,
            sizing.wanted,
        )
    else:
        log.debug(
            "UDP receive buffer: %d bytes%s",
            sizing.granted,
            " (past net.core.rmem_max with CAP_NET_ADMIN)" if sizing.forced else "",
        )


SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
"""A socket's memory counters as an array of u32 (Linux >= 4.12); drops are at index 8."""
MEMINFO_DROPS = 8


def socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on a socket we hold (its ``sk_drops``), or None if not told.

    The counter is 32 bits wide: it wraps after ~4 billion drops, which Prometheus' ``rate``
    reads as a counter reset.
    """
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (MEMINFO_DROPS + 1))
    except OSError:
        return None
    if len(raw) < 4 * (MEMINFO_DROPS + 1):
        return None
    return int.from_bytes(raw[4 * MEMINFO_DROPS : 4 * (MEMINFO_DROPS + 1)], sys.byteorder)


def held_socket_drops(sock: socket.socket) -> OnLoop | OffLoop:
    """The drops of a socket we hold: by ``SO_MEMINFO`` on the loop where the kernel has it,
    else from its ``/proc/net/udp`` line, off the loop."""
    if socket_drops(sock) is not None:
        return OnLoop(lambda: socket_drops(sock))
    inodes = frozenset({inode(sock)})
    return OffLoop(lambda: kernel_drops(inodes))


def inode(sock: socket.socket | int) -> int:
    """The socket's inode number: its key in /proc/net/udp."""
    return os.fstat(sock if isinstance(sock, int) else sock.fileno()).st_ino


def parse_drops(lines: Iterable[str], inodes: frozenset[int]) -> dict[int, int]:
    """``{inode: drops}`` for the given sockets, from the text of /proc/net/udp or udp6 (pure)."""
    found: dict[int, int] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 13 or not fields[9].isdigit():
            continue  # the header, or a line of a format we do not know
        number = int(fields[9])
        if number in inodes:
            found[number] = int(fields[12])
    return found


def kernel_drops(inodes: frozenset[int], tables: Iterable[Path] = PROC_TABLES) -> int | None:
    """Datagrams the kernel dropped on these sockets so far, or None where /proc does not say.

    The tables list every UDP socket of the network namespace (thousands on a busy host): only
    the lines naming one of ``inodes`` are split, found by a plain substring search (this runs in
    a worker thread that holds the GIL while it scans: 0.06 ms for 1,000 sockets, where a
    regular expression took 0.8 ms).
    """
    total: dict[int, int] = {}
    readable = False
    for table in tables:
        try:
            text = table.read_text()
        except OSError:
            continue
        readable = True
        total.update(parse_drops(_lines_naming(text, inodes), inodes))
    return sum(total.values()) if readable else None


def _lines_naming(text: str, inodes: frozenset[int]) -> Iterator[str]:
    """The lines of ``text`` where one of ``inodes`` stands as a word (other columns may match too:
    :func:`parse_drops` keeps the lines where it is the inode column)."""
    for number in inodes:
        needle = f" {number} "
        at = text.find(needle)
        while at >= 0:
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            yield text[text.rfind("\n", 0, at) + 1 : end]
            at = text.find(needle, end)


class OnLoop:
    """A reading cheap enough to take on the event loop at each scrape (same interface as
    :class:`OffLoop`)."""

    def __init__(self, read: Callable[[], int | None]) -> None:
        self._read = read
        self.value: int | None = None

    async def refresh(self) -> None:
        self.value = self._read()

    def __call__(self) -> int | None:
        return self.value


class OffLoop:
    """A reading taken in a worker thread when asked to (``refresh``), served from memory.

    Reading /proc/net/udp and udp6 makes the kernel print every UDP socket of the namespace:
    18-20 ms on the loaded test machine, a stall of every query if done on the event loop at
    each scrape. The metrics handler awaits ``refresh`` first, and the collector reads the value.
    """

    def __init__(self, read: Callable[[], int | None]) -> None:
        self._read = read
        self.value: int | None = None

    async def refresh(self) -> None:
        self.value = await asyncio.to_thread(self._read)

    def __call__(self) -> int | None:
        return self.value
