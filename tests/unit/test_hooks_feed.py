"""What hooks see of a real zone: areas and Services as DNS serves them (fail-open and static
records included), every node with the zone's health rule, nothing before the first list; and
the changes sent after the first copy add up to the same state."""

from __future__ import annotations

import random
from typing import Any

from node_dns import model
from node_dns.sinks.hooks import context, feed
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, new_zone, settings


def full_context(changes: feed.ZoneFeed, timestamp: float = 0.0) -> dict[str, Any]:
    state = context.State()
    for update in changes.updates(timestamp, full=True):
        state.apply(update)
    return state.context()


def test_nothing_is_rendered_before_the_first_complete_list() -> None:
    zone = new_zone(settings())
    changes = feed.ZoneFeed(zone)
    assert not changes.ready()
    zone.replace_all([(facts("a", ["home"], ["192.0.2.1"]), "1")], "1")
    assert changes.ready()


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
    ctx = full_context(feed.ZoneFeed(zone), 1700000000.0)
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
    (node,) = full_context(feed.ZoneFeed(zone))["nodes"]
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
    assert full_context(feed.ZoneFeed(zone))["services"] == {
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
    changes = feed.ZoneFeed(zone)
    state = context.State()
    for update in changes.updates(0.0, full=True):
        state.apply(update)
    heard: list[None] = []
    changes.listen(lambda: heard.append(None))
    labelled = facts("a", [], ["192.0.2.1"]).model_copy(update={"labels": (("rack", "r2"),)})
    assert zone.apply("a", labelled, "2") is False  # nothing served moved
    assert heard  # yet the hooks hear of it
    (update,) = changes.updates(0.0, full=False)
    assert [r.name for r in update.nodes] == ["a"]
    state.apply(update)
    assert state.context()["nodes"][0]["labels"] == {"rack": "r2"}


def _random_changes(zone: Zone, rng: random.Random, version: int) -> None:
    """A few node events of every kind: flips, cordons, moves between areas, new and gone nodes."""
    for _ in range(rng.randint(1, 4)):
        name = f"n{rng.randrange(30)}"
        if rng.random() < 0.15:
            zone.apply(name, None, str(version))
            continue
        areas = rng.sample(["home", "edge", "work", "solo"], rng.randint(0, 2))
        ips = [f"192.0.2.{rng.randrange(1, 250)}"] + (
            [f"2001:db8::{rng.randrange(1, 999):x}"] if rng.random() < 0.5 else []
        )
        labels = (("rack", f"r{rng.randrange(3)}"),)
        node = facts(name, areas, ips, ready=rng.random() < 0.7, schedulable=rng.random() < 0.9)
        zone.apply(name, node.model_copy(update={"labels": labels}), str(version))


def test_changes_sent_after_the_first_copy_add_up_to_a_full_copy() -> None:
    """The render process's copy, kept by changes only, equals a fresh full copy after each step."""
    rng = random.Random(5)
    zone = new_zone(
        settings(static_records={"home": ["192.0.2.254"], "static-only": ["2001:db8::ff"]}, services=True),
        Policy(fail_open_min_healthy=2),
    )
    zone.replace_all([(facts(f"n{i}", ["home"], [f"192.0.2.{i + 1}"]), "1") for i in range(10)], "1")
    changes = feed.ZoneFeed(zone)
    fresh = feed.ZoneFeed(zone)
    kept = context.State()
    for update in changes.updates(1.0, full=True):
        kept.apply(update)
    for step in range(200):
        _random_changes(zone, rng, 10 + step)
        if step % 3:  # several changes may wait for one update
            continue
        for update in changes.updates(float(step), full=False):
            kept.apply(update)
        assert kept.context() == full_context(fresh, float(step)), f"step {step}"
