"""Globally reachable per the IANA special-purpose registries, and where Python's is_global differs."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

import pytest

from node_dns.agent import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "agent.md"


def reachable(text: str) -> bool:
    return registry.globally_reachable(ipaddress.ip_address(text))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",  # Private-Use
        "172.16.0.1",
        "192.168.1.10",
        "100.64.0.1",  # Shared Address Space (CGNAT)
        "127.0.0.1",
        "169.254.1.1",
        "192.0.2.1",  # documentation
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",  # benchmarking
        "198.19.255.254",
        "192.0.0.8",  # IPv4 dummy address
        "192.0.0.170",
        "192.88.99.1",  # deprecated 6to4 relay anycast (N/A)
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",  # multicast
    ],
)
def test_special_ipv4_addresses_are_not_globally_reachable(address: str) -> None:
    assert not reachable(address)


@pytest.mark.parametrize(
    "address",
    [
        "::1",
        "::",
        "::ffff:192.0.2.1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",  # ULA
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "2001:2::1",  # benchmarking
        "2001::1",  # Teredo (N/A)
        "2002:c000:201::1",  # 6to4 (N/A)
        "2001:10::1",  # deprecated ORCHID (N/A)
        "64:ff9b:1::1",
        "100::1",  # discard-only
        "100:0:0:1::1",  # dummy prefix
        "5f00::1",  # SRv6 SIDs
        "2001:0:0:1::1",  # inside 2001::/23, no specific row
        "ff02::1",
        "fec0::1",  # deprecated site-local, outside 2000::/3
        "4000::1",  # outside the Global Unicast space
    ],
)
def test_special_ipv6_addresses_are_not_globally_reachable(address: str) -> None:
    assert not reachable(address)


@pytest.mark.parametrize(
    "address",
    [
        "11.0.0.10",
        "8.8.8.8",
        "192.0.0.9",  # PCP anycast: global inside the non-global 192.0.0.0/24
        "192.0.0.10",  # TURN anycast
        "192.31.196.1",  # AS112-v4
        "192.52.193.1",  # AMT
        "192.175.48.1",  # AS112 direct delegation
        "100.128.0.1",  # just past 100.64.0.0/10
        "198.20.0.1",  # just past 198.18.0.0/15
    ],
)
def test_ordinary_and_registry_global_ipv4_addresses_are_reachable(address: str) -> None:
    assert reachable(address)


@pytest.mark.parametrize(
    "address",
    [
        "2a00:1450::1",
        "3ffe::10",
        "2001:1::1",  # PCP anycast inside 2001::/23
        "2001:1::2",  # TURN anycast
        "2001:1::3",  # DNS-SD SRP anycast
        "2001:3::1",  # AMT
        "2001:4:112::1",  # AS112-v6
        "2001:20::1",  # ORCHIDv2
        "2001:30::1",  # DETs
        "2620:4f:8000::1",  # AS112 direct delegation
        "64:ff9b::c000:201",  # well-known NAT64 prefix: global per the registry
        "2001:200::1",  # just past 2001::/23
    ],
)
def test_ordinary_and_registry_global_ipv6_addresses_are_reachable(address: str) -> None:
    assert reachable(address)


def test_the_most_specific_row_decides() -> None:
    row = registry.special_row(ipaddress.ip_address("2001:1::1"))

    assert row is not None and str(row.block) == "2001:1::1/128" and row.reachable is True


def test_every_row_has_an_address_of_its_own() -> None:
    for row in registry.IPV4_SPECIAL + registry.IPV6_SPECIAL:
        assert registry.special_row(registry.representative(row)) == row


def _documented_differences() -> set[tuple[str, bool, bool]]:
    """Rows of the table in docs/agent.md: block, Python's is_global, ours."""
    text = DOC.read_text()
    section = text.split("## Python's `is_global` and the registries", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.match(r"^[0-9a-f:.]+/\d+$", cells[0]):
            rows.add((cells[0], cells[2] == "global", cells[3] == "global"))
    return rows


def test_documented_python_version_is_this_one() -> None:
    version = ".".join(map(str, sys.version_info[:3]))

    assert f"Python {version}" in DOC.read_text()


def test_differences_from_python_is_global_are_the_documented_ones() -> None:
    measured = {(str(d.block), d.python, d.ours) for d in registry.python_differences()}

    assert measured == _documented_differences()
