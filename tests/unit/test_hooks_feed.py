"""What hooks see of a real zone: areas and Services as DNS serves them (fail-open and static
records included), every node with the zone's health rule, nothing before the first list."""

from __future__ import annotations

from node_dns import model
from node_dns.sinks.hooks import context, feed
from node_dns.zone.policy import Policy
from tests.unit.zonekit import facts, new_zone, settings


def test_nothing_is_viewed_before_the_first_complete_list() -> None:
    zone = new_zone(settings())
    assert feed.views(zone)(0.0) is None


def test_areas_are_the_served_addresses_with_static_records_and_fail_open() -> None:
    zone = new_zone(
        settings(static_records={"home": ["192.0.2.99"], "only-static": ["2001:db8::99"]}),
        Policy(fail_open_min_healthy=1),
    )
    zone.replace_all(
        [
            (facts("a", ["home"], ["192.0.2.2", "2001:db8::2"]), "1"),
            (facts("b", ["home"], ["192.0.2.1"], ready=False), "1"),
            (facts("c", ["edge"], ["192.0.2.3"], ready=False), "1"),
        ],
        "1",
    )
    view = feed.views(zone)(1700000000.0)
    assert view is not None
    ctx = context.build(view)
    assert ctx["areas"]["home"] == {
        "ips": ["192.0.2.2", "192.0.2.99", "2001:db8::2"],
        "ipv4": ["192.0.2.2", "192.0.2.99"],
        "ipv6": ["2001:db8::2"],
        "failed_open": False,
    }
    # No healthy node in edge: it fails open and serves the NotReady node, as DNS does.
    assert ctx["areas"]["edge"] == {
        "ips": ["192.0.2.3"],
        "ipv4": ["192.0.2.3"],
        "ipv6": [],
        "failed_open": True,
    }
    assert ctx["areas"]["only-static"]["ips"] == ["2001:db8::99"]
    assert ctx["static"] == {"home": ["192.0.2.99"], "only-static": ["2001:db8::99"]}
    assert ctx["serial"] == zone.snapshot.serial
    assert ctx["zone"] == "lb.example.net"
    assert [(n["name"], n["healthy"]) for n in ctx["nodes"]] == [("a", True), ("b", False), ("c", False)]
    assert "services" not in ctx


def test_cordoned_nodes_follow_the_zones_rule() -> None:
    zone = new_zone(settings(cordoned_healthy=True))
    zone.replace_all([(facts("a", ["home"], ["192.0.2.1"], schedulable=False), "1")], "1")
    view = feed.views(zone)(0.0)
    assert view is not None
    (node,) = context.build(view)["nodes"]
    assert (node["cordoned"], node["healthy"]) == (True, True)


def test_services_are_listed_when_the_source_is_on() -> None:
    zone = new_zone(settings(services=True))
    zone.replace_all([(facts("n1", [], ["192.0.2.1"]), "1"), (facts("n2", [], ["192.0.2.2"]), "1")], "1")
    zone.apply_service(("shop", "web"), model.ServiceFacts(namespace="shop", name="web", exposed=True), "2")
    zone.apply_slice(
        ("shop", "web-1"),
        model.SliceFacts(namespace="shop", name="web-1", service="web", ready=frozenset({"n2"})),
        "3",
    )
    view = feed.views(zone)(0.0)
    assert view is not None
    assert context.build(view)["services"] == {
        "shop/web": {
            "namespace": "shop",
            "name": "web",
            "ips": ["192.0.2.2"],
            "ipv4": ["192.0.2.2"],
            "ipv6": [],
            "failed_open": False,
        }
    }


def test_a_fact_change_that_publishes_nothing_still_shows() -> None:
    zone = new_zone(settings())
    zone.replace_all([(facts("a", [], ["192.0.2.1"]), "1")], "1")
    seen: list[object] = []
    zone.watch(seen.append)
    labelled = facts("a", [], ["192.0.2.1"]).model_copy(update={"labels": (("rack", "r2"),)})
    assert zone.apply("a", labelled, "2") is False  # nothing served moved
    assert seen  # yet the hooks' watcher hears of it
    view = feed.views(zone)(0.0)
    assert view is not None
    assert context.build(view)["nodes"][0]["labels"] == {"rack": "r2"}
