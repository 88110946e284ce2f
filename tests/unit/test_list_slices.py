"""A complete node list is read into facts and applied to the zone in slices, with the event loop
running in between; it ends where the same list applied at once would."""

from __future__ import annotations

import asyncio

from node_dns.sources import nodes
from node_dns.zone import snapshot
from node_dns.zone.writer import Zone
from tests.unit import zonekit
from tests.unit.test_parsing import KEYS, Sink, node
from tests.unit.virtual_clock import settle, virtual_time
from tests.unit.zonekit import facts, synced_zone


@virtual_time
async def test_other_work_runs_between_slices_and_the_zone_gets_one_complete_list() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)
    items = [node(f"n{i}", "home", f"192.0.2.{i + 1}", version=str(i + 1)) for i in range(250)]
    ticks: list[int] = []

    async def other_work() -> None:
        while True:
            ticks.append(len(sink.lists))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    relisting = source.relisting("300")
    await relisting.read(items[:200], size=100)
    await relisting.read(items[200:], size=100)
    await relisting.finish()
    other.cancel()
    await settle()

    ((listed, version),) = sink.lists
    assert version == "300"
    assert [f.name for f, _ in listed] == [f"n{i}" for i in range(250)]
    assert ticks.count(0) >= 3  # ran between the slices, before the one replace


ZONE = "lb.example.net"


def listed(zone: Zone) -> dict[str, tuple[str, ...]]:
    """Served A records per area name (what a client sees)."""
    return {
        b".".join(owner).decode(): rrset.texts
        for owner, rrset in zone.snapshot.rrsets()
        if rrset.rtype == snapshot.TYPE_A
    }


def test_a_list_fed_in_parts_ends_where_the_same_list_at_once_ends() -> None:
    nodes_ = [facts(f"n{i}", [f"a{i % 3}"], [f"192.0.2.{i + 1}"]) for i in range(9)]
    at_once, in_parts = zonekit.new_zone(zonekit.settings()), zonekit.new_zone(zonekit.settings())
    at_once.replace_all([(f, "10") for f in nodes_], "10")

    replacement = in_parts.replacing("10")
    for start in range(0, 9, 4):
        replacement.feed([(f, "10") for f in nodes_[start : start + 4]])
    assert replacement.finish()

    assert listed(in_parts) == listed(at_once)
    assert in_parts.synced


def test_nothing_is_published_before_the_list_is_finished() -> None:
    zone = synced_zone([facts("old", ["home"], ["192.0.2.1"])], list_version="10")
    serial = zone.snapshot.serial
    replacement = zone.replacing("20")
    replacement.feed([(facts("new", ["home"], ["192.0.2.2"]), "15")])

    assert zone.snapshot.serial == serial
    replacement.finish()
    assert listed(zone)[f"home.{ZONE}"] == ("192.0.2.2",)


def test_events_between_parts_keep_the_resource_version_rules() -> None:
    zone = synced_zone(
        [
            facts(n, ["home"], [ip])
            for n, ip in (("a", "192.0.2.1"), ("b", "192.0.2.2"), ("gone", "192.0.2.3"))
        ],
        list_version="10",
    )
    replacement = zone.replacing("20")
    replacement.feed([(facts("a", ["home"], ["192.0.2.1"]), "11")])
    zone.apply("a", None, "21")  # deleted after the list was taken: stays deleted
    zone.apply("b", facts("b", ["home"], ["192.0.2.9"]), "22")  # newer than the list's entry
    zone.apply("late", facts("late", ["home"], ["192.0.2.7"]), "23")  # created after the list
    replacement.feed([(facts("b", ["home"], ["192.0.2.2"]), "12")])
    replacement.finish()  # "gone" is not in the list and older than it: removed

    assert sorted(zone.facts.nodes) == ["b", "late"]
    assert sorted(listed(zone)[f"home.{ZONE}"]) == ["192.0.2.7", "192.0.2.9"]


def test_start_up_is_over_once_the_watch_delivered_every_listed_node() -> None:
    source = nodes.NodeSource(Sink(), KEYS)
    calls: list[int] = []
    source.on_replayed = lambda: calls.append(1)
    source.on_event(None, node("a", "home", "192.0.2.1"))  # the watch's listing, before our own list
    assert calls == []
    source.on_list([node("a", "home", "192.0.2.1"), node("b", "home", "192.0.2.2")], "5")
    assert calls == []
    source.on_event(None, node("b", "home", "192.0.2.2"))
    source.on_event(None, node("b", "home", "192.0.2.2"))  # a later re-listing: not again

    assert calls == [1]


def test_a_watch_that_replayed_before_the_first_list_ends_start_up_with_the_list() -> None:
    source = nodes.NodeSource(Sink(), KEYS)
    calls: list[int] = []
    source.on_replayed = lambda: calls.append(1)
    source.on_event(None, node("a", "home", "192.0.2.1"))
    source.on_list([node("a", "home", "192.0.2.1")], "5")

    assert calls == [1]


def test_a_relist_of_unchanged_nodes_keeps_the_objects_the_zone_holds() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.2"])])
    held = dict(zone.facts.nodes)
    serial = zone.snapshot.serial

    replacement = zone.replacing("200")
    replacement.feed([(facts("n1", ["home"], ["192.0.2.1"]), "150")])
    replacement.feed([(facts("n2", ["away"], ["192.0.2.2"]), "150")])
    replacement.finish()

    assert zone.facts.nodes["n1"] is held["n1"]  # equal: the one read from the list is dropped
    assert zone.facts.nodes["n2"].areas == {"away"}
    assert zone.snapshot.serial > serial


async def test_a_page_is_emptied_as_it_is_read_so_its_objects_go_as_soon_as_they_are_read() -> None:
    source = nodes.NodeSource(Sink(), KEYS)
    page = [node(f"n{i}", "home", f"192.0.2.{i + 1}") for i in range(5)]

    await source.relisting("9").read(page, size=2)

    assert page == []


async def test_a_list_abandoned_part_way_keeps_what_it_read_and_deletes_nothing() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.2"])])
    source = nodes.NodeSource(zone, KEYS)

    relisting = source.relisting("200")
    await relisting.read([node("n1", "away", "192.0.2.1", version="150")])
    relisting.abandon()

    served = listed(zone)
    assert (served[f"home.{ZONE}"], served[f"away.{ZONE}"]) == (("192.0.2.2",), ("192.0.2.1",))
