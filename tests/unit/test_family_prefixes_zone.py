"""v4.<name> and v6.<name>: one address family of an area or a Service, always on."""

from __future__ import annotations

import dns.message
import dns.rcode
import pytest

from node_dns import model
from node_dns.answer import responder
from node_dns.sources import nodes
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, query, synced_zone


def ask(zone: Zone, qname: str, rdtype: str) -> tuple[int, list[str]]:
    reply = responder.answer(query(qname, rdtype), zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reply is not None
    msg = dns.message.from_wire(reply[0])
    return msg.rcode(), sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


@pytest.fixture
def zone() -> Zone:
    return synced_zone(
        [
            facts("n1", ["dual"], ["192.0.2.1", "2001:db8::1"]),
            facts("n2", ["dual", "six"], ["2001:db8::2"]),
            facts("n3", ["four"], ["192.0.2.3"]),
        ]
    )


@pytest.mark.parametrize(
    ("qname", "rdtype", "expected"),
    [
        ("v4.dual", "A", (dns.rcode.NOERROR, ["192.0.2.1"])),
        ("v4.dual", "AAAA", (dns.rcode.NOERROR, [])),
        ("v6.dual", "AAAA", (dns.rcode.NOERROR, ["2001:db8::1", "2001:db8::2"])),
        ("v6.dual", "A", (dns.rcode.NOERROR, [])),
        ("V4.Four", "A", (dns.rcode.NOERROR, ["192.0.2.3"])),
        ("v6.four", "AAAA", (dns.rcode.NOERROR, [])),
        ("v4.six", "A", (dns.rcode.NOERROR, [])),
        ("v4.nothere", "A", (dns.rcode.NXDOMAIN, [])),
        ("v5.dual", "A", (dns.rcode.NXDOMAIN, [])),
        ("v4.v4.dual", "A", (dns.rcode.NXDOMAIN, [])),
        ("x.v4.dual", "A", (dns.rcode.NXDOMAIN, [])),
    ],
)
def test_prefixes_select_one_family(
    zone: Zone, qname: str, rdtype: str, expected: tuple[int, list[str]]
) -> None:
    assert ask(zone, f"{qname}.lb.example.net", rdtype) == expected


def test_prefixes_follow_their_area(zone: Zone) -> None:
    zone.apply("n1", facts("n1", ["dual"], ["192.0.2.9", "2001:db8::1"]), "200")
    assert ask(zone, "v4.dual.lb.example.net", "A") == (dns.rcode.NOERROR, ["192.0.2.9"])
    zone.apply("n3", facts("n3", [], ["192.0.2.3"]), "200")
    assert ask(zone, "v4.four.lb.example.net", "A")[0] == dns.rcode.NXDOMAIN

    zone.apply("n1", None, "201")
    zone.apply("n2", None, "202")
    assert ask(zone, "v6.dual.lb.example.net", "AAAA")[0] == dns.rcode.NXDOMAIN


def test_no_prefixes_for_the_apex_or_glue(zone: Zone) -> None:
    assert ask(zone, "v4.lb.example.net", "A")[0] == dns.rcode.NXDOMAIN
    assert ask(zone, "v4.ns1.lb.example.net", "A")[0] == dns.rcode.NXDOMAIN


def test_services_have_prefixes_too() -> None:
    zone = synced_zone([facts("n1", [], ["192.0.2.1", "2001:db8::1"])], services=True)
    zone.apply_service(("shop", "web"), model.ServiceFacts(namespace="shop", name="web", exposed=True), "200")
    zone.apply_slice(
        ("shop", "w"),
        model.SliceFacts(namespace="shop", name="w", service="web", ready=frozenset({"n1"})),
        "201",
    )

    assert ask(zone, "v4.web.shop.lb.example.net", "A") == (dns.rcode.NOERROR, ["192.0.2.1"])
    assert ask(zone, "v4.web.shop.lb.example.net", "AAAA") == (dns.rcode.NOERROR, [])
    assert ask(zone, "v6.web.shop.lb.example.net", "AAAA") == (dns.rcode.NOERROR, ["2001:db8::1"])


@pytest.mark.parametrize("area", ["v4", "v6", "V4"])
def test_an_area_named_like_a_prefix_is_rejected_by_the_node_source(area: str) -> None:
    keys = nodes.Keys(areas="a", ips="i")
    body = {
        "metadata": {"name": "n1", "annotations": {"a": f"{area},home", "i": "192.0.2.1"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }

    node, problems = nodes.facts_from_node(body, keys)

    assert node.areas == {"home"}
    assert [(p.entry, p.reason) for p in problems] == [
        (area.lower(), "reserved for the family prefixes (v4., v6.)")
    ]
