"""The fast path answers exactly like the full path: same bytes, ID and spelling of the name included.

Random zones (built through Zone from random nodes, areas, addresses and health), random
queries (names in and out of the zone in mixed case, every interesting qtype and qclass, with and
without EDNS, random EDNS sizes, DO bit, cookies and other options, random IDs and flags, and
some mangled packets), random server EDNS sizes, and snapshot swaps. Every query is asked twice
(a cache miss, then a hit) after a differently spelt query with another ID has primed the cache
for the same normalised question, and each response must equal ``responder.answer`` byte for byte.

UDP goes through both batches' hit paths (``path``): "python" is ``Responder.respond``; "c" is the
compiled batch's splice (``_fastudp.answer``, the code its ``Batch`` runs per datagram) with
``Responder.respond`` for whatever it hands back. The transport tests run both batches for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import struct
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_dns import model
from node_dns.answer import query, stats
from node_dns.answer import responder as responder_mod
from node_dns.settings import Settings
from node_dns.transports import batch, udp
from node_dns.transports.state import TransportState
from node_dns.zone import records, snapshot
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.unit.udp_paths import PATHS, udp_respond, use_batch
from tests.unit.zonekit import new_zone

ZONES = ("lb.example.net", "example.org", "x.y.z.test", "a")
QTYPES = (1, 28, 6, 2, 255, 15, 16, 5, 13, 65, 41, 249, 250, 251, 252, 0, 65535, 99)
QCLASSES = (1, 1, 1, 1, 255, 3, 4, 254, 0)

label_text = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
raw_label = st.binary(min_size=1, max_size=63)


@st.composite
def ips(draw: st.DrawFn) -> model.IPAddress:
    if draw(st.booleans()):
        return ipaddress.IPv4Address(draw(st.integers(1, 2**32 - 1)))
    return ipaddress.IPv6Address(draw(st.integers(1, 2**128 - 1)))


@st.composite
def node_facts(draw: st.DrawFn, name: str, areas: list[str]) -> model.NodeFacts:
    return model.NodeFacts(
        name=name,
        areas=frozenset(draw(st.lists(st.sampled_from(areas), max_size=3))),
        ips=tuple(draw(st.lists(ips(), max_size=4))),
        ready=draw(st.booleans()),
        schedulable=draw(st.booleans()),
        deleting=draw(st.integers(0, 9)) == 0,
    )


@dataclass
class World:
    state: Zone
    areas: list[str]
    names: list[str]
    """Dotted names worth asking about (existing, empty non-terminal, missing, out of zone)."""


@st.composite
def worlds(draw: st.DrawFn) -> World:
    zone = draw(st.sampled_from(ZONES))
    glue = ",".join(str(ip) for ip in draw(st.lists(ips(), min_size=1, max_size=3)))
    deep = draw(st.booleans())
    ns_inside = f"ns1.dns.{zone}" if deep else f"ns1.{zone}"
    config = Settings(
        zone=zone,
        nameservers=f"{ns_inside}={glue};ns2.elsewhere.test",
        soa_email=draw(st.sampled_from(["hostmaster@example.net", "first.last@example.org"])),
        record_ttl=draw(st.integers(0, 2**31 - 1)),
        soa_ttl=draw(st.integers(0, 3600)),
        negative_ttl=draw(st.integers(0, 86400)),
        cordoned_healthy=draw(st.booleans()),
        edns_udp_size=1232,
    )
    policy = Policy(
        cordoned_healthy=config.cordoned_healthy,
        fail_open_min_healthy=draw(st.integers(0, 3)),
        fail_open_min_fraction=draw(st.sampled_from([0.0, 0.0, 0.5])),
    )
    state = new_zone(config, policy)
    areas = draw(st.lists(label_text, min_size=1, max_size=6, unique=True))
    count = draw(st.integers(0, 60))
    nodes = [draw(node_facts(f"node-{i}", areas)) for i in range(count)]
    if draw(st.integers(0, 7)) != 0:  # mostly synced; sometimes still waiting for the first list
        state.replace_all([(facts, str(10 + i)) for i, facts in enumerate(nodes)], str(10 + count))
    else:
        for i, facts in enumerate(nodes):
            state.apply(facts.name, facts, str(10 + i))
    names = [zone, ns_inside, f"dns.{zone}", f"ns2.{zone}", "elsewhere.test", "example.com", "net", ""]
    names += [f"{area}.{zone}" for area in areas]
    names += [f"sub.{area}.{zone}" for area in areas[:2]]
    names += [f"missing.{zone}", f"x{zone}", zone.split(".", 1)[-1]]
    return World(state, areas, names)


def mixed_case(draw: st.DrawFn, name: bytes) -> bytes:
    flips = draw(st.integers(0, (1 << len(name)) - 1)) if name else 0
    return bytes(c ^ 0x20 if flips >> i & 1 and chr(c).isalpha() else c for i, c in enumerate(name))


def wire_name(labels: list[bytes]) -> bytes:
    """Labels to wire form (no compression)."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


