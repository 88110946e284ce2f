"""static_records: extra IPs per area, always served, outside the fail-open count."""

from __future__ import annotations

import dns.message
import dns.rcode
import pytest
from pydantic import ValidationError

from node_dns.answer import responder
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, new_zone, query, settings


def ask(zone: Zone, qname: str, rdtype: str = "A") -> tuple[int, list[str]]:
    reply = responder.answer(query(qname, rdtype), zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reply is not None
    msg = dns.message.from_wire(reply[0])
    return msg.rcode(), sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


def zone_with(static: str, nodes: list, policy: Policy | None = None) -> Zone:
    zone = new_zone(settings(static_records=static), policy)
    zone.replace_all([(f, "100") for f in nodes], "100")
    return zone


def test_static_ips_are_served_with_no_node_in_the_area() -> None:
    zone = zone_with("office=192.0.2.50,2001:db8::50", [])

    assert ask(zone, "office.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.50"])
    assert ask(zone, "office.lb.example.net", "AAAA") == (dns.rcode.NOERROR, ["2001:db8::50"])
    assert ask(zone, "v6.office.lb.example.net", "AAAA") == (dns.rcode.NOERROR, ["2001:db8::50"])


def test_static_ips_are_added_to_healthy_node_ips() -> None:
    zone = zone_with(
        "home=192.0.2.50",
        [facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.2"], ready=False)],
    )

    assert ask(zone, "home.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.50"])


def test_static_ips_stay_when_the_last_node_leaves() -> None:
    zone = zone_with("home=192.0.2.50", [facts("n1", ["home"], ["192.0.2.1"])])

    zone.apply("n1", None, "200")

    assert ask(zone, "home.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.50"])


def test_fail_open_counts_node_ips_only() -> None:
    policy = Policy(fail_open_min_healthy=1)
    sick = [
        facts("n1", ["home"], ["192.0.2.1"], ready=False),
        facts("n2", ["home"], ["192.0.2.2"], ready=False),
    ]

    zone = zone_with("home=192.0.2.50", sick, policy)

    # No node is healthy: the area fails open (all node IPs), static IPs do not count as healthy.
    assert ask(zone, "home.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.2", "192.0.2.50"])
    assert zone.failed_open == {"home"}


def test_strict_area_with_no_healthy_node_serves_only_static() -> None:
    zone = zone_with("home=192.0.2.50", [facts("n1", ["home"], ["192.0.2.1"], ready=False)])

    assert ask(zone, "home.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.50"])


def test_the_setting_parses_entries_and_folds_mapped_addresses() -> None:
    parsed = settings(
        static_records="Home=192.0.2.1,::ffff:192.0.2.2; other=2001:db8::1; home=192.0.2.3"
    ).static_records

    assert {area: [str(ip) for ip in ips] for area, ips in parsed.items()} == {
        "home": ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        "other": ["2001:db8::1"],
    }
    assert settings(static_records={"x": ["192.0.2.1"]}).static_records == {"x": (parsed["home"][0],)}


@pytest.mark.parametrize(
    "bad",
    ["home", "home=not-an-ip", "v4=192.0.2.1", "bad_label=192.0.2.1", "home=224.0.0.1", "home=fe80::1%eth0"],
)
def test_bad_static_records_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        settings(static_records=bad)
