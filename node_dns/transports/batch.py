"""UDP with recvmmsg/sendmmsg (Linux): up to BATCH datagrams per system call each way.

Under load most of the cost of a cached answer is in the kernel, not in Python: one recvmsg and
one sendmsg per query, and a wake-up of the client for every reply. Reading all queued datagrams
with one recvmmsg and sending all replies with one sendmmsg cut node-dns' CPU per query by about
a quarter here (measured with dnsperf; see docs/benchmarks.md).

Two implementations of the same loop: the compiled one (:mod:`node_dns.transports.accel`
loads ``_fastudp``), which answers cache hits in C and hands every other datagram to
:meth:`BatchedUdp._miss`, and the pure-Python one below (no compiler, or switched off), which
is also the reference. Answers are the same bytes as :class:`node_dns.transports.udp.UdpProtocol`
sends: all of them end in ``Responder.respond`` or splice its cached answers. Differences, all
deliberate: the duration histogram covers the answer, not the send (the batch is sent once,
after the loop); and a reply the kernel will not take (send buffer full) is dropped and counted
(``dropped{reason="send_buffer_full"}``) instead of queued in user space, as NSD and Knot do.
Only used without response rate limiting; anything that is not Linux with glibc's recvmmsg, or
any set-up failure, falls back to the asyncio path.

Each batch also records how long its oldest datagram (the first: the queue is FIFO) waited in the
socket, from the kernel's receive stamp (:mod:`node_dns.transports.receive_wait`); only the first
message of the vector has room for control data.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import mmap
import socket
import struct
import sys
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any

from node_dns.answer import responder as responder_mod
from node_dns.answer import xfr
from node_dns.transports import accel, receive_wait
from node_dns.transports import state as state_mod

if TYPE_CHECKING:
    from node_dns.transports import _fastudp

log = logging.getLogger("node_dns.transports")

BATCH = 64
RECV_SLOT = 65536
"""Room for any UDP datagram."""
SEND_SLOT = 4096
"""UDP replies never exceed the EDNS size we advertise (at most 4096); bigger ones use sendto."""
NAME_SLOT = 128  # sizeof(struct sockaddr_storage)
_MSG_DONTWAIT = 0x40
_U32 = struct.Struct("I")


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    return libc


_LIBC = _libc()
available = _LIBC is not None

_MS = ctypes.sizeof(_Mmsghdr)
_IS = ctypes.sizeof(_Iovec)
_LEN = _Mmsghdr.len.offset
_NAME = _Msghdr.name.offset
_NAMELEN = _Msghdr.namelen.offset
_IOVLEN = _Iovec.len.offset
_CONTROLLEN = _Msghdr.controllen.offset


class BatchedUdp(asyncio.DatagramTransport):
    """A UDP listener that answers from an event-loop reader callback, a batch at a time."""

    def __init__(
        self,
        sock: socket.socket,
        responder: responder_mod.Responder,
        state: state_mod.TransportState,
        loop: asyncio.AbstractEventLoop,
        gate: xfr.Transfers | None = None,
    ) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname()})
        self._gate = gate
        assert _LIBC is not None
        self._sock = sock
        self._fd = sock.fileno()
        self._responder = responder
        self._state = state
        self._loop = loop
        self._closing = False
        self._histogram = responder.stats.durations["udp"]
        self._waits = responder.stats.receive_waits
        receive_wait.enable(sock)
        self.choice = accel.choose()
        """Which batch answers (compiled or pure Python) and why: ``udp.listen`` logs it."""
        self._fast: _fastudp.Batch | None = None
        if self.choice.module is not None:
            fast = self.choice.module.Batch(
                self._fd,
                responder,
                self._histogram,
                self._miss,
                responder.stats.drop,
                gate is not None,
                self._waits,
            )
            self._fast = fast
            self._on_readable: Callable[[], None] = fast.readable
            loop.add_reader(self._fd, fast.readable)
            return
        self._recvmmsg = _LIBC.recvmmsg
        self._sendmmsg = _LIBC.sendmmsg

        # Anonymous memory: pages the kernel never writes to (most of each 64 KiB slot) stay unallocated.
        self._rmap = mmap.mmap(-1, BATCH * RECV_SLOT)
        self._rbuf = (ctypes.c_char * (BATCH * RECV_SLOT)).from_buffer(self._rmap)
        self._sbuf = ctypes.create_string_buffer(BATCH * SEND_SLOT)
        self._names = ctypes.create_string_buffer(BATCH * NAME_SLOT)
        self._riov = (_Iovec * BATCH)()
        self._siov = (_Iovec * BATCH)()
        self._rvec = (_Mmsghdr * BATCH)()
        self._svec = (_Mmsghdr * BATCH)()
        self._names_at = ctypes.addressof(self._names)
        self._control = ctypes.create_string_buffer(receive_wait.CONTROL_SIZE)
        self._controlmem = memoryview(self._control).cast("B")
        self._rvec[0].hdr.control = ctypes.addressof(self._control)
        self._rvec[0].hdr.controllen = receive_wait.CONTROL_SIZE
        for i in range(BATCH):
            self._riov[i].base = ctypes.addressof(self._rbuf) + i * RECV_SLOT
            self._riov[i].len = RECV_SLOT
            self._siov[i].base = ctypes.addressof(self._sbuf) + i * SEND_SLOT
            for vec, iov in ((self._rvec, self._riov), (self._svec, self._siov)):
                vec[i].hdr.name = self._names_at + i * NAME_SLOT
                vec[i].hdr.namelen = NAME_SLOT
                vec[i].hdr.iov = ctypes.addressof(iov) + i * _IS
                vec[i].hdr.iovlen = 1
        self._smem = memoryview(self._sbuf).cast("B")
        self._rvmem = memoryview(self._rvec).cast("B")
        self._svmem = memoryview(self._svec).cast("B")
        self._siovmem = memoryview(self._siov).cast("B")
        self._rvec_template = bytes(self._rvmem)
        # Send header k points at receive address k with the socket family's address length, so
        # while every datagram is answered (reply k goes to sender k) nothing is written per reply.
        address_length = 16 if sock.family == socket.AF_INET else 28  # sockaddr_in / sockaddr_in6
        for i in range(BATCH):
            self._svec[i].hdr.namelen = address_length
        self._svec_template = bytes(self._svmem)
        self._rvec_at = ctypes.addressof(self._rvec)
        self._svec_at = ctypes.addressof(self._svec)
        self._received = BATCH
        self._on_readable = self._readable
        loop.add_reader(self._fd, self._readable)

    @property
    def path(self) -> str:
        """ "c" (the compiled batch) or "python"."""
        return self.choice.path

    # --- the hot path -----------------------------------------------------------------------
    def _readable(self) -> None:
        rvmem = self._rvmem
        reset = self._received * _MS  # the kernel wrote address lengths into the last batch's headers
        rvmem[:reset] = self._rvec_template[:reset]
        count = self._recvmmsg(self._fd, self._rvec_at, BATCH, _MSG_DONTWAIT, None)
        if count <= 0:
            self._received = 0
            return  # EAGAIN (another reader was first), or an error to retry on the next wake-up
        read_at = time_ns()
        self._received = count
        stamp = receive_wait.stamp(self._controlmem, struct.unpack_from("N", rvmem, _CONTROLLEN)[0])
        if stamp is not None:
            self._waits.observe(receive_wait.waited(read_at, stamp))
        unpack_from, pack_into = _U32.unpack_from, struct.pack_into
        respond = self._responder.respond  # UDP is its default
        gate = self._gate
        histogram = self._histogram
        counts, bounds = histogram.counts, histogram.bounds
        spent = 0.0
        rmap, smem, svmem, siovmem = self._rmap, self._smem, self._svmem, self._siovmem
        ready = 0
        moved = False
        started = perf_counter()  # one clock read per query: each query's time ends where the next starts
        for i in range(count):
            at = i * RECV_SLOT
            data = rmap[at : at + unpack_from(rvmem, i * _MS + _LEN)[0]]  # an mmap slice is bytes
            try:
                if gate is not None and gate.claims(data):
                    wire = self._transfer(gate, data, i)
                else:
                    wire = respond(data)
            except Exception as error:
                self._state.report_error("udp", error)
                started = perf_counter()
                continue
            if wire is not None:
                size = len(wire)
                if size <= SEND_SLOT:
                    at = ready * SEND_SLOT
                    smem[at : at + size] = wire
                    pack_into("N", siovmem, ready * _IS + _IOVLEN, size)
                    if ready != i:  # an earlier datagram got no reply: point at this sender
                        pack_into("P", svmem, ready * _MS + _NAME, self._names_at + i * NAME_SLOT)
                        moved = True
                    ready += 1
                else:
                    self._send_one(wire, i)
            now = perf_counter()
            counts[bisect_left(bounds, now - started)] += 1  # Histogram.observe, inlined
            spent += now - started
            started = now
        histogram.total += spent
        if ready:
            self._flush(ready)
        if moved:
            svmem[: count * _MS] = self._svec_template[: count * _MS]

    def _miss(self, data: bytes, slot: int) -> bytes | bool | None:
        """What the compiled batch hands back (not a cache hit it can splice): the loop's steps above.

        Returns the reply for the send slot; None for no reply (or an oversize one, sent here);
        False for an error, reported and, like the loop above, not timed.
        """
        gate = self._gate
        try:
            if gate is not None and gate.claims(data):
                wire = self._transfer(gate, data, slot)
            else:
                wire = self._responder.respond(data)
        except Exception as error:
            self._state.report_error("udp", error)
            return False
        if wire is not None and len(wire) > SEND_SLOT:
            self._send_one(wire, slot)
            return None
        return wire

    def _flush(self, ready: int) -> None:
        sent = 0
        while sent < ready:
            done = self._sendmmsg(self._fd, self._svec_at + sent * _MS, ready - sent, 0)
            if done <= 0:
                code = ctypes.get_errno()
                if done < 0 and code == errno.EINTR:
                    continue
                self._responder.stats.drop("send_buffer_full" if code == errno.EAGAIN else "send_failed")
                sent += 1  # skip the datagram the kernel refused; try the rest
                continue
            sent += done

    def _transfer(self, gate: xfr.Transfers, data: bytes, slot: int) -> bytes | None:
        """Signed queries and transfer types over UDP go through the gate, with the client's address."""
        address = self._address(self._sender(slot))
        reply = gate.handle(data, address[0] if address else None, tcp=False)
        return next(reply.messages, None) if reply is not None else None

    def _send_one(self, wire: bytes, slot: int) -> None:
        """A reply too big for a send slot (never expected for UDP): plain sendto."""
        address = self._address(self._sender(slot))
        if address is None:
            return
        try:
            self._sock.sendto(wire, address)
        except OSError:
            self._responder.stats.drop("send_failed")

    def _sender(self, slot: int) -> bytes:
        """The raw socket address of the datagram in ``slot`` of the current batch."""
        if self._fast is not None:
            return self._fast.sender(slot)
        namelen = struct.unpack_from("I", self._rvmem, slot * _MS + _NAMELEN)[0]
        return ctypes.string_at(self._names_at + slot * NAME_SLOT, namelen)

    def _address(self, raw: bytes) -> tuple[Any, ...] | None:
        family = int.from_bytes(raw[:2], sys.byteorder)
        port = int.from_bytes(raw[2:4], "big")
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        if family == socket.AF_INET6:
            flow, scope = struct.unpack_from("!I", raw, 4)[0], struct.unpack_from("=I", raw, 24)[0]
            return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, flow, scope
        return None

    # --- transport API ----------------------------------------------------------------------
    def sendto(self, data: Any, addr: Any = None) -> None:
        try:
            self._sock.sendto(data, addr)
        except OSError:
            self._responder.stats.drop("send_failed")

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._fast is not None:
            self._fast.close()
        self._sock.close()

    def abort(self) -> None:
        self.close()


def listen(
    host: str,
    port: int,
    responder: responder_mod.Responder,
    state: state_mod.TransportState,
    loop: asyncio.AbstractEventLoop,
    *,
    gate: xfr.Transfers | None = None,
) -> BatchedUdp:
    """Bind like ``create_datagram_endpoint(local_addr=(host, port))`` and start answering."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
        return BatchedUdp(sock, responder, state, loop, gate)
    except BaseException:
        sock.close()
        raise