@st.composite
def qnames(draw: st.DrawFn, world: World) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # arbitrary bytes in labels (dots, upper non-ASCII, zero bytes)
        labels = draw(st.lists(raw_label, max_size=4))
        suffix = draw(st.sampled_from(world.names))
        labels += [part.encode() for part in suffix.split(".") if part]
    elif kind == 1:  # long names, some over 255 octets (malformed)
        labels = draw(st.lists(st.just(b"a" * 63), min_size=3, max_size=5))
        labels += [part.encode() for part in world.state.snapshot.zone.split(".")]
    else:
        text = draw(st.sampled_from(world.names))
        labels = [part.encode() for part in text.split(".") if part]
    return mixed_case(draw, wire_name(labels))


@st.composite
def options(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        code = draw(st.sampled_from([10, 10, 12, 8, 15, 65001]))
        if code == 10:  # cookie: client only, or client + server
            data = draw(st.binary(min_size=8, max_size=8)) + draw(
                st.sampled_from([b"", b"\x01" * 16, b"\x02" * 24])
            )
        else:
            data = draw(st.binary(max_size=20))
        out += struct.pack("!HH", code, len(data)) + data
    return out


@st.composite
def queries(draw: st.DrawFn, world: World) -> bytes:
    qid = draw(st.integers(0, 0xFFFF))
    flags = draw(st.sampled_from([0x0000, 0x0100, 0x0100, 0x0120, 0x0010])) | (
        draw(st.integers(0, 0xFFFF)) if draw(st.integers(0, 9)) == 0 else 0
    )
    question = draw(qnames(world)) + struct.pack(
        "!HH", draw(st.sampled_from(QTYPES)), draw(st.sampled_from(QCLASSES))
    )
    extra = b""
    counts = [1, 0, 0, 0]
    if draw(st.integers(0, 2)) != 0:  # EDNS
        version = 0 if draw(st.integers(0, 5)) else draw(st.integers(1, 255))
        ext_rcode = 0 if draw(st.integers(0, 5)) else draw(st.integers(1, 255))
        do = draw(st.booleans())
        z = 0 if draw(st.integers(0, 5)) else draw(st.integers(0, 0x7FFF))
        ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0) | z
        rdata = draw(options())
        extra = b"\x00" + struct.pack("!HHIH", 41, draw(st.integers(0, 65535)), ttl, len(rdata)) + rdata
        counts[3] = 1
        if draw(st.integers(0, 9)) == 0:  # a second OPT record, or one in the wrong section
            extra += extra
            counts[draw(st.sampled_from([1, 2, 3]))] += 1
    if draw(st.integers(0, 14)) == 0:
        counts[0] = draw(st.sampled_from([0, 2]))
    packet = struct.pack("!HHHHHH", qid, flags, *counts) + question + extra
    mangle = draw(st.integers(0, 9))
    if mangle == 0 and len(packet) > 1:  # truncate anywhere
        packet = packet[: draw(st.integers(0, len(packet) - 1))]
    elif mangle == 1:  # trailing garbage
        packet += draw(st.binary(min_size=1, max_size=8))
    elif mangle == 2 and len(packet) > 12:  # one random byte changed
        at = draw(st.integers(0, len(packet) - 1))
        packet = packet[:at] + bytes([draw(st.integers(0, 255))]) + packet[at + 1 :]
    return packet


