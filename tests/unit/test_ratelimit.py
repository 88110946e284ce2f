"""Response rate limiting: the account arithmetic, slip, prefixes, exemptions, and the wiring.

A fake clock drives :class:`RateLimiter`, so each rule is checked exactly; one test runs the
real UDP protocol class to check what goes out on the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import pytest

from node_dns import app
from node_dns.answer import responder as responder_mod
from node_dns.transports import ratelimit, udp
from node_dns.transports import state as state_mod
from tests.unit.zonekit import ask, facts, query, settings, synced_zone

ZONE = "lb.example.net"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def wires() -> dict[str, bytes]:
    snap = synced_zone([facts("a", ["web"], ["192.0.2.1"])]).snapshot
    ok, _ = ask(query(f"web.{ZONE}", "A", id=7), snap)
    nx, _ = ask(query(f"nope.{ZONE}", "A", id=8), snap)
    refused, _ = ask(query("example.org", "A", id=9), snap)
    return {"ok": ok, "nx": nx, "refused": refused}


def _limiter(clock: Clock, **kwargs: Any) -> ratelimit.RateLimiter:
    values: dict[str, Any] = {"responses_per_second": 5, "slip": 2, "window": 15.0}
    values.update(kwargs)
    return ratelimit.RateLimiter(clock=clock, **values)


def _outcomes(limiter: ratelimit.RateLimiter, wire: bytes, host: str, count: int) -> list[str]:
    out = []
    for _ in range(count):
        sent = limiter.check(wire, (host, 5353))
        out.append("sent" if sent == wire else "slip" if sent is not None else "drop")
    return out


def test_off_by_default() -> None:
    assert app.rate_limiter(settings()) is None


def test_on_when_either_rate_is_set() -> None:
    assert app.rate_limiter(settings(rrl_responses_per_second=10)) is not None
    assert app.rate_limiter(settings(rrl_nxdomains_per_second=10)) is not None


def test_burst_of_one_second_then_limited_with_slip_every_second(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock())
    outcomes = _outcomes(limiter, wires["ok"], "192.0.2.10", 11)
    assert outcomes == ["sent"] * 5 + ["drop", "slip"] * 3
    assert limiter.stats.actions == {("responses", "dropped"): 3, ("responses", "slipped"): 3}


def test_clients_under_the_rate_are_never_limited(wires: dict[str, bytes]) -> None:
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(200):  # 50 s at 4 queries/s against a rate of 5/s
        clock.now += 0.25
        assert limiter.check(wires["ok"], ("192.0.2.10", 1)) == wires["ok"]


def test_limited_answers_still_cost_so_a_sustained_flood_stays_limited(wires: dict[str, bytes]) -> None:
    """As in BIND: the rate is averaged over the window, so twice the rate is not half answered."""
    clock = Clock()
    limiter = _limiter(clock, slip=0)
    sent = 0
    for _ in range(100):  # 10 s at 10 queries/s against a rate of 5/s
        clock.now += 0.1
        sent += limiter.check(wires["ok"], ("192.0.2.10", 1)) == wires["ok"]
    assert sent <= 10  # the one-second burst and little else


def test_a_flooder_stays_limited_up_to_the_window_after_it_stops(wires: dict[str, bytes]) -> None:
    clock = Clock()
    limiter = _limiter(clock, window=10.0, slip=0)
    _outcomes(limiter, wires["ok"], "192.0.2.10", 1000)  # deep in debt, floored at -rate*window
    clock.now += 9.5
    assert _outcomes(limiter, wires["ok"], "192.0.2.10", 1) == ["drop"]
    clock.now += 11.0
    assert _outcomes(limiter, wires["ok"], "192.0.2.10", 1) == ["sent"]


def test_slip_zero_drops_everything_and_one_truncates_everything(wires: dict[str, bytes]) -> None:
    assert set(_outcomes(_limiter(Clock(), slip=0), wires["ok"], "192.0.2.1", 20)[5:]) == {"drop"}
    assert set(_outcomes(_limiter(Clock(), slip=1), wires["ok"], "192.0.2.1", 20)[5:]) == {"slip"}


def test_slipped_reply_is_header_and_question_with_tc(wires: dict[str, bytes]) -> None:
    for name in ("ok", "nx", "refused"):
        wire = wires[name]
        slipped = ratelimit.truncated(wire)
        original = dns.message.from_wire(wire)
        msg = dns.message.from_wire(slipped)
        assert msg.id == original.id
        assert msg.flags & dns.flags.TC
        assert msg.flags & dns.flags.QR
        assert msg.rcode() == original.rcode()
        assert msg.question == original.question
        assert (msg.answer, msg.authority, msg.additional) == ([], [], [])
        assert len(slipped) == 12 + len(original.question[0].name.to_wire()) + 4


@pytest.mark.parametrize(
    "wire",
    [
        b"\x12\x34\x81\x01" + b"\x00" * 8,  # FORMERR without a question
        b"\x12\x34\x81\x01\x00\x01\x00\x00\x00\x00\x00\x00\x03abc",  # question cut short
        b"\x12\x34\x81\x01\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # pointer
    ],
)
def test_truncating_an_odd_response_keeps_only_the_header(wire: bytes) -> None:
    slipped = ratelimit.truncated(wire)
    assert slipped[:2] == wire[:2]
    assert slipped[2] & 0x02
    assert slipped[4:] == bytes(8)
    dns.message.from_wire(slipped)


def test_clients_in_one_prefix_share_an_account_and_other_prefixes_do_not(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0)
    assert _outcomes(limiter, wires["ok"], "192.0.2.10", 5) == ["sent"] * 5
    assert _outcomes(limiter, wires["ok"], "192.0.2.200", 1) == ["drop"]  # same /24
    assert _outcomes(limiter, wires["ok"], "192.0.3.10", 1) == ["sent"]  # another /24


def test_prefix_lengths_are_configurable(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0, ipv4_prefix=32)
    _outcomes(limiter, wires["ok"], "192.0.2.10", 5)
    assert _outcomes(limiter, wires["ok"], "192.0.2.11", 1) == ["sent"]


def test_ipv6_is_grouped_by_56(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0)
    _outcomes(limiter, wires["ok"], "2001:db8:0:1::1", 5)
    assert _outcomes(limiter, wires["ok"], "2001:db8:0:ff::2", 1) == ["drop"]  # same /56
    assert _outcomes(limiter, wires["ok"], "2001:db8:0:100::1", 1) == ["sent"]  # next /56
    assert _outcomes(limiter, wires["ok"], "fe80::1%lo", 1) == ["sent"]  # scope ids are fine


def test_ipv4_and_ipv6_accounts_never_collide(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0, ipv4_prefix=32, ipv6_prefix=128)
    _outcomes(limiter, wires["ok"], "0.0.0.1", 5)
    assert _outcomes(limiter, wires["ok"], "::1", 1) == ["sent"]


def test_exempt_networks_are_never_limited(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), exempt=["192.0.2.10/32", "2001:db8::/32"])
    assert set(_outcomes(limiter, wires["ok"], "192.0.2.10", 50)) == {"sent"}
    assert set(_outcomes(limiter, wires["ok"], "2001:db8::5", 50)) == {"sent"}
    assert "drop" in _outcomes(limiter, wires["ok"], "192.0.2.11", 50)  # same /24, not exempt


def test_nxdomains_have_their_own_budget(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0, responses_per_second=100, nxdomains_per_second=2)
    assert _outcomes(limiter, wires["nx"], "192.0.2.1", 4) == ["sent", "sent", "drop", "drop"]
    assert _outcomes(limiter, wires["ok"], "192.0.2.1", 4) == ["sent"] * 4
    assert limiter.stats.actions == {("nxdomains", "dropped"): 2}


def test_nxdomain_rate_zero_means_not_limited_separately(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), responses_per_second=2, nxdomains_per_second=0)
    assert set(_outcomes(limiter, wires["nx"], "192.0.2.1", 20)) == {"sent"}
    assert "drop" in _outcomes(limiter, wires["ok"], "192.0.2.1", 20)


def test_unset_nxdomain_rate_follows_the_response_rate(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0, responses_per_second=3)
    assert _outcomes(limiter, wires["nx"], "192.0.2.1", 4) == ["sent"] * 3 + ["drop"]


def test_errors_count_as_responses(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), slip=0, responses_per_second=2)
    assert _outcomes(limiter, wires["refused"], "192.0.2.1", 3) == ["sent", "sent", "drop"]


def test_the_account_table_is_bounded(wires: dict[str, bytes]) -> None:
    clock = Clock()
    limiter = _limiter(clock, max_accounts=1000, ipv4_prefix=32)
    for i in range(5000):  # a spoofed flood from 5,000 sources
        limiter.check(wires["ok"], (f"10.0.{i // 256}.{i % 256}", 1))
        clock.now += 0.0001
    assert limiter.accounts <= 1000
    clock.now += 100  # all idle: making room drops them rather than clearing
    limiter.check(wires["ok"], ("10.9.9.9", 1))
    assert limiter.accounts <= 1000


def test_unparsable_addresses_are_answered(wires: dict[str, bytes]) -> None:
    limiter = _limiter(Clock(), responses_per_second=1)
    assert set(_outcomes(limiter, wires["ok"], "not-an-ip", 5)) == {"sent"}


# --- the UDP protocol -----------------------------------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket behind it: no receive stamps to read


def _protocol(limiter: ratelimit.RateLimiter | None) -> tuple[udp.UdpProtocol, _Transport]:
    snap = synced_zone([facts("a", ["web"], ["192.0.2.1"])]).snapshot
    responder = responder_mod.Responder(snap)
    protocol = udp.UdpProtocol(responder, state_mod.TransportState(), limiter)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def test_udp_protocol_applies_the_limiter_per_source() -> None:
    limiter = _limiter(Clock(), responses_per_second=3, slip=2)
    protocol, transport = _protocol(limiter)
    q = query(f"web.{ZONE}", "A", id=1)
    for _ in range(10):
        protocol.datagram_received(q, ("192.0.2.10", 4000))
        protocol.datagram_received(q, ("198.51.100.1", 4000))
    flooder = [dns.message.from_wire(d) for d, a in transport.sent if a[0] == "192.0.2.10"]
    other = [dns.message.from_wire(d) for d, a in transport.sent if a[0] == "198.51.100.1"]
    assert len(flooder) == 3 + 3  # 3 answered, 7 limited: every second one slipped
    assert sum(bool(m.flags & dns.flags.TC) for m in flooder) == 3
    assert len(other) == 6
    assert protocol._responder.stats.dropped["rate_limited"] == 8


def test_udp_protocol_without_limiter_answers_everything() -> None:
    protocol, transport = _protocol(None)
    q = query(f"web.{ZONE}", "A")
    for _ in range(100):
        protocol.datagram_received(q, ("192.0.2.10", 4000))
    assert len(transport.sent) == 100


async def test_tcp_is_never_limited() -> None:
    """The limiter is only given to the UDP listener; the app passes none to TCP."""
    import inspect

    from node_dns.transports import tcp

    assert "limiter" not in inspect.signature(tcp.listen).parameters
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rrl_responses_per_second", "-1"),
        ("rrl_nxdomains_per_second", "-5"),
        ("rrl_slip", "11"),
        ("rrl_window", "0"),
        ("rrl_ipv4_prefix", "33"),
        ("rrl_ipv6_prefix", "0"),
        ("rrl_exempt", "10.0.0.0/8,bogus"),
    ],
)
def test_invalid_rrl_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings(**{name: value})


def test_exempt_accepts_a_comma_separated_string_and_normalises_host_bits() -> None:
    assert settings(rrl_exempt="10.1.2.3/8, 2001:db8::1/32").rrl_exempt == ["10.0.0.0/8", "2001:db8::/32"]
