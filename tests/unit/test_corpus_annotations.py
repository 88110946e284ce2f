"""Bad annotation values, exhaustively: never a crash, never another node affected.

Each corpus value is put on one node's areas or IPs annotation, next to a healthy neighbour in
the same area; the node source and zone must keep the neighbour's answer exact, keep the bad
node's valid entries, report what was skipped in bounded form, and do bounded work even at
256 KiB: at most MAX_ENTRIES entries of a value are checked, however long the value is. (Work is
counted in entry checks, not timed: a clock bound fails on a loaded machine and passes on a
fast one whatever the code does.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import dns.rcode
import pytest

from node_dns import model
from node_dns.sources import nodes, parsing
from node_dns.zone.writer import Zone
from tests.unit.zonekit import ask, new_zone, query, settings

AREAS = "example.net/node-areas"
IPS = "example.net/node-ips"
KEYS = nodes.Keys(areas=AREAS, ips=IPS)
ZONE = "lb.example.net"
KIB256 = 256 * 1024

AREA_CORPUS: dict[str, str] = {
    "empty": "",
    "blank": "   ",
    "only commas": ",,, ,",
    "leading hyphen": "-web",
    "trailing hyphen": "web-",
    "64 chars": "a" * 64,
    "dot": "web.more",
    "underscore": "we_b",
    "space inside": "we b",
    "tab and newline": "we\tb,\nweb2",
    "nul": "we\x00b",
    "unicode": "ünïcödé",
    "kelvin sign folds to k": "\u212aelvin",
    "emoji": "web😀",
    "right-to-left": "\u202eweb",
    "fullwidth": "\uff57\uff45\uff42",
    "semicolon list": "web;other",
    "json": '["web"]',
    "duplicates": "dup,dup,DUP, dup ",
    "many entries": ",".join(f"a{i}" for i in range(5000)),
    "256 KiB one label": "a" * KIB256,
    "256 KiB of commas": "," * KIB256,
    "256 KiB of bad entries": ("-x," * (KIB256 // 3))[:KIB256],
    "256 KiB unicode": "ü" * (KIB256 // 2),
}

IP_CORPUS: dict[str, str] = {
    "empty": "",
    "blank": "  ",
    "only commas": ",,,",
    "word": "not-an-ip",
    "three octets": "1.2.3",
    "five octets": "1.2.3.4.5",
    "octet over 255": "256.1.1.1",
    "leading zeros": "01.02.03.04",
    "cidr": "192.0.2.7/32",
    "unspecified v4": "0.0.0.0",
    "unspecified v6": "::",
    "multicast v4": "224.0.0.1",
    "multicast v6": "ff02::1",
    "zone index": "fe80::1%eth0",
    "v4-mapped v6": "::ffff:192.0.2.8",
    "arabic-indic digits": "\u0661.\u0662.\u0663.\u0664",
    "fullwidth digits": "\uff11\uff19\uff12.\uff10.\uff12.\uff19",
    "hex octets": "0xc0.0.2.10",
    "port": "192.0.2.11:53",
    "brackets": "[2001:db8::1]",
    "unicode": "ip-ünï",
    "nul": "192.0.2.12\x00",
    "duplicates": "192.0.2.13,192.0.2.13, 192.0.2.13",
    "v6 spellings of one address": "2001:db8::14,2001:DB8:0:0:0:0:0:14,2001:0db8::0014",
    "many entries": ",".join(f"10.1.{i // 256 % 256}.{i % 256}" for i in range(5000)),
    "256 KiB garbage": "x" * KIB256,
    "256 KiB of bad entries": ("999.1.1.1," * (KIB256 // 10))[:KIB256],
}

NEIGHBOUR_IP = "192.0.2.1"


def _body(name: str, areas: str | None, ips: str | None, ready: bool = True) -> dict[str, Any]:
    notes = {k: v for k, v in ((AREAS, areas), (IPS, ips)) if v is not None}
    return {
        "metadata": {"name": name, "annotations": notes, "resourceVersion": "5"},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


@pytest.fixture
def entry_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every area label and IP entry the parsers check, in order (cached parses check none)."""
    checked: list[str] = []

    def counting(check: Callable[[str], Any]) -> Callable[[str], Any]:
        def counted(text: str) -> Any:
            checked.append(text)
            return check(text)

        return counted

    monkeypatch.setattr(model, "is_dns_label", counting(model.is_dns_label))
    monkeypatch.setattr(model, "parse_ip", counting(model.parse_ip))
    yield checked


PER_NODE = 2 * parsing.MAX_ENTRIES
"""Entry checks one node may cost: its areas and its IPs, each capped at MAX_ENTRIES."""


def _world(bad: dict[str, Any]) -> tuple[Zone, nodes.NodeSource]:
    zone = new_zone(settings())
    source = nodes.NodeSource(zone, KEYS)
    neighbour = _body("neighbour", "web", NEIGHBOUR_IP)
    source.on_list([neighbour, bad], "10")
    return zone, source