def respell(draw: st.DrawFn, packet: bytes) -> bytes:
    """Same normalised question, different ID and case: primes the cache for ``packet``."""
    if len(packet) < 12:
        return packet
    found = responder_mod.cache_key(packet)
    end = found[1] if found else len(packet)
    qid = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    return qid + packet[2:12] + mixed_case(draw, packet[12:end]) + packet[end:]


class Expected:
    """The counters the full path alone would have kept: the fast path must count the same."""

    def __init__(self) -> None:
        self.responses: dict[tuple[str, str, str], int] = {}
        self.truncated = {"udp": 0, "tcp": 0}
        self.dropped = 0

    def answer(self, packet: bytes, snap: snapshot.Snapshot, *, tcp: bool, size: int) -> bytes | None:
        reply = responder_mod.answer(packet, snap, tcp=tcp, edns_udp_size=size)
        proto = "tcp" if tcp else "udp"
        if reply is None:
            self.dropped += 1
            return None
        wire, qtype, rcode = reply
        key = (proto, stats.qtype_label(qtype), stats.rcode_label(rcode))
        self.responses[key] = self.responses.get(key, 0) + 1
        self.truncated[proto] += bool(wire[2] & 0x02)
        return wire

    def assert_counted_like(self, responder: responder_mod.Responder) -> None:
        assert responder.stats.responses == self.responses
        assert responder.stats.truncated == self.truncated
        assert responder.stats.dropped.get("not_a_query", 0) == self.dropped


def check(
    responder: responder_mod.Responder, packet: bytes, primer: bytes, expected: Expected, path: str
) -> None:
    snap, size = responder.snapshot, responder.edns_udp_size
    for tcp in (False, True):
        respond = responder.respond_tcp if tcp else udp_respond(responder, path)
        assert respond(primer) == expected.answer(primer, snap, tcp=tcp, size=size)
        for attempt in ("miss or hit", "hit"):
            got = respond(packet)
            want = expected.answer(packet, snap, tcp=tcp, size=size)
            assert got == want, f"{'tcp' if tcp else 'udp'} {attempt}: {packet.hex()}"


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path_equals_full_path(path: str, data: st.DataObject) -> None:
    world = data.draw(worlds())
    size = data.draw(st.sampled_from([512, 1232, 1232, 4096]) | st.integers(512, 4096))
    responder = responder_mod.Responder(world.state.snapshot, edns_udp_size=size)
    world.state.subscribe(responder.publish)
    expected = Expected()
    for _ in range(data.draw(st.integers(1, 12))):
        packet = data.draw(queries(world))
        check(responder, packet, packet, expected, path)
        check(responder, packet, respell(data.draw, packet), expected, path)
    # a new snapshot: the cache must not leak answers of the old one
    node = data.draw(node_facts("node-0", world.areas))
    world.state.apply(node.name, node, "1000000")
    assert responder.snapshot is world.state.snapshot
    for _ in range(data.draw(st.integers(1, 8))):
        packet = data.draw(queries(world))
        check(responder, packet, respell(data.draw, packet), expected, path)
    expected.assert_counted_like(responder)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_answers_kept_across_publications_equal_the_full_path(path: str, data: st.DataObject) -> None:
    """Warm the cache, publish changes (node facts moving in and out of areas), ask the same again."""
    world = data.draw(worlds())
    responder = responder_mod.Responder(world.state.snapshot, edns_udp_size=1232)
    world.state.subscribe(responder.publish)
    expected = Expected()
    asked = [data.draw(queries(world)) for _ in range(data.draw(st.integers(1, 12)))]
    for round_ in range(data.draw(st.integers(1, 4))):
        for packet in asked:
            check(responder, packet, respell(data.draw, packet), expected, path)
        for i in range(data.draw(st.integers(1, 3))):
            node = data.draw(node_facts(f"node-{data.draw(st.integers(0, 6))}", world.areas))
            world.state.apply(node.name, node, str(2_000_000 + round_ * 10 + i))
        assert responder.snapshot is world.state.snapshot
    for packet in asked:
        check(responder, packet, respell(data.draw, packet), expected, path)
    expected.assert_counted_like(responder)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_cache_bound_keeps_answers_exact(path: str, data: st.DataObject) -> None:
    """A tiny cache bound forces clears between miss and hit: still the same bytes."""
    world = data.draw(worlds())
    responder = responder_mod.Responder(world.state.snapshot, edns_udp_size=1232, max_cached=2)
    expected = Expected()
    for _ in range(data.draw(st.integers(3, 15))):
        packet = data.draw(queries(world))
        check(responder, packet, respell(data.draw, packet), expected, path)
        assert len(responder._udp) <= 2
        assert len(responder._tcp) <= 2
    expected.assert_counted_like(responder)


