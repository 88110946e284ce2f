"""Fail-open: an area whose nodes all look unhealthy serves every known address, not NODATA.

The settings (``fail_open``, ``fail_open_min_healthy``, ``fail_open_min_fraction``) reach the
zone through :func:`node_dns.zone.config.policy`, which is what the running server uses.
"""

from __future__ import annotations

import logging
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest

from node_dns.zone import config as zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.unit.zonekit import ask, facts, metrics_text, new_zone, query, settings

ZONE = "lb.example.net"


def _zone(**overrides: Any) -> Zone:
    s = settings(**overrides)
    return new_zone(s, zone_config.policy(s))


def _a(zone: Zone, area: str) -> tuple[int, set[str]]:
    _, reply = ask(query(f"{area}.{ZONE}", "A"), zone.snapshot)
    return reply.rcode(), {rd.to_text() for rrset in reply.answer for rd in rrset}


def _list(zone: Zone, *node_facts: Any, version: str = "10") -> None:
    zone.replace_all([(f, version) for f in node_facts], version)


# --- settings -> policy ---------------------------------------------------------------------------


def test_defaults_fail_open_when_no_node_is_healthy() -> None:
    policy = zone_config.policy(settings())
    assert (policy.fail_open_min_healthy, policy.fail_open_min_fraction) == (1, 0.0)
    assert policy.fails_open(healthy=0, members=3)
    assert not policy.fails_open(healthy=1, members=3)


def test_fail_open_off_is_strict_whatever_the_thresholds() -> None:
    policy = zone_config.policy(
        settings(fail_open=False, fail_open_min_healthy=5, fail_open_min_fraction=0.9)
    )
    assert not policy.fails_open(healthy=0, members=10)
    assert not policy.fails_open(healthy=1, members=10)


def test_settings_carry_cordoned_healthy_into_the_policy() -> None:
    assert zone_config.policy(settings(cordoned_healthy=True)).cordoned_healthy


@pytest.mark.parametrize(
    ("min_healthy", "fraction", "healthy", "members", "expected"),
    [
        (1, 0.0, 0, 1, True),
        (1, 0.0, 1, 1, False),
        (0, 0.0, 0, 5, False),  # both thresholds off: strict
        (2, 0.0, 1, 5, True),
        (2, 0.0, 2, 5, False),
        (0, 0.5, 2, 5, True),  # 2 < 2.5
        (0, 0.5, 3, 5, False),
        (0, 0.5, 1, 2, False),  # exactly half is not below half
        (0, 1.0, 4, 5, True),  # 1.0: any unhealthy node opens the area
        (0, 1.0, 5, 5, False),
        (3, 0.0, 0, 0, False),  # no members: nothing to serve, no fail-open
    ],
)
def test_thresholds(min_healthy: int, fraction: float, healthy: int, members: int, expected: bool) -> None:
    policy = Policy(fail_open_min_healthy=min_healthy, fail_open_min_fraction=fraction)
    assert policy.fails_open(healthy, members) is expected


@pytest.mark.parametrize("value", ["-1", "1.5", "x", "nan", "inf"])
def test_fraction_must_be_between_zero_and_one(value: str) -> None:
    with pytest.raises(ValueError, match="fail_open_min_fraction"):
        settings(fail_open_min_fraction=value)


# --- answers ----------------------------------------------------------------------------------------


def test_all_not_ready_serves_every_known_address_by_default() -> None:
    zone = _zone()
    _list(
        zone,
        facts("a", ["web"], ["192.0.2.1"], ready=False),
        facts("b", ["web"], ["192.0.2.2"], ready=False),
        facts("c", ["other"], ["192.0.2.3"]),
    )
    assert _a(zone, "web") == (dns.rcode.NOERROR, {"192.0.2.1", "192.0.2.2"})
    assert zone.failed_open == {"web"}
    assert _a(zone, "other") == (dns.rcode.NOERROR, {"192.0.2.3"})