def _answer(zone: Zone, area: str) -> tuple[int, set[str]]:
    _, reply = ask(query(f"{area}.{ZONE}", "A"), zone.snapshot, tcp=True)  # 1,024 IPs need TCP
    return reply.rcode(), {rd.to_text() for rrset in reply.answer for rd in rrset}


@pytest.mark.parametrize("case", list(AREA_CORPUS), ids=list(AREA_CORPUS))
def test_bad_areas_value(case: str, caplog: pytest.LogCaptureFixture, entry_checks: list[str]) -> None:
    value = AREA_CORPUS[case]
    caplog.set_level(logging.WARNING)
    # a valid entry plus the bad value (first: only the first MAX_ENTRIES entries are read)
    bad = _body("bad", f"web,{value}", "192.0.2.50")
    zone, source = _world(bad)
    work = len(entry_checks)
    facts, problems = nodes.facts_from_node(bad, KEYS)
    assert all(model.is_dns_label(area) for area in facts.areas)
    assert "web" in facts.areas
    assert _answer(zone, "web") == (dns.rcode.NOERROR, {NEIGHBOUR_IP, "192.0.2.50"})
    assert all(len(p.entry) <= 64 for p in problems)
    assert len(problems) <= parsing.MAX_ENTRIES + 1
    assert work <= 2 * PER_NODE, f"{work} entry checks for two nodes"
    assert all(len(r.getMessage()) < 400 for r in caplog.records)  # no 256 KiB log line
    # a second identical event is not reported again
    before = len(caplog.records)
    source.on_event("MODIFIED", bad)
    assert len(caplog.records) == before


@pytest.mark.parametrize("case", list(IP_CORPUS), ids=list(IP_CORPUS))
def test_bad_ips_value(case: str, caplog: pytest.LogCaptureFixture, entry_checks: list[str]) -> None:
    value = IP_CORPUS[case]
    caplog.set_level(logging.WARNING)
    bad = _body("bad", "web", f"192.0.2.50,{value}")
    zone, _ = _world(bad)
    work = len(entry_checks)
    facts, problems = nodes.facts_from_node(bad, KEYS)
    for ip in facts.ips:
        assert not (ip.is_unspecified or ip.is_multicast)
        assert getattr(ip, "scope_id", None) is None
        assert not (ip.version == 6 and ip.ipv4_mapped is not None)  # folded to IPv4
    assert len(set(facts.ips)) == len(facts.ips)
    rcode, served = _answer(zone, "web")
    assert rcode == dns.rcode.NOERROR
    assert {NEIGHBOUR_IP, "192.0.2.50"} <= served
    assert served == {NEIGHBOUR_IP} | {str(ip) for ip in facts.ips if ip.version == 4}
    assert all(len(p.entry) <= 64 for p in problems)
    assert work <= 2 * PER_NODE, f"{work} entry checks for two nodes"
    assert all(len(r.getMessage()) < 400 for r in caplog.records)


def test_v4_mapped_is_folded_and_duplicates_dropped() -> None:
    facts, problems = nodes.facts_from_node(_body("n", "web", "::ffff:192.0.2.8,192.0.2.8, 192.0.2.8"), KEYS)
    assert facts.ips == (model.parse_ip("192.0.2.8"),)
    assert problems == []


def test_one_node_with_every_bad_value_at_once_costs_nobody_anything(entry_checks: list[str]) -> None:
    zone = new_zone(settings())
    source = nodes.NodeSource(zone, KEYS)
    bodies = [_body("neighbour", "web", NEIGHBOUR_IP)]
    bodies += [_body(f"a{i}", value, "192.0.2.60") for i, value in enumerate(AREA_CORPUS.values())]
    bodies += [_body(f"i{i}", "web2", value) for i, value in enumerate(IP_CORPUS.values())]
    source.on_list(bodies, "10")
    for body in bodies[1:]:  # and each of them again as a watch event with a new version
        body["metadata"]["resourceVersion"] = "11"
        source.on_event("MODIFIED", body)
    assert _answer(zone, "web") == (dns.rcode.NOERROR, {NEIGHBOUR_IP})
    assert len(entry_checks) <= 2 * len(bodies) * PER_NODE  # a list and an event per node
    assert sum(source.stats.invalid_entries.values()) > 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metadata": None},
        {"metadata": {"name": "x", "annotations": None}},
        {"metadata": {"name": "x"}, "status": None},
        {"metadata": {"name": "x"}, "status": {"conditions": None}},
        {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready"}]}},
        {"metadata": {"name": "x"}, "spec": None},
        {
            "metadata": {"name": "x", "annotations": {AREAS: "web", IPS: "192.0.2.70"}},
            "spec": {"unschedulable": "yes"},
        },
    ],
)
def test_odd_node_bodies_do_not_crash(body: dict[str, Any]) -> None:
    zone = new_zone(settings())
    source = nodes.NodeSource(zone, KEYS)
    source.on_list([_body("neighbour", "web", NEIGHBOUR_IP), body], "10")
    source.on_event("MODIFIED", body)
    source.on_event("DELETED", body)
    assert NEIGHBOUR_IP in _answer(zone, "web")[1]
