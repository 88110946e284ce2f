"""Who may transfer the zone (``--transfer-allow``) and whom we NOTIFY (``--notify``).

Nothing may transfer by default.

Entries are separated by ``;``; each is a client prefix (``10.0.0.0/8``, ``2001:db8::/32``, or
an address), ``key=NAME`` (any client that signs with that TSIG key), or ``PREFIX+key=NAME``
(both). A transfer is allowed when any entry matches. Pure and cheap: checked per transfer.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RuleError(ValueError):
    """An entry that cannot be understood; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Rule:
    network: Network | None
    key: str | None
    """TSIG key name (lower case, no trailing dot), or None for "any or no key"."""

    def matches(self, client: ipaddress.IPv4Address | ipaddress.IPv6Address | None, key: str | None) -> bool:
        if self.key is not None and self.key != key:
            return False
        if self.network is not None:
            return client is not None and client.version == self.network.version and client in self.network
        return True

    def __str__(self) -> str:
        parts = [str(self.network)] if self.network is not None else []
        if self.key is not None:
            parts.append(f"key={self.key}")
        return "+".join(parts)


def parse(text: str) -> tuple[Rule, ...]:
    rules = []
    for entry in (part.strip() for part in text.split(";")):
        if entry:
            rules.append(parse_rule(entry))
    return tuple(rules)


def parse_rule(entry: str) -> Rule:
    network: Network | None = None
    key: str | None = None
    for part in (p.strip() for p in entry.split("+")):
        if part.lower().startswith("key="):
            if key is not None:
                raise RuleError(f"{entry!r}: more than one key")
            key = part[4:].strip().rstrip(".").lower()
            if not key:
                raise RuleError(f"{entry!r}: key= needs a key name")
        else:
            if network is not None:
                raise RuleError(f"{entry!r}: more than one prefix")
            try:
                network = ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise RuleError(f"{entry!r}: {part!r} is neither a prefix nor key=NAME") from None
    return Rule(network, key)


def client_address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer address of a socket, IPv4-mapped IPv6 folded to IPv4, scope dropped."""
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def allowed(rules: tuple[Rule, ...], client: str | None, key: str | None) -> bool:
    address = client_address(client)
    return any(rule.matches(address, key) for rule in rules)


# --- NOTIFY targets ---------------------------------------------------------------------------
_TARGET = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s+]+))(?::(?P<port>\d+))?(?:\+key=(?P<key>\S+))?$")


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int = 53
    key: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_targets(text: str) -> tuple[Target, ...]:
    """``192.0.2.7:53+key=xfr, [2001:db8::7]:53``: entries separated by ``,``; port 53 by default."""
    targets = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = _TARGET.match(entry.replace(" ", ""))
        if match is None:
            raise RuleError(f"{entry!r} is not host[:port][+key=NAME] (IPv6 in brackets)")
        host = match.group("v6") or match.group("host")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise RuleError(f"{entry!r}: {host!r} is not an IP address") from None
        port = int(match.group("port") or 53)
        if not 0 < port < 65536:
            raise RuleError(f"{entry!r}: port {port} is out of range")
        key = match.group("key")
        targets.append(Target(str(address), port, key.rstrip(".").lower() if key else None))
    return tuple(targets)
