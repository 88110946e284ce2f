"""TCP connects and DNS questions for thousands of targets without a coroutine per probe.

The prober runs on the same event loop as the DNS answers, so every microsecond a probe costs
is taken from query capacity. A probe written as a coroutine (a task or worker hand-off, a
timeout context with its timer handle, ``sock_connect``'s future and writer registration)
costs about 100 µs of Python; the kernel's part of a loopback connect is under 20 µs. So TCP
and DNS probes run here instead, as plain callbacks:

- **TCP**: a non-blocking socket per probe, registered one-shot in the reactor's own epoll set;
  the loop watches only that set's descriptor. When it turns readable, one ``poll`` returns
  every finished connect; ``SO_ERROR`` says how it ended. ``SO_LINGER`` 0 closes with a reset,
  so no TIME_WAIT is left per probe.
- **DNS**: one unconnected UDP socket per address family for every DNS probe, answers matched
  by (source address, port, query id). ``IP_RECVERR`` brings ICMP errors back with the
  question they answer, so a closed port fails at once as "connection refused", as it would on
  a connected socket.
- **Timeouts**: one heap of deadlines; the caller runs :meth:`Reactor.expire` when the earliest
  one is due (the prober folds that into its schedule wake-ups), so no timer handle per probe.

Results are handed to ``done(key, result)`` as they come, never raised. Linux only (epoll,
``IP_RECVERR``), like the rest of node-dns.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import heapq
import ipaddress
import os
import select
import socket
import struct
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from node_dns.protocol import CLASS_IN, QR, RCODE_MASK, TYPE_A
from node_dns.settings import probe_spec as spec_mod
from node_dns.sources.probes.machine import Result

Done = Callable[[Any, Result], None]
_Entry = tuple[Any, float, int, float, _socket.socket | None, int]

LINGER_RESET = struct.pack("ii", 1, 0)
IP_RECVERR = 11
IPV6_RECVERR = 25
"""Linux values (``socket`` names them only from Python 3.12 on)."""
POLL_BATCH = 256
RECEIVE_SIZE = 4096

_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_CONNECTING = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)
_FAILED = select.EPOLLERR | select.EPOLLHUP
_WORDS = {errno.ECONNRESET: "connection reset"}
"""Failure words that differ from the C library's (kept as the coroutine checks said them)."""


def describe_errno(number: int) -> str:
    """A few words for an errno: "connection refused", "no route to host"..."""
    word = _WORDS.get(number)
    if word is None:
        word = _WORDS[number] = os.strerror(number).lower()
    return word


def question(name: str) -> bytes:
    """The question section asking ``name`` IN A (a DNS probe's fixed part)."""
    labels = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.split(".") if label)
    return labels + b"\x00" + struct.pack("!HH", TYPE_A, CLASS_IN)


_HEADER_TAIL = struct.pack("!HHHHH", 0, 1, 0, 0, 0)
"""Flags (no recursion desired: the node is asked as an authority) and one question."""


def _ids() -> Iterator[int]:
    while True:
        yield from struct.unpack("256H", os.urandom(512))


