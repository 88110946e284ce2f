"""Response rate limiting (RRL) for the UDP listener: per client prefix, off by default.

A spoofed-source flood turns an authoritative server into an amplifier aimed at the victim
whose address was forged. RRL caps how many answers one client prefix (IPv4 /24, IPv6 /56 by
default) gets per second, with a separate budget for NXDOMAIN (random-subdomain floods).

Each (prefix, category) has an account, as BIND's RRL keeps it: it earns ``rate`` credits a
second up to ``rate`` (one second of burst), every answer costs one, and it may go into debt
down to ``-rate * window``. While the balance is negative, answers are limited: every
``slip``-th one goes out as header + question with TC=1 (a real resolver retries over TCP,
which is never limited and cannot be spoofed), the rest are dropped. A client that keeps
flooding stays in debt; one that stops is answered again at most ``window`` seconds later.

Differences from BIND, on purpose: accounts are per prefix and category only (not per
prefix and name), so the rate is what one prefix may ask in total; errors (REFUSED, FORMERR)
count as ordinary responses. The table of accounts is bounded: when full, idle accounts are
dropped, and if that is not enough the table is cleared (briefly unlimited rather than
unbounded memory).

Cost: nothing per packet while off (the listener checks one attribute); while on, one address
parse, a dict lookup and a few float operations per answer.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from node_dns.protocol import HEADER, RCODE_MASK, TC_BYTE2, Rcode

RESPONSES = "responses"
NXDOMAINS = "nxdomains"
_HEADER = HEADER.size


@dataclass(slots=True)
class _Account:
    balance: float
    updated: float
    limited: int = 0
    """Limited answers since the account last went into debt: drives the slip pattern."""


@dataclass
class RateLimitStats:
    """Plain counters for the metrics sink: (category, action) -> count."""

    actions: dict[tuple[str, str], int] = field(default_factory=dict)
    table_overflows: int = 0

    def count(self, category: str, action: str) -> None:
        key = (category, action)
        self.actions[key] = self.actions.get(key, 0) + 1


def _networks(cidrs: Iterable[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """CIDRs as (network int, mask int) pairs, IPv4 and IPv6 apart."""
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        pair = (int(net.network_address), int(net.netmask))
        (v4 if net.version == 4 else v6).append(pair)
    return v4, v6


def _question_end(wire: bytes) -> int:
    """Where the one question of a response ends; the header's end if there is none to echo."""
    if wire[4:6] != b"\x00\x01":
        return _HEADER
    i, size = _HEADER, len(wire)
    while i < size:
        length = wire[i]
        if length == 0:
            end = i + 5
            return end if end <= size else _HEADER
        if length & 0xC0:  # our responses echo the question uncompressed; anything else is dropped
            return _HEADER
        i += length + 1
    return _HEADER


def truncated(wire: bytes) -> bytes:
    """Header + question of a response, with TC set and every other section empty."""
    end = _question_end(wire)
    counts = (b"\x00\x01" if end > _HEADER else b"\x00\x00") + bytes(6)
    return wire[:2] + bytes([wire[2] | TC_BYTE2]) + wire[3:4] + counts + wire[_HEADER:end]


class RateLimiter:
    """Decides, per answer, whether it is sent, sent truncated (slip) or dropped."""

    def __init__(
        self,
        *,
        responses_per_second: int,
        nxdomains_per_second: int | None = None,
        slip: int = 2,
        window: float = 15.0,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 56,
        exempt: Iterable[str] = (),
        max_accounts: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        nx = responses_per_second if nxdomains_per_second is None else nxdomains_per_second
        self._rates = {RESPONSES: float(responses_per_second), NXDOMAINS: float(nx)}
        self.slip = slip
        self.window = window
        self._v4_shift = 32 - ipv4_prefix
        self._v6_shift = 128 - ipv6_prefix
        self._exempt_v4, self._exempt_v6 = _networks(exempt)
        self._accounts: dict[tuple[int, str], _Account] = {}
        self._max_accounts = max_accounts
        self._clock = clock
        self.stats = RateLimitStats()

    @property
    def accounts(self) -> int:
        return len(self._accounts)

    def _prefix(self, host: str) -> int | None:
        """The client's prefix as an int, tagged by family; None if exempt (or unparsable)."""
        try:
            if ":" in host:
                value = int.from_bytes(socket.inet_pton(socket.AF_INET6, host.partition("%")[0]), "big")
                for net, mask in self._exempt_v6:
                    if value & mask == net:
                        return None
                return ((value >> self._v6_shift) << 1) | 1
            value = int.from_bytes(socket.inet_aton(host), "big")
        except (OSError, ValueError):
            return None
        for net, mask in self._exempt_v4:
            if value & mask == net:
                return None
        return (value >> self._v4_shift) << 1

    def check(self, wire: bytes, addr: Any) -> bytes | None:
        """The bytes to send for ``wire`` to ``addr``: itself, its truncated form, or None."""
        prefix = self._prefix(addr[0])
        if prefix is None:
            return wire
        category = NXDOMAINS if len(wire) > 3 and wire[3] & RCODE_MASK == Rcode.NXDOMAIN else RESPONSES
        rate = self._rates[category]
        if rate <= 0:
            return wire
        now = self._clock()
        key = (prefix, category)
        account = self._accounts.get(key)
        if account is None:
            if len(self._accounts) >= self._max_accounts:
                self._make_room(now)
            account = self._accounts[key] = _Account(balance=rate, updated=now)
        else:
            account.balance = min(rate, account.balance + (now - account.updated) * rate)
            account.updated = now
        account.balance = max(account.balance - 1.0, -rate * self.window)
        if account.balance >= 0:
            account.limited = 0
            return wire
        account.limited += 1
        if self.slip and account.limited % self.slip == 0:
            self.stats.count(category, "slipped")
            return truncated(wire)
        self.stats.count(category, "dropped")
        return None

    def _make_room(self, now: float) -> None:
        """Forget accounts that would be back to full credit anyway; clear all if that is not enough."""
        idle = self.window + 1.0
        for key, account in list(self._accounts.items()):
            if now - account.updated > idle:
                del self._accounts[key]
        if len(self._accounts) >= self._max_accounts * 0.9:
            self.stats.table_overflows += 1
            self._accounts.clear()