def _exchange(port: int, family: int, host: str, packets: list[bytes]) -> dict[int, bytes]:
    """Send the packets in bursts of 16 (so the server reads batches); collect replies by ID."""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        replies: dict[int, bytes] = {}
        for start in range(0, len(packets), 16):
            burst = packets[start : start + 16]
            for packet in burst:
                sock.sendto(packet, (host, port))
            expected = sum(1 for packet in burst if not packet[2] & 0x80)
            got = 0
            with contextlib.suppress(TimeoutError):
                while got < expected:
                    reply = sock.recv(65535)
                    replies[int.from_bytes(reply[:2], "big")] = reply
                    got += 1
        return replies


def _packets(world_state: Zone) -> list[bytes]:
    rng = random.Random(1)
    zone = world_state.snapshot.zone
    packets = []
    for qid in range(300):
        name = rng.choice([zone, f"area-{rng.randrange(3)}.{zone}", f"NoWhere.{zone}", "example.com"])
        spelt = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
        qtype = rng.choice([1, 28, 6, 2, 16, 255, 252])
        edns = rng.choice([None, 512, 1232, 4096])
        packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0) + wire_name(
            [label.encode() for label in spelt.split(".")]
        )
        packet += struct.pack("!HH", qtype, 1)
        if edns:
            packet += b"\x00" + struct.pack("!HHIH", 41, edns, 0x8000 * rng.randrange(2), 0)
        if qid % 50 == 7:
            packet = packet[:2] + b"\x81\x00" + packet[4:]  # a response: never answered
        if qid % 50 == 9:
            packet += b"\x00" * 60_000  # one big datagram: FORMERR from both
        packets.append(packet)
    return packets


def _zone_with_big_area() -> Zone:
    state = new_zone(
        Settings(
            zone="lb.example.net", nameservers="ns1.lb.example.net=192.0.2.53", soa_email="h@example.net"
        )
    )
    nodes = [
        model.NodeFacts(
            name=f"n{i}",
            areas=frozenset({f"area-{i % 3}"}),
            ips=(ipaddress.IPv4Address(0x0A000001 + i), ipaddress.IPv6Address(0xFD00 << 112 | i)),
            ready=True,
        )
        for i in range(120)
    ]
    state.replace_all([(n, None) for n in nodes], "5")
    return state


@pytest.mark.skipif(not batch.available, reason="recvmmsg/sendmmsg need Linux")
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
async def test_batched_udp_sends_what_the_asyncio_path_sends(
    family: int, host: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_batch(monkeypatch, path)
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    state = _zone_with_big_area()
    loop = asyncio.get_running_loop()
    replies = []
    for batched in (True, False):
        responder = responder_mod.Responder(state.snapshot)
        tstate = TransportState()
        if batched:
            transport: asyncio.DatagramTransport = batch.listen(host, 0, responder, tstate, loop)
            assert udp.path(transport) == path
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda r=responder, t=tstate: udp.UdpProtocol(r, t), local_addr=(host, 0)
            )
        try:
            port = transport.get_extra_info("sockname")[1]
            replies.append(await loop.run_in_executor(None, _exchange, port, family, host, _packets(state)))
        finally:
            transport.close()
        assert tstate.internal_errors == 0
    batched_replies, asyncio_replies = replies
    assert len(asyncio_replies) == 300 - 6  # responses are never answered
    assert batched_replies == asyncio_replies