def test_with_fail_open_off_an_all_unhealthy_area_is_nodata() -> None:
    zone = _zone(fail_open=False)
    _list(
        zone, facts("a", ["web"], ["192.0.2.1"], ready=False), facts("b", ["web"], ["192.0.2.2"], ready=False)
    )
    _, reply = ask(query(f"web.{ZONE}", "A"), zone.snapshot)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]
    assert zone.failed_open == frozenset()


def test_one_healthy_node_is_served_alone() -> None:
    zone = _zone()
    _list(zone, facts("a", ["web"], ["192.0.2.1"]), facts("b", ["web"], ["192.0.2.2"], ready=False))
    assert _a(zone, "web") == (dns.rcode.NOERROR, {"192.0.2.1"})
    assert zone.failed_open == frozenset()


def test_fraction_threshold_serves_all_below_the_share() -> None:
    zone = _zone(fail_open_min_fraction=0.5)
    members = [facts(f"n{i}", ["web"], [f"192.0.2.{i + 1}"], ready=i == 0) for i in range(4)]
    _list(zone, *members)
    assert _a(zone, "web")[1] == {f"192.0.2.{i + 1}" for i in range(4)}  # 1 of 4 < 50 %
    zone.apply("n1", facts("n1", ["web"], ["192.0.2.2"]), "11")
    assert _a(zone, "web")[1] == {"192.0.2.1", "192.0.2.2"}  # 2 of 4: back to healthy only


def test_cordoned_and_deleting_nodes_count_as_unhealthy_and_are_served_when_open() -> None:
    zone = _zone()
    _list(
        zone,
        facts("a", ["web"], ["192.0.2.1"], schedulable=False),
        facts("b", ["web"], ["192.0.2.2"], deleting=True),
    )
    assert _a(zone, "web")[1] == {"192.0.2.1", "192.0.2.2"}


def test_aaaa_follows_the_same_rule() -> None:
    zone = _zone()
    _list(zone, facts("a", ["web"], ["2001:db8::1", "192.0.2.1"], ready=False))
    _, reply = ask(query(f"web.{ZONE}", "AAAA"), zone.snapshot)
    assert {rd.to_text() for rrset in reply.answer for rd in rrset} == {"2001:db8::1"}


def test_recovery_closes_the_area_and_logs_each_transition_once(caplog: pytest.LogCaptureFixture) -> None:
    zone = _zone()
    caplog.set_level(logging.INFO, logger="node_dns.zone.policy")
    _list(
        zone, facts("a", ["web"], ["192.0.2.1"], ready=False), facts("b", ["web"], ["192.0.2.2"], ready=False)
    )
    # more unhealthy churn inside the open area: no new log line
    zone.apply("c", facts("c", ["web"], ["192.0.2.3"], ready=False), "11")
    zone.apply("c", facts("c", ["web"], ["192.0.2.4"], ready=False), "12")
    opened = [
        r
        for r in caplog.records
        if "fail-open threshold" in r.getMessage() and "serving all" in r.getMessage()
    ]
    assert len(opened) == 1
    assert opened[0].levelno == logging.WARNING
    zone.apply("a", facts("a", ["web"], ["192.0.2.1"]), "13")
    assert _a(zone, "web")[1] == {"192.0.2.1"}
    assert zone.failed_open == frozenset()
    assert sum("back above the fail-open threshold" in r.getMessage() for r in caplog.records) == 1


def test_area_emptied_while_open_is_forgotten() -> None:
    zone = _zone()
    _list(zone, facts("a", ["web"], ["192.0.2.1"], ready=False))
    assert zone.failed_open == {"web"}
    zone.apply("a", None, "11")
    assert zone.failed_open == frozenset()
    _, reply = ask(query(f"web.{ZONE}", "A"), zone.snapshot)
    assert reply.rcode() == dns.rcode.NXDOMAIN


def test_failed_open_metric_names_the_area() -> None:
    zone = _zone()
    _list(zone, facts("a", ["web"], ["192.0.2.1"], ready=False), facts("b", ["ok"], ["192.0.2.2"]))
    text = metrics_text(zone)

    assert 'node_dns_area_failed_open{area="web"} 1.0' in text
    assert 'node_dns_area_failed_open{area="ok"}' not in text
