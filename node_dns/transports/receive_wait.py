"""How long a query waited in the socket before node-dns read it, from the kernel's receive stamps.

The event-loop lag (:mod:`node_dns.loop_lag`) says how late a timer fired; a timer that slept in
an idle loop can wake late while no query waits at all. This is the receive path's own measure:
the kernel stamps each datagram when it arrives (CLOCK_REALTIME), and the time from that stamp
to the read is how long the query sat in the receive queue. The queue is first in, first out, so
the first datagram of a read is its oldest: one stamp per read is that read's longest wait.

Two ways to get the stamp, one per kind of reader:

- the batches (recvmmsg, :mod:`.batch` and the compiled one) turn on ``SO_TIMESTAMPNS`` and give
  a control buffer to the first message of the vector only (:func:`enable`, :func:`stamp`);
- the asyncio datagram endpoint (response rate limiting, or no recvmmsg) hands over bytes and an
  address, no ancillary data; ``SIOCGSTAMPNS`` asks the socket for the stamp of the datagram it
  returned last (:class:`LastStamp`), one system call per datagram, so there each datagram is a
  read of its own. That ioctl fails while ``SO_TIMESTAMPNS`` is on, so :class:`LastStamp` turns it off.

Where neither works (not Linux), nothing is recorded rather than a made-up wait. The kernel turns
stamping on a moment after the first socket on the machine asks (a deferred switch): a datagram
that arrives before that is stamped when it is read, a wait of 0 (at start only).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from typing import Protocol

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's value (asm-generic); the same number names the control message (SCM_TIMESTAMPNS)."""
SIOCGSTAMPNS = 0x8907
"""The stamp of the last datagram read from the socket, as a struct timespec."""

_CMSG = struct.Struct("@Nii")  # struct cmsghdr: cmsg_len (size_t), cmsg_level, cmsg_type
_TIMESPEC = struct.Struct("@ll")  # struct timespec: tv_sec, tv_nsec (both long)
_ALIGN = ctypes.sizeof(ctypes.c_size_t)
_DATA = (_CMSG.size + _ALIGN - 1) // _ALIGN * _ALIGN  # CMSG_DATA's offset
CONTROL_SIZE = _DATA + (_TIMESPEC.size + _ALIGN - 1) // _ALIGN * _ALIGN
"""CMSG_SPACE(sizeof(struct timespec)): room for one stamp."""
_NO_STAMP = bytes(_TIMESPEC.size)


class _Socket(Protocol):
    """A socket, or the stand-in uvloop's transports hand out."""

    def fileno(self) -> int: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def waited(now: int, stamp: int) -> float:
    """Seconds from ``stamp`` to ``now`` (ns of CLOCK_REALTIME, ``time.time_ns``). A clock stepped
    back in between gives 0: the wait is unknown but short, not years."""
    return (now - stamp) * 1e-9 if now > stamp else 0.0


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to stamp every datagram ``sock`` receives; False where it cannot."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def stamp(control: bytes | memoryview, length: int) -> int | None:
    """The receive stamp (ns) in a message's control data of ``length`` bytes, or None."""
    offset = 0
    while offset + _DATA <= length:
        size, level, kind = _CMSG.unpack_from(control, offset)
        if size < _CMSG.size:
            return None
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and size >= _DATA + _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(control, offset + _DATA)
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
        offset += (size + _ALIGN - 1) // _ALIGN * _ALIGN
    return None


class LastStamp:
    """The stamp of the datagram last read from a socket, by ``SIOCGSTAMPNS`` (the asyncio path)."""

    def __init__(self, sock: _Socket) -> None:
        self._fd = sock.fileno()
        self.works = True
        """False when the socket refused the ioctl for another reason than "nothing read yet"."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 0)  # with it on, the ioctl fails
            fcntl.ioctl(self._fd, SIOCGSTAMPNS, _NO_STAMP)  # the first call turns stamping on
        except OSError as error:
            self.works = error.errno == errno.ENOENT  # no datagram stamped yet, as expected

    def read(self) -> int | None:
        """The stamp in ns, or None (no stamp for it: timestamps unavailable)."""
        if not self.works:
            return None
        try:
            raw = fcntl.ioctl(self._fd, SIOCGSTAMPNS, _NO_STAMP)
        except OSError:
            return None
        seconds, nanoseconds = _TIMESPEC.unpack(raw)
        return int(seconds) * 1_000_000_000 + int(nanoseconds)
