"""The compiled UDP batch (``_fastudp``): its edges, and how node-dns chooses it.

The property tests (test_fast_path_property.py, test_cache_carry.py) run both batches against the
full path; here: the key it computes, what it hands back to Python (malformed, truncated, transfer
types behind a gate, oversize), counting, a refused send, an error in the full path, and the
loader's refusals (switched off, stale source, other ABI).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import select
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_dns import model
from node_dns.answer import responder as responder_mod
from node_dns.answer import xfr
from node_dns.transports import accel, batch, udp
from node_dns.transports.state import TransportState
from node_dns.zone.writer import Zone
from tests.unit.test_fast_path_property import queries, worlds
from tests.unit.udp_paths import COMPILED, PATHS, use_batch
from tests.unit.zonekit import facts, query, synced_zone

ZONE = "lb.example.net"
needs_compiled = pytest.mark.skipif(COMPILED.module is None, reason=COMPILED.reason)


@pytest.fixture
def fast() -> ModuleType:
    if COMPILED.module is None:
        pytest.skip(COMPILED.reason)
    return COMPILED.module


@pytest.fixture
def zone() -> Zone:
    return synced_zone([facts("n1", ["home"], ["192.0.2.1", "2001:db8::1"])])


def big_zone(nodes: int) -> Zone:
    return synced_zone(
        [
            model.NodeFacts(
                name=f"n{i}",
                areas=frozenset({"big"}),
                ips=(ipaddress.IPv4Address(0x0A000001 + i),),
                ready=True,
            )
            for i in range(nodes)
        ]
    )


def reference(packet: bytes, zone: Zone, size: int = 1232) -> bytes | None:
    found = responder_mod.answer(packet, zone.snapshot, tcp=False, edns_udp_size=size)
    return found[0] if found is not None else None


# --- the key ------------------------------------------------------------------------------------


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_compiled_key_is_the_python_key(data: st.DataObject) -> None:
    assert COMPILED.module is not None
    world = data.draw(worlds())
    for _ in range(10):
        packet = data.draw(queries(world) | st.binary(max_size=600))
        assert COMPILED.module.cache_key(packet) == responder_mod.cache_key(packet), packet.hex()


def test_the_compiled_batch_knows_the_gates_transfer_types(fast: ModuleType) -> None:
    assert tuple(fast.TRANSFER_TYPES) == tuple(xfr.TRANSFER_TYPES)


# --- what a hit is, and what goes back to Python ------------------------------------------------


def test_a_hit_carries_the_clients_id_and_spelling(fast: ModuleType, zone: Zone) -> None:
    responder = responder_mod.Responder(zone.snapshot)
    responder.respond(query(f"home.{ZONE}", id=1))
    asked = query("HoMe.Lb.ExAmPlE.nEt", id=0xBEEF)

    got = fast.answer(responder._udp, asked, False)

    assert got == reference(asked, zone)
    assert got[:2] == b"\xbe\xef" and b"\x04HoMe\x02Lb" in got


def test_a_hit_counts_its_response_cell(fast: ModuleType, zone: Zone) -> None:
    responder = responder_mod.Responder(zone.snapshot)
    packet = query(f"home.{ZONE}")
    responder.respond(packet)

    for _ in range(3):
        fast.answer(responder._udp, packet, False)

    assert responder.stats.responses == {("udp", "A", "NOERROR"): 4}


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(query(f"home.{ZONE}")[:-1], id="truncated"),
        pytest.param(query(f"home.{ZONE}") + b"\x00", id="trailing-byte"),
        pytest.param(query(f"home.{ZONE}", edns=0)[:-2] + b"\x00\x04" + b"\x00\x0a\x00\x08", id="bad-option"),
        pytest.param(b"\x00" * 11, id="shorter-than-a-header"),
    ],
)
def test_a_malformed_query_is_never_answered_from_the_cache(
    fast: ModuleType, zone: Zone, packet: bytes
) -> None:
    responder = responder_mod.Responder(zone.snapshot)
    responder.respond(query(f"home.{ZONE}"))
    responder.respond(query(f"home.{ZONE}", edns=0))

    assert fast.cache_key(packet) is None
    assert fast.answer(responder._udp, packet, False) is None


def test_edns_options_are_left_out_of_the_key_as_python_does(fast: ModuleType, zone: Zone) -> None:
    responder = responder_mod.Responder(zone.snapshot)
    responder.respond(query(f"home.{ZONE}", edns=0))
    cookie = dns_option(10, b"\x01" * 8)
    with_cookie = add_options(query(f"home.{ZONE}", edns=0, id=7), cookie)

    assert fast.answer(responder._udp, with_cookie, False) == reference(with_cookie, zone)


def test_a_truncated_answer_goes_back_to_python_which_counts_it(fast: ModuleType) -> None:
    zone = big_zone(60)
    responder = responder_mod.Responder(zone.snapshot)
    packet = query(f"big.{ZONE}")
    first = responder.respond(packet)
    assert first is not None and first[2] & 0x02

    assert fast.answer(responder._udp, packet, False) is None
    assert responder.stats.truncated["udp"] == 1


def test_behind_a_gate_transfer_types_go_to_python(fast: ModuleType, zone: Zone) -> None:
    responder = responder_mod.Responder(zone.snapshot)
    axfr = query(ZONE, "AXFR")
    responder.respond(axfr)  # no gate: the full path answers (and caches) it

    assert fast.answer(responder._udp, axfr, False) is not None
    assert fast.answer(responder._udp, axfr, True) is None


# --- the batch over real sockets ----------------------------------------------------------------


@contextlib.contextmanager
def listening(responder: responder_mod.Responder, state: TransportState) -> Iterator[batch.BatchedUdp]:
    """A batched listener on loopback that is driven by hand (``_on_readable``), no loop running."""
    loop = asyncio.new_event_loop()
    transport = batch.listen("127.0.0.1", 0, responder, state, loop)
    try:
        yield transport
    finally:
        transport.close()
        loop.close()


def exchange(transport: batch.BatchedUdp, packets: list[bytes], expected: int) -> list[bytes]:
    """Send the packets, drive the listener while it has datagrams, collect ``expected`` replies."""
    server = transport.get_extra_info("socket")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.connect(transport.get_extra_info("sockname"))
        for packet in packets:
            client.send(packet)
        replies: list[bytes] = []
        while len(replies) < expected:
            readable, _, _ = select.select([server, client], [], [], 5)
            if not readable:
                break  # fails the caller's assertion with what came
            if server in readable:
                transport._on_readable()
            if client in readable:
                replies.append(client.recv(65535))
        return replies


@pytest.mark.skipif(not batch.available, reason="recvmmsg/sendmmsg need Linux")
@pytest.mark.parametrize("path", PATHS)
def test_a_reply_larger_than_a_send_slot_is_sent_on_its_own(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_batch(monkeypatch, path)
    zone = big_zone(300)  # 300 A records: about 4,900 octets
    responder = responder_mod.Responder(zone.snapshot, edns_udp_size=8192)
    packet = query(f"big.{ZONE}", edns=0, payload=8192)
    want = reference(packet, zone, size=8192)
    assert want is not None and len(want) > batch.SEND_SLOT

    with listening(responder, TransportState()) as transport:
        assert transport.path == path
        replies = exchange(transport, [packet], 1) + exchange(transport, [packet], 1)  # miss, then hit

    assert replies == [want, want]
    assert responder.stats.responses == {("udp", "A", "NOERROR"): 2}


@pytest.mark.skipif(not batch.available, reason="recvmmsg/sendmmsg need Linux")
@pytest.mark.parametrize("path", PATHS)
def test_an_error_in_the_full_path_is_reported_and_the_rest_answered(
    path: str, monkeypatch: pytest.MonkeyPatch, zone: Zone
) -> None:
    use_batch(monkeypatch, path)
    responder = responder_mod.Responder(zone.snapshot)
    good, bad = query(f"home.{ZONE}", id=1), query(f"bad.{ZONE}", id=2)
    respond = responder.respond

    def failing(data: bytes, tcp: bool = False) -> bytes | None:
        if b"\x03bad" in data:
            raise RuntimeError("a bug in the query path")
        return respond(data, tcp)

    monkeypatch.setattr(responder, "respond", failing)
    state = TransportState()
    with listening(responder, state) as transport:
        replies = exchange(transport, [good, bad, good], 2)

    assert replies == [reference(good, zone)] * 2
    assert state.internal_errors == 1
    assert sum(responder.stats.durations["udp"].counts) == 2  # the failed one is not timed


def unix_queue_length() -> int:
    try:
        return int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
    except (OSError, ValueError):
        return 10


@needs_compiled
def test_replies_the_kernel_refuses_are_counted_as_send_buffer_full(
    monkeypatch: pytest.MonkeyPatch, zone: Zone
) -> None:
    """A client that does not read: once its queue is full every further reply is refused (EAGAIN),
    counted, and the batch goes on. (A UNIX datagram socket: on loopback UDP the kernel never
    refuses, it drops at the receiver.)"""
    use_batch(monkeypatch, "c")
    responder = responder_mod.Responder(zone.snapshot)
    loop = asyncio.new_event_loop()
    chunk = min(unix_queue_length(), batch.BATCH)
    total = unix_queue_length() + 2 * chunk
    with tempfile.TemporaryDirectory(prefix="node-dns-unix-") as tmp:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(os.path.join(tmp, "server"))
        server.setblocking(False)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        client.bind(os.path.join(tmp, "client"))
        transport = batch.BatchedUdp(server, responder, TransportState(), loop)
        try:
            assert transport.path == "c"
            for start in range(0, total, chunk):
                for qid in range(start, min(total, start + chunk)):
                    client.sendto(query(f"home.{ZONE}", id=qid), os.path.join(tmp, "server"))
                transport._on_readable()
            client.setblocking(False)
            received = 0
            with contextlib.suppress(BlockingIOError):
                while client.recv(4096):
                    received += 1
        finally:
            transport.close()
            client.close()
            loop.close()

    refused = responder.stats.dropped.get("send_buffer_full", 0)
    assert refused > 0
    assert received + refused == total
    assert responder.stats.responses == {("udp", "A", "NOERROR"): total}


# --- choosing the batch -------------------------------------------------------------------------


def test_the_pure_python_batch_can_be_asked_for() -> None:
    choice = accel.choose({accel.OFF: "1"})

    assert choice.module is None and choice.forced and choice.path == "python"
    assert accel.OFF in choice.reason


@needs_compiled
def test_a_build_older_than_its_source_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    edited = tmp_path / "_fastkey.c"
    edited.write_bytes(accel.SOURCES[1].read_bytes() + b"/* edited */\n")
    monkeypatch.setattr(accel, "SOURCES", (accel.SOURCES[0], edited, accel.SOURCES[2]))

    choice = accel.choose({})

    assert choice.module is None and not choice.forced
    assert "older than its source" in choice.reason and "make ext" in choice.reason


@needs_compiled
def test_a_build_of_another_abi_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "ABI", accel.ABI + 1)

    choice = accel.choose({})

    assert choice.module is None and "ABI" in choice.reason


@needs_compiled
def test_a_current_build_is_used() -> None:
    choice = accel.choose({})

    assert choice.path == "c" and choice.reason == ""


@pytest.mark.skipif(not batch.available, reason="recvmmsg/sendmmsg need Linux")
async def test_listen_says_which_path_answers(monkeypatch: pytest.MonkeyPatch, zone: Zone) -> None:
    use_batch(monkeypatch, "python")
    responder = responder_mod.Responder(zone.snapshot)
    transport = await udp.listen("127.0.0.1", 0, responder, TransportState())
    try:
        assert udp.path(transport) == "python"
    finally:
        transport.close()


# --- helpers --------------------------------------------------------------------------------------


def dns_option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def add_options(packet: bytes, options: bytes) -> bytes:
    """Append EDNS options to a query whose last record is an OPT without options."""
    assert packet[-2:] == b"\x00\x00"
    return packet[:-2] + struct.pack("!H", len(options)) + options