@pytest.mark.skipif(not batch.available, reason="recvmmsg/sendmmsg need Linux")
@pytest.mark.parametrize("path", PATHS)
async def test_batched_udp_counts_what_the_asyncio_path_counts(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same responses by type and rcode, same truncations and drops, one duration per datagram."""
    use_batch(monkeypatch, path)
    state = _zone_with_big_area()
    loop = asyncio.get_running_loop()
    counted = []
    for batched in (True, False):
        responder = responder_mod.Responder(state.snapshot)
        tstate = TransportState()
        if batched:
            transport: asyncio.DatagramTransport = batch.listen("127.0.0.1", 0, responder, tstate, loop)
            assert udp.path(transport) == path
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda r=responder, t=tstate: udp.UdpProtocol(r, t), local_addr=("127.0.0.1", 0)
            )
        try:
            port = transport.get_extra_info("sockname")[1]
            packets = _packets(state) * 2  # the second time from the cache
            await loop.run_in_executor(None, _exchange, port, socket.AF_INET, "127.0.0.1", packets)
        finally:
            transport.close()
        durations = responder.stats.durations["udp"]
        assert durations.total > 0
        counted.append(
            (
                responder.stats.responses,
                responder.stats.truncated,
                responder.stats.dropped,
                sum(durations.counts),
            )
        )
    batched_counts, asyncio_counts = counted
    assert batched_counts[3] == 600
    assert batched_counts == asyncio_counts


@st.composite
def maybe_scoped(draw: st.DrawFn) -> model.IPAddress:
    ip = draw(ips())
    if ip.version == 6 and draw(st.integers(0, 5)) == 0:
        return ipaddress.IPv6Address(f"{ip}%{draw(st.sampled_from(['eth0', '1']))}")
    return ip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            maybe_scoped() | st.sampled_from(["192.0.2.1", "2001:db8::1"]).map(model.parse_ip), max_size=5
        )
    ),
    st.integers(0, 2**31 - 1),
)
def test_area_records_merge_like_address_rrsets(nodes: list[list[model.IPAddress]], ttl: int) -> None:
    """Zone merges per-node encoded records; the RRsets must equal encoding all addresses."""
    groups = [records.address_records(node, ttl) for node in nodes]
    flat = [ip for node in nodes for ip in node]
    assert records.merged_rrsets(groups, ttl) == records.address_rrsets(flat, ttl)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rotating_answers_equal_the_full_path(path: str, data: st.DataObject) -> None:
    """With max_answers, UDP answers rotate per name: the cached windows must be the bytes the
    full path gives for the same turn, and the turn must move exactly as the full path's."""
    world = data.draw(worlds())
    limit = data.draw(st.integers(1, 4))
    size = data.draw(st.sampled_from([512, 1232, 4096]))
    responder = responder_mod.Responder(world.state.snapshot, edns_udp_size=size, max_answers=limit)
    world.state.subscribe(responder.publish)
    turns: dict[tuple[bytes, int], int] = {}
    packets = [data.draw(queries(world)) for _ in range(data.draw(st.integers(1, 6)))]
    for step in range(data.draw(st.integers(1, 30))):
        if step == 10:  # a new snapshot: windows are rebuilt, turns go on
            node = data.draw(node_facts("node-0", world.areas))
            world.state.apply(node.name, node, "1000000")
        packet = respell(data.draw, data.draw(st.sampled_from(packets)))
        got = udp_respond(responder, path)(packet)
        parsed = query.decode(packet)
        if parsed is None:
            assert got is None
            continue
        key = (b".".join(parsed.labels).lower(), parsed.qtype)
        turn = turns.get(key, 0)
        wire, _, windows = responder_mod.reply(
            parsed, responder.snapshot, tcp=False, edns_udp_size=size, max_answers=limit, turn=turn
        )
        if windows > 1:
            turns[key] = turn + 1
        assert got == wire, f"turn {turn} of {windows}: {packet.hex()}"
        tcp_reply = responder_mod.answer(packet, responder.snapshot, tcp=True, edns_udp_size=size)
        assert responder.respond_tcp(packet) == (tcp_reply[0] if tcp_reply else None)
