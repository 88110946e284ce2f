"""A mutation fuzzer for the query path: seeds, mutators, the checks, and live listeners.

Every input goes through the pure path (``answer()``) and through ``Responder`` (whose response
cache must give the same bytes as the pure path, byte for byte), on a synced and on an unsynced
zone. Every reply must parse with dnspython, carry the query's ID and QR, echo the question and
fit the UDP size. A share of the inputs is also sent to real UDP and TCP listeners on loopback,
each batch followed by a valid query that must still be answered.

Deterministic: the same seed gives the same inputs, so any failure can be replayed with
``python -m tests.fuzz.run --seed N --inputs M``. No coverage guidance (atheris would give it, but
the query decoder is small enough that mutating well-formed seeds reaches every branch).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rdataclass
import dns.rdatatype

from node_dns.answer import responder as responder_mod
from node_dns.settings import Settings
from node_dns.transports import state as state_mod
from node_dns.transports import tcp, udp
from node_dns.zone import snapshot
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone

ZONE = "lb.example.net"
EDNS_SIZE = 1232
CANARY_NAME = f"web.{ZONE}"
CANARY_ADDRESSES = {"192.0.2.1", "192.0.2.2"}

# --- the zone under test ----------------------------------------------------------------------


def zone_settings() -> Settings:
    return Settings(
        zone=ZONE,
        nameservers=f"ns1.{ZONE}=192.0.2.53,2001:db8::53; ns2.example.org",
        soa_email="hostmaster@example.net",
        edns_udp_size=EDNS_SIZE,
    )


def zones() -> tuple[snapshot.Snapshot, snapshot.Snapshot]:
    """A synced zone with small, large, IPv6 and empty-non-terminal names; and an unsynced one."""
    from node_dns import model

    settings = zone_settings()
    unsynced = Zone(zone_config(settings), Policy(cordoned_healthy=settings.cordoned_healthy)).snapshot

    def node(name: str, areas: list[str], ips: list[str], ready: bool = True) -> model.NodeFacts:
        return model.NodeFacts(
            name=name, areas=frozenset(areas), ips=tuple(model.parse_ip(i) for i in ips), ready=ready
        )

    facts = [
        node("n1", ["web", "both"], ["192.0.2.1", "2001:db8::1"]),
        node("n2", ["web"], ["192.0.2.2"]),
        node("n3", ["down"], ["192.0.2.3"], ready=False),
        node("n4", ["v6"], ["2001:db8::4"]),
    ]
    facts += [node(f"big{i}", ["big"], [f"10.0.{i // 250}.{i % 250 + 1}"]) for i in range(300)]
    state = Zone(zone_config(settings), Policy(cordoned_healthy=settings.cordoned_healthy))
    state.replace_all([(f, "100") for f in facts], "100")
    return state.snapshot, unsynced


# --- seeds ------------------------------------------------------------------------------------


def _query(name: str, rdtype: int, rdclass: int = 1, **kwargs: object) -> bytes:
    return dns.message.make_query(name, rdtype, rdclass, **kwargs).to_wire()  # type: ignore[arg-type]


def seeds() -> list[bytes]:
    names = [
        ZONE,
        "WEB.Lb.Example.NET",
        f"web.{ZONE}",
        f"big.{ZONE}",
        f"v6.{ZONE}",
        f"down.{ZONE}",
        f"ns1.{ZONE}",
        f"nope.{ZONE}",
        f"a.b.c.{ZONE}",
        "example.org",
        ".",
        "x" * 63 + "." + ZONE,
    ]
    types = [1, 28, 2, 6, 255, 16, 15, 33, 65, 252, 251, 41, 250, 0, 65535]
    out: list[bytes] = []
    for name in names:
        for rdtype in types:
            out.append(_query(name, rdtype))
    for name in (ZONE, f"web.{ZONE}", f"big.{ZONE}"):
        for payload in (512, 1232, 4096, 65535, 0):
            out.append(_query(name, 1, use_edns=0, payload=payload))
        out.append(_query(name, 1, use_edns=1))
        out.append(_query(name, 1, use_edns=0, want_dnssec=True))
        out.append(
            _query(
                name,
                28,
                use_edns=0,
                options=[
                    dns.edns.GenericOption(10, b"\x01" * 8),  # COOKIE
                    dns.edns.ECSOption("192.0.2.0", 24),
                    dns.edns.GenericOption(12, b"\x00" * 40),  # padding
                ],
            )
        )
        for rdclass in (3, 255, 254, 4):
            out.append(_query(name, 1, rdclass))
    for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.IQUERY, dns.opcode.STATUS, 3, 15):
        msg = dns.message.make_query(ZONE, 6)
        msg.set_opcode(opcode)
        out.append(msg.to_wire())
    base = _query(f"web.{ZONE}", 1)
    header, body = base[:12], base[12:]
    out += [
        b"",
        base[:11],
        header,
        header[:4] + b"\x00\x02" + header[6:] + body + body,  # two questions
        header[:4] + b"\x00\x00" + header[6:],  # no question
        header[:2] + b"\x81\x00" + header[4:] + body,  # a response
        header[:6]
        + b"\x00\x01"
        + header[8:]
        + body
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x01\x02\x03\x04",
        header[:10] + b"\x00\x02" + body + (b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00") * 2,  # 2 OPT
        header + b"\xc0\x0c\x00\x01\x00\x01",  # pointer in the question
        header + b"\x03web\xc0\x0e\x00\x01\x00\x01",
        header[:10] + b"\x00\x01" + body + b"\xc0\x20\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00",  # fwd ptr
        header + b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00\x00\x01\x00\x01",  # > 255
        header + b"\x40abc\x00\x00\x01\x00\x01",  # extended label type
        header + b"\x80abc\x00\x00\x01\x00\x01",
    ]
    return out


# --- mutation -------------------------------------------------------------------------------------

_NAME_POOL = [
    [b"lb", b"example", b"net"],
    [b"web", b"lb", b"example", b"net"],
    [b"big", b"lb", b"example", b"net"],
    [b"v6", b"lb", b"example", b"net"],
    [b"both", b"lb", b"example", b"net"],
    [b"down", b"lb", b"example", b"net"],
    [b"ns1", b"lb", b"example", b"net"],
    [b"nope", b"lb", b"example", b"net"],
    [b"example", b"net"],
    [b"example", b"org"],
    [],
]
INTERESTING_BYTES = (0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF)
INTERESTING_U16 = (0, 1, 2, 41, 255, 512, 1232, 0x7FFF, 0x8000, 0xC00C, 0xFFFF)


class Mutator:
    def __init__(self, rng: random.Random, corpus: list[bytes]) -> None:
        self.rng = rng
        self.corpus = corpus

    def _flip(self, data: bytearray) -> None:
        if data:
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)

    def _byte(self, data: bytearray) -> None:
        if data:
            value = self.rng.choice(INTERESTING_BYTES) if self.rng.random() < 0.5 else self.rng.randrange(256)
            data[self.rng.randrange(len(data))] = value

    def _u16(self, data: bytearray) -> None:
        if len(data) >= 2:
            at = (
                self.rng.choice((2, 4, 6, 8, 10))
                if self.rng.random() < 0.5
                else self.rng.randrange(len(data) - 1)
            )
            at = min(at, len(data) - 2)
            data[at : at + 2] = struct.pack("!H", self.rng.choice(INTERESTING_U16))

    def _insert(self, data: bytearray) -> None:
        at = self.rng.randrange(len(data) + 1)
        data[at:at] = self.rng.randbytes(self.rng.randint(1, 16))

    def _delete(self, data: bytearray) -> None:
        if data:
            at = self.rng.randrange(len(data))
            del data[at : at + self.rng.randint(1, 16)]

    def _truncate(self, data: bytearray) -> None:
        if data:
            del data[self.rng.randrange(len(data)) :]

    def _duplicate(self, data: bytearray) -> None:
        if data:
            at = self.rng.randrange(len(data))
            chunk = data[at : at + self.rng.randint(1, 32)]
            where = self.rng.randrange(len(data) + 1)
            data[where:where] = chunk * self.rng.randint(1, 4)

    def _splice(self, data: bytearray) -> None:
        other = self.rng.choice(self.corpus)
        if other:
            at = self.rng.randrange(len(data) + 1)
            start = self.rng.randrange(len(other))
            data[at:] = other[start:]

    def _append(self, data: bytearray) -> None:
        data += self.rng.randbytes(self.rng.randint(1, 64))

    def mutate(self, seed: bytes) -> bytes:
        data = bytearray(seed)
        ops = (
            self._flip,
            self._byte,
            self._byte,
            self._u16,
            self._u16,
            self._insert,
            self._delete,
            self._truncate,
            self._duplicate,
            self._splice,
            self._append,
        )
        for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            self.rng.choice(ops)(data)
        return bytes(data)

    def structured(self) -> bytes:
        """A well-framed query with random fields: reaches lookup() far more often than bit flips."""
        rng = self.rng
        labels = rng.choice(_NAME_POOL)
        labels = [
            bytes(c ^ 0x20 if c >= 0x61 and rng.random() < 0.3 else c for c in label) for label in labels
        ]
        if rng.random() < 0.2:
            labels.insert(0, rng.randbytes(rng.randint(1, 63)))
        name = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
        qtype = (
            rng.choice((1, 28, 2, 6, 255, 16, 252, 251, 41)) if rng.random() < 0.8 else rng.randrange(65536)
        )
        qclass = rng.choice((1, 1, 1, 3, 255, 254)) if rng.random() < 0.9 else rng.randrange(65536)
        flags = (
            rng.choice((0x0100, 0x0000, 0x0120, 0x0110))
            if rng.random() < 0.8
            else rng.randrange(65536) & 0x7FFF
        )
        additional = b""
        arcount = 0
        if rng.random() < 0.5:
            options = b"".join(
                struct.pack("!HH", rng.choice((3, 8, 10, 12, 15, rng.randrange(65536))), n) + rng.randbytes(n)
                for n in (rng.randint(0, 40) for _ in range(rng.randint(0, 3)))
            )
            version = 0 if rng.random() < 0.9 else rng.randrange(256)
            ttl = (rng.randrange(256) << 24) | (version << 16) | (0x8000 if rng.random() < 0.3 else 0)
            payload = rng.choice((0, 512, 1232, 1400, 4096, 65535, rng.randrange(65536)))
            additional = b"\x00" + struct.pack("!HHIH", 41, payload, ttl, len(options)) + options
            arcount = 1
        return (
            struct.pack("!HHHHHH", rng.randrange(65536), flags, 1, 0, 0, arcount)
            + name
            + struct.pack("!HH", qtype, qclass)
            + additional
        )

    def next_input(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.3:
            structured = self.structured()
            return structured if self.rng.random() < 0.7 else self.mutate(structured)
        if roll < 0.04:
            return self.rng.randbytes(self.rng.randint(0, 600))
        if roll < 0.08:  # a random header in front of a random seed's question
            return self.rng.randbytes(12) + self.rng.choice(self.corpus)[12:]
        return self.mutate(self.rng.choice(self.corpus))


def inputs(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    corpus = seeds()
    mutator = Mutator(rng, corpus)
    for index in range(count):
        yield corpus[index] if index < len(corpus) else mutator.next_input()


# --- checks ---------------------------------------------------------------------------------------


class Finding(Exception):
    """A fuzz input broke a rule; the message says which."""


def parse(wire: bytes) -> dns.message.Message:
    """dnspython's strict reading of a reply (for opcode UPDATE, RFC 2136's rules apply)."""
    return dns.message.from_wire(wire, ignore_trailing=False, one_rr_per_rrset=True)


def check_reply(data: bytes, wire: bytes, *, tcp: bool) -> dns.message.Message:
    """Rules every reply must follow, whatever the query was."""
    if len(wire) < 12:
        raise Finding(f"reply shorter than a header: {wire.hex()}")
    try:
        msg = parse(wire)
    except dns.exception.DNSException as error:
        raise Finding(f"reply does not parse with dnspython: {error!r}") from error
    if wire[:2] != data[:2]:
        raise Finding("reply ID differs from the query's")
    if not msg.flags & dns.flags.QR:
        raise Finding("reply without QR")
    if not tcp:
        limit = EDNS_SIZE if msg.edns >= 0 else 512  # no OPT back means the query had none
        if len(wire) > limit:
            raise Finding(f"UDP reply of {len(wire)} bytes exceeds {limit}")
    if msg.flags & dns.flags.TC and (msg.answer or msg.authority):
        raise Finding("truncated reply carries records")
    qd = (wire[4] << 8) | wire[5]
    if qd == 1:
        qlen = len(msg.question[0].name.to_wire()) + 4
        if wire[12 : 12 + qlen] != data[12 : 12 + qlen]:
            raise Finding("question not echoed byte for byte")
    elif qd != 0:
        raise Finding(f"reply with {qd} questions")
    return msg


@dataclass
class Checker:
    """The in-process checks; ``check(data)`` raises :class:`Finding` on the first broken rule."""

    synced: snapshot.Snapshot
    unsynced: snapshot.Snapshot
    responders: list[responder_mod.Responder] = field(default_factory=list)
    replies: int = 0

    def __post_init__(self) -> None:
        # a small cache so that evictions (cache.clear()) also get exercised
        self.responders = [
            responder_mod.Responder(self.synced, edns_udp_size=EDNS_SIZE, max_cached=512),
            responder_mod.Responder(self.unsynced, edns_udp_size=EDNS_SIZE, max_cached=512),
        ]

    def check(self, data: bytes, index: int = 0) -> None:
        responder = self.responders[1 if index % 8 == 7 else 0]
        snap = responder.snapshot
        try:
            for tcp_path in (False, True):
                ref = responder_mod.answer(data, snap, tcp=tcp_path, edns_udp_size=EDNS_SIZE)
                respond = responder.respond_tcp if tcp_path else responder.respond_udp
                first, second = respond(data), respond(data)  # the second is a cache hit if cacheable
                expected = None if ref is None else ref[0]
                if first != expected or second != expected:
                    raise Finding(f"Responder ({'tcp' if tcp_path else 'udp'}) differs from answer()")
                if expected is not None:
                    self.replies += 1
                    check_reply(data, expected, tcp=tcp_path)
        except Finding:
            raise
        except Exception as error:
            raise Finding(f"exception: {error!r}\n{traceback.format_exc()}") from error


# --- live listeners -------------------------------------------------------------------------------


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LiveServer:
    """The real UDP and TCP listener classes on a loopback port, on an event loop in a thread."""

    def __init__(self, snap: snapshot.Snapshot) -> None:
        self.snap = snap
        self.state = state_mod.TransportState(idle_timeout=10.0, max_connections=256, max_queries=100_000)
        self.responder = responder_mod.Responder(snap, edns_udp_size=EDNS_SIZE)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.log = _Counter()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-live-server", daemon=True)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def __enter__(self) -> LiveServer:
        logging.getLogger("node_dns").addHandler(self.log)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        future.result(10)
        return self

    async def _start(self) -> None:
        for attempt in range(50):  # the UDP port's number may be taken for TCP: pick another
            self._udp = await udp.listen("127.0.0.1", 0, self.responder, self.state)
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await tcp.listen("127.0.0.1", self.port, self.responder, self.state)
                return
            except OSError:
                self._udp.close()
                if attempt == 49:
                    raise

    async def _stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for conn in list(self.state.connections):
            conn.abort()
        await asyncio.sleep(0)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        logging.getLogger("node_dns").removeHandler(self.log)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def canary(qid: int, name: str = CANARY_NAME) -> bytes:
    msg = dns.message.make_query(name, "A")
    msg.id = qid
    return msg.to_wire()


def is_canary(msg: dns.message.Message, qid: int, name: str) -> bool:
    return msg.id == qid and bool(msg.question) and msg.question[0].name.to_text().lower() == name + "."


def check_canary(wire: bytes, qid: int, expected: set[str] = CANARY_ADDRESSES) -> None:
    msg = dns.message.from_wire(wire)
    if msg.id != qid or msg.rcode() != 0:
        raise Finding(f"valid query after a fuzz batch answered wrongly: {msg}")
    got = {rd.to_text() for rrset in msg.answer for rd in rrset}
    if got != expected:
        raise Finding(f"valid query after a fuzz batch answered {got}")


class UdpFeeder:
    """Sends fuzz packets, then a canary; every datagram back must parse; the canary must come."""

    def __init__(
        self,
        address: tuple[str, int],
        timeout: float = 3.0,
        name: str = CANARY_NAME,
        expected: set[str] = CANARY_ADDRESSES,
    ) -> None:
        self.name, self.expected = name, expected
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect(address)
        self.sock.settimeout(timeout)
        self.sent = 0
        self.replies = 0
        self._qid = 0

    def close(self) -> None:
        self.sock.close()

    def batch(self, packets: list[bytes]) -> None:
        for packet in packets:
            self.sock.send(packet[:65507])
            self.sent += 1
        self._qid = (self._qid + 1) % 65536
        qid = self._qid
        self.sock.send(canary(qid, self.name))
        while True:
            try:
                wire = self.sock.recv(65535)
            except TimeoutError:
                raise Finding("UDP listener stopped answering after a fuzz batch") from None
            try:
                msg = parse(wire)
            except dns.exception.DNSException as error:
                raise Finding(f"live UDP reply does not parse: {error!r} {wire.hex()}") from error
            self.replies += 1
            if is_canary(msg, qid, self.name):
                check_canary(wire, qid, self.expected)
                return


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise Finding("TCP connection closed before the canary was answered")
        chunks += chunk
    return bytes(chunks)


class TcpFeeder:
    """One connection per batch: framed fuzz messages then a canary, pipelined; replies in order."""

    def __init__(
        self,
        address: tuple[str, int],
        timeout: float = 5.0,
        name: str = CANARY_NAME,
        expected: set[str] = CANARY_ADDRESSES,
    ) -> None:
        self.name, self.expected = name, expected
        self.address = address
        self.timeout = timeout
        self.sent = 0
        self.replies = 0
        self.raw_streams = 0

    def batch(self, packets: list[bytes]) -> None:
        qid = (self.sent + 1) % 65536
        payload = b"".join(len(p[:65535]).to_bytes(2, "big") + p[:65535] for p in packets)
        final = canary(qid, self.name)
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(payload + len(final).to_bytes(2, "big") + final)
            self.sent += len(packets)
            while True:
                try:
                    length = int.from_bytes(_read_exact(sock, 2), "big")
                    wire = _read_exact(sock, length)
                except TimeoutError:
                    raise Finding("TCP listener stopped answering after a fuzz batch") from None
                try:
                    msg = parse(wire)
                except dns.exception.DNSException as error:
                    raise Finding(f"live TCP reply does not parse: {error!r} {wire.hex()}") from error
                self.replies += 1
                if is_canary(msg, qid, self.name):
                    check_canary(wire, qid, self.expected)
                    return

    def raw_stream(self, data: bytes) -> None:
        """Unframed garbage (bad length prefixes, half messages), then hang up."""
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.2)
            try:
                while sock.recv(65535):
                    pass
            except (TimeoutError, ConnectionResetError):
                pass
        self.raw_streams += 1


# --- the loop -------------------------------------------------------------------------------------


@dataclass
class Report:
    inputs: int = 0
    replies: int = 0
    live_udp: int = 0
    live_udp_replies: int = 0
    live_tcp: int = 0
    live_tcp_replies: int = 0
    raw_tcp_streams: int = 0
    seconds: float = 0.0
    findings: list[tuple[int, bytes, str]] = field(default_factory=list)
    log_records: int = 0
    internal_errors: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        return (
            f"{self.inputs} inputs in {self.seconds:.1f}s ({rate:.0f}/s): {self.replies} replies checked; "
            f"live UDP {self.live_udp} packets ({self.live_udp_replies} replies), live TCP {self.live_tcp} "
            f"messages ({self.live_tcp_replies} replies) + {self.raw_tcp_streams} raw streams; "
            f"{len(self.findings)} findings, {self.internal_errors} internal errors, "
            f"{self.log_records} log records at WARNING or above"
        )

    def outcomes(self) -> str:
        return ", ".join(
            f"{rcode} {count}" for rcode, count in sorted(self.rcodes.items(), key=lambda i: -i[1])
        )


def run(
    *,
    seed: int,
    count: int,
    live_every: int = 10,
    batch: int = 64,
    max_findings: int = 20,
    progress: Callable[[Report], None] | None = None,
    progress_every: int = 100_000,
) -> Report:
    """Fuzz ``count`` inputs; every ``live_every``-th also goes to the live listeners (0: none)."""
    synced, unsynced = zones()
    checker = Checker(synced, unsynced)
    report = Report()
    started = time.monotonic()
    server = LiveServer(synced) if live_every else None
    udp_batch: list[bytes] = []
    tcp_batch: list[bytes] = []
    rng = random.Random(seed ^ 0x5EED)

    def flush(final: bool = False) -> None:
        assert server is not None
        if udp_batch and (final or len(udp_batch) >= batch):
            udp_feeder.batch(udp_batch)
            udp_batch.clear()
        if tcp_batch and (final or len(tcp_batch) >= batch):
            tcp_feeder.batch(tcp_batch)
            tcp_batch.clear()

    with server if server is not None else _null():
        if server is not None:
            udp_feeder = UdpFeeder(server.address)
            tcp_feeder = TcpFeeder(server.address)
        try:
            for index, data in enumerate(inputs(seed, count)):
                try:
                    checker.check(data, index)
                    if server is not None and index % live_every == 0:
                        udp_batch.append(data)
                        if index % (live_every * 2) == 0:
                            tcp_batch.append(data)
                        if rng.random() < 0.002:
                            tcp_feeder.raw_stream(rng.randbytes(rng.randint(1, 300)) + data)
                        flush()
                except Finding as finding:
                    report.findings.append((index, data, str(finding)))
                    udp_batch.clear()
                    tcp_batch.clear()
                    if len(report.findings) >= max_findings:
                        break
                report.inputs += 1
                if progress is not None and report.inputs % progress_every == 0:
                    report.seconds = time.monotonic() - started
                    report.replies = checker.replies
                    if server is not None:
                        report.live_udp, report.live_tcp = udp_feeder.sent, tcp_feeder.sent
                        report.live_udp_replies, report.live_tcp_replies = (
                            udp_feeder.replies,
                            tcp_feeder.replies,
                        )
                    progress(report)
            if server is not None:
                try:
                    flush(final=True)
                except Finding as finding:
                    report.findings.append((-1, b"", str(finding)))
        finally:
            if server is not None:
                udp_feeder.close()
                report.live_udp, report.live_udp_replies = udp_feeder.sent, udp_feeder.replies
                report.live_tcp, report.live_tcp_replies = tcp_feeder.sent, tcp_feeder.replies
                report.raw_tcp_streams = tcp_feeder.raw_streams
                report.internal_errors = server.state.internal_errors
                report.log_records = len(server.log.records)
    report.replies = checker.replies
    report.seconds = time.monotonic() - started
    for responder in checker.responders:
        for (_, _, rcode), seen in responder.stats.responses.items():
            report.rcodes[rcode] = report.rcodes.get(rcode, 0) + seen
    if report.internal_errors:
        report.findings.append((-1, b"", f"{report.internal_errors} internal errors in the live listeners"))
    return report


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
