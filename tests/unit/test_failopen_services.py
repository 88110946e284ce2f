"""Fail-open for Services: the area rule applied to the endpoint nodes of the tier being served
(ready endpoints, else serving-but-terminating ones), with the policy the running server uses."""

from __future__ import annotations

from typing import Any

import dns.rcode

from node_dns import model
from node_dns.zone import config as zone_config
from node_dns.zone.writer import Zone
from tests.unit.test_services_zone import WEB, ask, eps, exposed
from tests.unit.zonekit import facts, metrics_text, new_zone, settings


def _zone(*node_facts: model.NodeFacts, **overrides: Any) -> Zone:
    s = settings(services=True, **overrides)
    zone = new_zone(s, zone_config.policy(s))
    zone.replace_all([(f, "10") for f in node_facts], "10")
    zone.apply_service(WEB, exposed(), "200")
    return zone


DOWN_1 = facts("n1", [], ["192.0.2.1"], ready=False)
DOWN_2 = facts("n2", [], ["192.0.2.2"], ready=False)
UP_3 = facts("n3", [], ["192.0.2.3"])


def test_with_every_endpoint_node_unhealthy_all_of_them_are_served() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1", "n2")), "201")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.2"])
    assert zone.services_failed_open == {WEB}


def test_one_healthy_endpoint_node_ends_fail_open() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1", "n2")), "201")

    zone.apply("n2", facts("n2", [], ["192.0.2.2"]), "202")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.2"])
    assert zone.services_failed_open == frozenset()


def test_healthy_terminating_endpoints_are_preferred_to_failing_open_on_ready_ones() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",), terminating=("n3",)), "201")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.3"])
    assert zone.services_failed_open == frozenset()


def test_with_fail_open_off_unhealthy_endpoint_nodes_give_nodata() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3, fail_open=False)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1", "n2")), "201")

    assert ask(zone) == (dns.rcode.NOERROR, [])
    assert zone.services_failed_open == frozenset()


def test_a_fraction_threshold_counts_the_served_tier() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3, fail_open_min_fraction=0.5)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1", "n2", "n3")), "201")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])  # 1 of 3 < 50%


def test_a_service_without_endpoints_stays_nodata_and_is_not_failed_open() -> None:
    zone = _zone(DOWN_1, UP_3)

    assert ask(zone) == (dns.rcode.NOERROR, [])
    assert zone.services_failed_open == frozenset()


def test_metrics_count_services_and_name_the_failed_open_ones() -> None:
    zone = _zone(DOWN_1, DOWN_2, UP_3)
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")
    zone.apply_service(("shop", "api"), exposed("api"), "202")
    zone.apply_slice(("shop", "api-1"), eps("api-1", service="api", ready=("n3",)), "203")
    text = metrics_text(zone)

    assert "node_dns_services 2.0" in text
    assert 'node_dns_service_failed_open{namespace="shop",service="web"} 1.0' in text
    assert 'service="api"' not in text
