"""The template context: the documented names, in a stable order, as plain data."""

from __future__ import annotations

from node_dns import model
from node_dns.sinks.hooks import context
from node_dns.zone import snapshot

IP = model.parse_ip


def node(name: str, *ips: str, areas: tuple[str, ...] = ("home",), **kw: object) -> model.NodeFacts:
    return model.NodeFacts(name=name, areas=frozenset(areas), ips=tuple(IP(i) for i in ips), **kw)  # type: ignore[arg-type]


def healthy(facts: model.NodeFacts) -> bool:
    return facts.ready and facts.schedulable


def view(**kw: object) -> context.View:
    base: dict[str, object] = {
        "zone": "lb.example.net",
        "serial": 7,
        "timestamp": 1700000000.9,
        "areas": {},
        "nodes": [],
        "healthy": healthy,
    }
    base.update(kw)
    return context.View(**base)  # type: ignore[arg-type]


def test_zone_serial_and_timestamp() -> None:
    ctx = context.build(view())
    assert (ctx["zone"], ctx["serial"], ctx["timestamp"]) == ("lb.example.net", 7, 1700000000)


def test_areas_list_addresses_as_served_ipv4_first() -> None:
    served = context.Served(("192.0.2.1", "192.0.2.10"), ("2001:db8::1",), failed_open=True)
    ctx = context.build(view(areas={"work": context.Served(), "home": served}))
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
    assert context.served(snapshot.Node({snapshot.TYPE_A: a})) == context.Served(("192.0.2.1", "192.0.2.2"))
    assert context.served(None, failed_open=True) == context.Served(failed_open=True)


def test_nodes_are_sorted_by_name_with_health_and_labels() -> None:
    nodes = [
        node("b", "2001:db8::2", "192.0.2.20", "192.0.2.3", ready=True, labels=(("zone", "a"),)),
        node("a", "192.0.2.1", areas=("home", "edge"), ready=True, schedulable=False),
    ]
    ctx = context.build(view(nodes=nodes))
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
    assert "services" not in context.build(view())
    ctx = context.build(view(services={("web", "shop"): context.Served(("192.0.2.5",))}))
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
    ctx = context.build(view(static={"home": (IP("2001:db8::9"), IP("192.0.2.9"))}))
    assert ctx["static"] == {"home": ["192.0.2.9", "2001:db8::9"]}


def test_healthy_nodes_counts_by_the_policy() -> None:
    v = view(nodes=[node("a", ready=True), node("b", ready=False), node("c", ready=True, schedulable=False)])
    assert v.healthy_nodes == 1


def test_entries_of_unchanged_nodes_are_reused_and_changed_ones_rebuilt() -> None:
    entries = context.NodeEntries()
    a, b = node("a", "192.0.2.1", ready=True), node("b", "192.0.2.2", ready=True)
    first = entries.entries([a, b], healthy)
    b2 = node("b", "192.0.2.2", ready=False)
    second = entries.entries([a, b2], healthy)
    assert second[0] is first[0]
    assert second[1] is not first[1]
    assert second[1]["healthy"] is False
