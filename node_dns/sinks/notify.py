"""NOTIFY (RFC 1996): tell secondaries the serial moved, until each of them says it heard.

One coroutine serves every target (no task per target or per message: see leader/tasks.py on
why tasks created late are avoided). Per target it keeps the serial wanted and the serial last
acknowledged; while a NOTIFY is unanswered no other is sent to that target, so changes that
come faster than a secondary acknowledges are coalesced into one NOTIFY for the newest serial.
An unanswered NOTIFY is sent again after a timeout that doubles up to ``max_interval``, until
the target answers (or a newer serial replaces it). With leader election on this runs on the
leader only: every replica serves the same content under the same serial, so one NOTIFY per
change is enough, and secondaries are not woken once per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node_dns import access, tsigkeys
from node_dns.answer import transfer, tsig
from node_dns.protocol import AA, QR, RCODE_MASK, Opcode, opcode
from node_dns.zone import snapshot

log = logging.getLogger("node_dns.notify")


@dataclass
class TargetState:
    target: access.Target
    wanted: int | None = None
    acked: int | None = None
    in_flight: int | None = None
    """Serial of the unanswered NOTIFY, if one is out."""
    message_id: int = 0
    request_mac: bytes = b""
    attempt: int = 0
    deadline: float = 0.0
    sent: int = 0
    acked_count: int = 0
    failed: int = 0
    """Attempts that timed out or were answered with an error."""
    last_error: str = ""
    sent_at: float = 0.0
    acked_at: float = 0.0


@dataclass
class Notifier:
    zone: snapshot.NameKey
    targets: tuple[access.Target, ...]
    keys: dict[str, tsigkeys.Key]
    first_timeout: float = 1.0
    max_interval: float = 60.0
    clock: Callable[[], float] = time.time
    states: list[TargetState] = field(default_factory=list)
    _soa: bytes = b""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _transports: dict[int, asyncio.DatagramTransport] = field(default_factory=dict)
    listeners: list[Callable[[TargetState], None]] = field(default_factory=list)
    """Called after each acknowledgement (tests and benchmarks watch convergence through it)."""

    def __post_init__(self) -> None:
        self.states = [TargetState(t) for t in self.targets]
        for target in self.targets:
            if target.key is not None and target.key not in self.keys:
                raise access.RuleError(
                    f"NOTIFY target {target} names key {target.key!r}, which is not defined"
                )

    def serial_moved(self, old: snapshot.Snapshot | None, snap: snapshot.Snapshot) -> None:
        """A publication subscriber: every target wants the newest serial."""
        if not snap.synced:
            return
        self._soa = transfer.soa_tail(snap)
        for state in self.states:
            if state.wanted != snap.serial:
                state.wanted = snap.serial
                if state.in_flight is not None and state.attempt > 1:
                    # Unanswered and already retried: the target was down or lost our NOTIFYs,
                    # and its next retry may be a minute away. Send the new serial now, with a
                    # fresh schedule; a NOTIFY still fresh in flight is waited for (coalescing).
                    state.deadline = 0.0
                    state.attempt = 0
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Send until stopped; a leader task, or a plain task without leader election."""
        loop = asyncio.get_running_loop()
        for state in self.states:
            state.in_flight = None  # a new term: what the last leader sent is unknown
            state.acked = None
        try:
            while stop is None or not stop.is_set():
                self._wake.clear()
                now = loop.time()
                for state in self.states:
                    await self._step(state, now)
                pending = [s.deadline for s in self.states if s.in_flight is not None]
                delay = max(0.0, min(pending) - loop.time()) if pending else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()

    async def _step(self, state: TargetState, now: float) -> None:
        if state.in_flight is not None:
            if now < state.deadline:
                return
            state.failed += 1
            state.last_error = "timeout"
            if state.attempt == 1 or state.failed % 10 == 0:
                log.warning("NOTIFY to %s for serial %d unanswered; retrying", state.target, state.in_flight)
            state.in_flight = None
        if state.wanted is None or state.wanted == state.acked:
            state.attempt = 0
            return
        await self._send(state, now)

    async def _send(self, state: TargetState, now: float) -> None:
        assert state.wanted is not None
        target = state.target
        state.message_id = random.getrandbits(16)
        message = self.message(state.message_id, state.wanted)
        key = self.keys.get(target.key) if target.key else None
        if key is not None:
            message, state.request_mac = tsig.sign(message, key, int(self.clock()))
        transport = await self._transport(6 if ":" in target.host else 4)
        state.in_flight = state.wanted
        timeout = min(self.max_interval, self.first_timeout * (2 ** min(state.attempt, 16)))
        state.attempt += 1
        state.deadline = now + timeout
        state.sent += 1
        state.sent_at = time.monotonic()
        try:
            transport.sendto(message, (target.host, target.port))
        except OSError as error:
            state.last_error = str(error)

    def message(self, message_id: int, serial: int) -> bytes:
        """NOTIFY for the zone's SOA, the new SOA in the answer section (RFC 1996 §3.7)."""
        question = snapshot.wire_name(self.zone) + struct.pack("!HH", snapshot.TYPE_SOA, 1)
        flags = (Opcode.NOTIFY << 11) | AA
        header = struct.pack("!HHHHHH", message_id, flags, 1, 1 if self._soa else 0, 0, 0)
        answer = b""
        if self._soa:
            tail = self._soa
            at = len(tail) - 20
            answer = b"\xc0\x0c" + tail[:at] + struct.pack("!I", serial) + tail[at + 4 :]
        return header + question + answer

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is None or transport.is_closing():
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Replies(self),
                local_addr=("::", 0) if family == 6 else ("0.0.0.0", 0),
                family=socket.AF_INET6 if family == 6 else socket.AF_INET,
            )
            self._transports[family] = transport
        return transport

    def received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12:
            return
        message_id, flags = struct.unpack_from("!HH", data)
        host = str(ipaddress.ip_address(str(addr[0]).split("%", 1)[0]))
        for state in self.states:
            if state.in_flight is None or state.message_id != message_id:
                continue
            if state.target.host != host or state.target.port != addr[1]:
                continue
            if not flags & QR or opcode(flags) != Opcode.NOTIFY:
                return
            rcode = flags & RCODE_MASK
            key = self.keys.get(state.target.key) if state.target.key else None
            if key is not None and not tsig.verify_answer(data, key, state.request_mac, int(self.clock())):
                rcode = -1
            if rcode != 0:
                state.failed += 1
                state.last_error = "bad TSIG on the answer" if rcode < 0 else f"rcode {rcode}"
                if state.failed == 1 or state.failed % 10 == 0:
                    log.warning("NOTIFY to %s answered with %s; retrying", state.target, state.last_error)
                return  # the timeout sends it again
            state.acked = state.in_flight
            state.in_flight = None
            state.attempt = 0
            state.acked_count += 1
            state.acked_at = time.monotonic()
            for listener in self.listeners:
                listener(state)
            self._wake.set()
            return


class _Replies(asyncio.DatagramProtocol):
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._notifier.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        """Port unreachable and the like: the timeout retries."""