class Reactor:
    """In-flight TCP and DNS probes; see the module docstring.

    ``clock`` is the loop's clock (results carry its times); ``done`` gets each result.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Done, clock: Callable[[], float] | None = None):
        self._loop = loop
        self._done = done
        self._clock = clock or loop.time
        self._epoll = select.epoll()
        self._watching = False
        self._flight: dict[Hashable, _Entry] = {}
        """token (a TCP socket's descriptor; (host, port, query id) for DNS) ->
        (key, start, seq, timeout, TCP socket or None, expected rcode)."""
        self._deadlines: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._udp: dict[int, socket.socket] = {}
        self._questions: dict[str, bytes] = {}
        self._ids = _ids()

    def __len__(self) -> int:
        """Probes in flight."""
        return len(self._flight)

    # --- starting -----------------------------------------------------------------------------
    def tcp(self, key: Any, family: int, host: str, port: int, timeout: float) -> None:
        """Connect to (host, port); ``done`` gets "connected" or why not."""
        start = self._clock()
        try:
            # The C socket type: the probe needs no file object or reference counting, and the
            # Python subclass' constructor and close() cost ~2 µs per probe.
            sock = _socket.socket(family, _STREAM)
        except OSError as error:
            self._done(key, Result(False, describe_errno(error.errno or errno.EIO), 0.0, start))
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        code = sock.connect_ex((host, port))
        if code and code not in _CONNECTING:
            sock.close()
            self._done(key, Result(False, describe_errno(code), self._clock() - start, start))
            return
        fd = sock.fileno()
        # One-shot: after it fires the descriptor stays in the set, disabled, until close()
        # drops it, so finishing a probe costs no epoll_ctl call.
        self._epoll.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        if not self._watching:
            self._loop.add_reader(self._epoll.fileno(), self._connected)
            self._watching = True
        self._track(fd, key, start, timeout=timeout, sock=sock, rcode=0)

    def dns(self, key: Any, family: int, host: str, port: int, probe: spec_mod.Probe) -> None:
        """Ask (host, port) for ``probe.name`` IN A; ``done`` gets the rcode it answered with."""
        start = self._clock()
        sock = self._udp.get(family) or self._open_udp(family)
        query_id = next(self._ids)
        token = (host, port, query_id)
        while token in self._flight:  # two questions to one server with the same id: draw again
            query_id = next(self._ids)
            token = (host, port, query_id)
        wire = self._questions.get(probe.name)
        if wire is None:
            wire = self._questions[probe.name] = _HEADER_TAIL + question(probe.name)
        try:
            sock.sendto(query_id.to_bytes(2, "big") + wire, (host, port))
        except OSError as error:
            if isinstance(error, BlockingIOError):
                detail = "send buffer full"
            else:
                detail = describe_errno(error.errno or errno.EIO)
            self._done(key, Result(False, detail, self._clock() - start, start))
            return
        self._track(token, key, start, timeout=probe.timing.timeout, sock=None, rcode=probe.rcode)

    def _track(
        self,
        token: Hashable,
        key: Any,
        start: float,
        *,
        timeout: float,
        sock: _socket.socket | None,
        rcode: int,
    ) -> None:
        self._seq += 1
        self._flight[token] = (key, start, self._seq, timeout, sock, rcode)
        heapq.heappush(self._deadlines, (start + timeout, self._seq, token))

    def _open_udp(self, family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        self._udp[family] = sock
        self._loop.add_reader(sock.fileno(), self._answered, sock)
        return sock

    # --- finishing ----------------------------------------------------------------------------
    def _connected(self) -> None:
        now = self._clock()
        flight, done = self._flight, self._done
        while True:
            events = self._epoll.poll(0, POLL_BATCH)
            for fd, flags in events:
                entry = flight.pop(fd, None)
                if entry is None:
                    continue
                key, start, _, _, sock, _ = entry
                assert sock is not None
                # Writable without an error flag: connected, no need to ask why not.
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if flags & _FAILED else 0
                sock.close()
                if code:
                    done(key, Result(False, describe_errno(code), now - start, start))
                else:
                    done(key, Result(True, "connected", now - start, start))
            if len(events) < POLL_BATCH:
                return

    def _answered(self, sock: socket.socket) -> None:
        now = self._clock()
        self._errors(sock, now)
        flight, done = self._flight, self._done
        for _ in range(POLL_BATCH):
            try:
                data, address = sock.recvfrom(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._errors(sock, now)  # an ICMP error that arrived meanwhile
                continue
            if len(data) < 12:
                continue
            query_id, flags = struct.unpack_from("!HH", data)
            if not flags & QR:
                continue
            entry = flight.pop((address[0], address[1], query_id), None) or self._take_other(
                address, query_id
            )
            if entry is None:
                continue  # not a question in flight (late, or not ours): ignored
            key, start, _, _, _, expected = entry
            rcode = flags & RCODE_MASK
            done(key, Result(rcode == expected, f"rcode {spec_mod.rcode_name(rcode)}", now - start, start))

    def _errors(self, sock: socket.socket, now: float) -> None:
        """ICMP errors queued by ``IP_RECVERR``: each comes with the question it answers."""
        for _ in range(POLL_BATCH):
            try:
                data, ancillary, _, address = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except OSError:
                return  # EAGAIN: the queue is empty
            if len(data) < 2 or not ancillary or not isinstance(address, tuple):
                continue
            query_id = int.from_bytes(data[:2], "big")
            entry = self._flight.pop((address[0], address[1], query_id), None) or self._take_other(
                address, query_id
            )
            if entry is None:
                continue
            (code,) = struct.unpack_from("=I", ancillary[0][2])
            key, start = entry[0], entry[1]
            self._done(key, Result(False, describe_errno(code), now - start, start))

    def _take_other(self, address: tuple[Any, ...], query_id: int) -> _Entry | None:
        """The question from a source address the kernel wrote otherwise than the prober
        (a scope suffix, another spelling); tried only when the fast match missed."""
        return self._flight.pop((_canonical(address[0]), address[1], query_id), None)

    # --- timeouts -----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When :meth:`expire` has something to do next (``None``: nothing in flight)."""
        deadlines, flight = self._deadlines, self._flight
        while deadlines:
            _, seq, token = deadlines[0]
            entry = flight.get(token)
            if entry is not None and entry[2] == seq:
                return deadlines[0][0]
            heapq.heappop(deadlines)  # finished before its deadline
        return None

    def expire(self, now: float) -> None:
        """Fail every probe whose deadline is ``now`` or earlier, as a timeout."""
        deadlines, flight = self._deadlines, self._flight
        while deadlines and deadlines[0][0] <= now:
            _, seq, token = heapq.heappop(deadlines)
            entry = flight.get(token)
            if entry is None or entry[2] != seq:
                continue
            del flight[token]
            key, start, _, timeout, sock, _ = entry
            if sock is not None:
                sock.close()
            self._done(key, Result(False, f"timeout after {timeout:g}s", now - start, start))

    def close(self) -> list[Any]:
        """Drop every probe in flight (no results) and release the sockets; returns their keys."""
        keys = [entry[0] for entry in self._flight.values()]
        for entry in self._flight.values():
            if entry[4] is not None:
                entry[4].close()
        self._flight.clear()
        self._deadlines.clear()
        if self._watching:
            self._loop.remove_reader(self._epoll.fileno())
            self._watching = False
        self._epoll.close()
        for sock in self._udp.values():
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._udp.clear()
        return keys


def _canonical(host: str) -> str:
    """The address text the prober keys targets by (``str(ip_address(...))``)."""
    try:
        return str(ipaddress.ip_address(host.partition("%")[0]))
    except ValueError:
        return host


def family_of(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


async def once(host: str, version: int, probe: spec_mod.Probe) -> Result:
    """One TCP or DNS probe on its own reactor (for one-off checks; the prober shares one)."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[Result] = loop.create_future()

    def done(_: object, result: Result) -> None:
        if not finished.done():
            finished.set_result(result)

    reactor = Reactor(loop, done)
    timer: asyncio.TimerHandle | None = None
    try:
        if probe.kind == "tcp":
            reactor.tcp(None, family_of(version), host, probe.port, probe.timing.timeout)
        else:
            reactor.dns(None, family_of(version), host, probe.port, probe)
        deadline = reactor.next_deadline()
        if deadline is not None:
            timer = loop.call_at(deadline, lambda: reactor.expire(max(loop.time(), deadline)))
        return await finished
    finally:
        if timer is not None:
            timer.cancel()
        reactor.close()
