"""The NOTIFY sender against real loopback UDP sockets playing secondaries.

A secondary here is a socket the test reads: it can stay silent (the sender must retry), answer
(the sender must stop), or be slow while serials keep moving (the sender must coalesce).
Timeouts are shortened through the sender's own settings, not by patching clocks.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Callable

import dns.message
import dns.opcode
import dns.tsigkeyring

from node_dns import access, tsigkeys
from node_dns.sinks import notify
from node_dns.zone.snapshot import Snapshot
from tests.unit import zonekit

SECRET = base64.b64encode(b"k" * 32).decode()
KEYRING = dns.tsigkeyring.from_text({"xfr.": ("hmac-sha256", SECRET)})
ORIGIN = (b"lb", b"example", b"net")


class Secondary:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def receive(self, keyring: object = None) -> tuple[dns.message.Message, object]:
        loop = asyncio.get_running_loop()
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 4096), 5)
        return dns.message.from_wire(data, keyring=keyring), addr

    def ack(self, message: dns.message.Message, addr: object) -> None:
        self.sock.sendto(dns.message.make_response(message).to_wire(), addr)  # type: ignore[arg-type]


def _snapshots() -> Callable[[int], Snapshot]:
    zone = zonekit.synced_zone([zonekit.facts("n1", ["home"], ["192.0.2.1"])])

    def at(serial: int) -> Snapshot:
        zone.adopt_serial(serial)
        return zone.snapshot

    return at


def _serial(message: dns.message.Message) -> int:
    return int(message.answer[0][0].serial)


async def _acked(notifier: notify.Notifier, serial: int) -> None:
    """Wait for the acknowledgement of ``serial`` (the sender's listeners hear of each one)."""
    done = asyncio.Event()
    notifier.listeners.append(lambda state: done.set() if state.acked == serial else None)
    if notifier.states[0].acked != serial:
        await asyncio.wait_for(done.wait(), 5)


async def _running(notifier: notify.Notifier) -> asyncio.Task[None]:
    task = asyncio.create_task(notifier.run())
    await asyncio.sleep(0)
    return task


async def test_an_unanswered_notify_is_sent_again_until_acknowledged() -> None:
    secondary = Secondary()
    target = access.Target("127.0.0.1", secondary.port)
    notifier = notify.Notifier(ORIGIN, (target,), {}, first_timeout=0.05)
    snapshot = _snapshots()
    task = await _running(notifier)
    try:
        notifier.serial_moved(None, snapshot(1000))
        first, _ = await secondary.receive()
        second, addr = await secondary.receive()  # no answer to the first: it comes again
        secondary.ack(second, addr)
        await _acked(notifier, 1000)

        assert first.opcode() == dns.opcode.NOTIFY and _serial(first) == _serial(second) == 1000
        state = notifier.states[0]
        assert (state.sent, state.acked_count, state.failed) == (2, 1, 1)
    finally:
        task.cancel()
        secondary.sock.close()


async def test_serials_moving_faster_than_acks_are_coalesced_into_the_newest() -> None:
    secondary = Secondary()
    notifier = notify.Notifier(ORIGIN, (access.Target("127.0.0.1", secondary.port),), {}, first_timeout=5)
    snapshot = _snapshots()
    task = await _running(notifier)
    try:
        notifier.serial_moved(None, snapshot(1000))
        first, addr = await secondary.receive()
        for serial in (1001, 1002, 1003):  # while the first is unanswered
            notifier.serial_moved(None, snapshot(serial))
        await asyncio.sleep(0.1)
        assert notifier.states[0].sent == 1
        secondary.ack(first, addr)
        second, addr = await secondary.receive()

        assert _serial(second) == 1003
        secondary.ack(second, addr)
        await _acked(notifier, 1003)
        assert notifier.states[0].sent == 2
    finally:
        task.cancel()
        secondary.sock.close()


async def test_a_new_serial_is_not_held_behind_the_backoff_of_a_target_that_was_down() -> None:
    secondary = Secondary()
    notifier = notify.Notifier(
        ORIGIN, (access.Target("127.0.0.1", secondary.port),), {}, first_timeout=0.05, max_interval=30
    )
    snapshot = _snapshots()
    task = await _running(notifier)
    try:
        notifier.serial_moved(None, snapshot(1000))
        for _ in range(5):  # unanswered: 0.05, 0.1, 0.2, 0.4 s ... the next retry is 1.6 s away
            await secondary.receive()
        notifier.serial_moved(None, snapshot(1001))

        loop = asyncio.get_running_loop()
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(secondary.sock, 4096), 0.5)
        message = dns.message.from_wire(data)
        assert _serial(message) == 1001
        secondary.ack(message, addr)
        await _acked(notifier, 1001)
    finally:
        task.cancel()
        secondary.sock.close()


async def test_a_notify_is_signed_with_its_targets_key_and_a_forged_ack_is_not_taken() -> None:
    secondary = Secondary()
    keys = {k.name: k for k in tsigkeys.parse_keys(f"xfr:{SECRET}")}
    target = access.Target("127.0.0.1", secondary.port, key="xfr")
    notifier = notify.Notifier(ORIGIN, (target,), keys, first_timeout=0.2)
    snapshot = _snapshots()
    task = await _running(notifier)
    try:
        notifier.serial_moved(None, snapshot(1000))
        message, addr = await secondary.receive(KEYRING)
        assert message.had_tsig and message.keyname.to_text() == "xfr."
        forged = dns.message.make_response(message)
        forged.keyring, forged.tsig = None, None  # unsigned: not an ack from the keyed target
        secondary.sock.sendto(forged.to_wire(), addr)
        await asyncio.sleep(0.05)
        assert notifier.states[0].acked is None

        again, addr = await secondary.receive(KEYRING)
        secondary.ack(again, addr)  # make_response signs it with the request's key
        await _acked(notifier, 1000)
    finally:
        task.cancel()
        secondary.sock.close()
