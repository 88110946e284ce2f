"""The template context: the documented names, in a stable order, as plain data, kept up to date
by updates that carry only what changed."""

from __future__ import annotations

from typing import Any

from node_dns import model
from node_dns.sinks.hooks import context, feed
from node_dns.sinks.hooks.view import NodeRecord, Served, Update
from node_dns.zone import snapshot

IP = model.parse_ip


def record(name: str, *ips: str, areas: tuple[str, ...] = ("home",), **kw: Any) -> NodeRecord:
    facts = model.NodeFacts(name=name, areas=frozenset(areas), ips=tuple(IP(i) for i in ips), **kw)
    return feed.record(facts, facts.ready and facts.schedulable)


def update(**kw: Any) -> Update:
    base: dict[str, Any] = {"zone": "lb.example.net", "serial": 7, "timestamp": 1700000000.9, "full": True}
    base.update(kw)
    return Update(**base)


def test_zone_serial_and_timestamp() -> None:
    ctx = context.build(update())
    assert (ctx["zone"], ctx["serial"], ctx["timestamp"]) == ("lb.example.net", 7, 1700000000)


def test_areas_list_addresses_as_served_ipv4_first() -> None:
    served = Served(("192.0.2.1", "192.0.2.10"), ("2001:db8::1",), failed_open=True)
    ctx = context.build(update(areas=(("work", Served()), ("home", served))))
    assert list(ctx["areas"]) == ["home", "work"]
    assert ctx["areas"]["home"] == {
        "ips": ["192.0.2.1", "192.0.2.10", "2001:db8::1"],
        "ipv4": ["192.0.2.1", "192.0.2.10"],
        "ipv6": ["2001:db8::1"],
        "failed_open": True,
    }
    assert ctx["areas"]["work"]["ips"] == []


def test_served_reads_a_and_aaaa_texts_of_a_snapshot_name() -> None:
    a = snapshot.RRset(snapshot.TYPE_A, 30, (b"", b""), ("192.0.2.1", "192.0.2.2"))
    assert feed.served(snapshot.Node({snapshot.TYPE_A: a})) == Served(("192.0.2.1", "192.0.2.2"))
    assert feed.served(None, failed_open=True) == Served(failed_open=True)


def test_nodes_are_sorted_by_name_with_health_and_labels() -> None:
    nodes = (
        record("b", "2001:db8::2", "192.0.2.20", "192.0.2.3", ready=True, labels=(("zone", "a"),)),
        record("a", "192.0.2.1", areas=("home", "edge"), ready=True, schedulable=False),
    )
    ctx = context.build(update(nodes=nodes))
    assert [n["name"] for n in ctx["nodes"]] == ["a", "b"]
    assert ctx["nodes"][0] == {
        "name": "a",
        "areas": ["edge", "home"],
        "ips": ["192.0.2.1"],
        "ipv4": ["192.0.2.1"],
        "ipv6": [],
        "ready": True,
        "cordoned": True,
        "healthy": False,
        "labels": {},
    }
    assert ctx["nodes"][1]["ips"] == ["192.0.2.3", "192.0.2.20", "2001:db8::2"]
    assert ctx["nodes"][1]["labels"] == {"zone": "a"}
    assert ctx["nodes"][1]["healthy"] is True


def test_services_are_defined_only_when_the_source_is_on() -> None:
    assert "services" not in context.build(update())
    ctx = context.build(update(services=((("web", "shop"), Served(("192.0.2.5",))),)))
    assert ctx["services"] == {
        "web/shop": {
            "namespace": "web",
            "name": "shop",
            "ips": ["192.0.2.5"],
            "ipv4": ["192.0.2.5"],
            "ipv6": [],
            "failed_open": False,
        }
    }


def test_static_records_by_area() -> None:
    ctx = context.build(update(static=(("home", ("192.0.2.9", "2001:db8::9")),)))
    assert ctx["static"] == {"home": ["192.0.2.9", "2001:db8::9"]}


def test_healthy_nodes_are_counted_through_changes() -> None:
    state = context.State()
    state.apply(
        update(nodes=(record("a", ready=True), record("b"), record("c", ready=True, schedulable=False)))
    )
    assert state.healthy_nodes == 1
    state.apply(update(full=False, nodes=(record("b", ready=True),), gone=("a",)))
    assert state.healthy_nodes == 1
    state.apply(update(full=False, nodes=(record("c", ready=True),)))
    assert state.healthy_nodes == 2


def test_a_change_rebuilds_the_entries_it_touched_and_reuses_the_rest() -> None:
    state = context.State()
    state.apply(update(nodes=(record("a", "192.0.2.1", ready=True), record("b", "192.0.2.2", ready=True))))
    first = state.context()
    state.apply(update(full=False, serial=8, nodes=(record("b", "192.0.2.2"),)))
    second = state.context()
    assert second["nodes"][0] is first["nodes"][0]
    assert second["nodes"][1] is not first["nodes"][1]
    assert second["nodes"][1]["healthy"] is False
    assert second["areas"] is first["areas"]  # no area in the update
    assert second["serial"] == 8


def test_gone_names_leave_the_context() -> None:
    state = context.State()
    state.apply(update(nodes=(record("a"), record("b")), areas=(("home", Served(("192.0.2.1",))),)))
    state.apply(update(full=False, gone=("a",), areas=(("home", None),)))
    ctx = state.context()
    assert [n["name"] for n in ctx["nodes"]] == ["b"]
    assert ctx["areas"] == {}


def test_a_full_update_replaces_everything() -> None:
    state = context.State()
    state.apply(update(nodes=(record("a"),), areas=(("home", Served()),), services=()))
    state.apply(update(nodes=(record("b"),)))
    ctx = state.context()
    assert [n["name"] for n in ctx["nodes"]] == ["b"]
    assert ctx["areas"] == {}
    assert "services" not in ctx
