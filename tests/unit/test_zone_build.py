"""The zone's build is pure and incremental, and its diff is exact.

Random event sequences (nodes, Services, slices, lists) drive the writer; after every step the
incrementally built zone must equal a build from scratch of the same facts, and the diff of
two publications must turn the old zone into the new one.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from node_dns import model
from node_dns.zone import build, diff, serial
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.snapshot import TYPE_SOA, NameKey, RRset, Snapshot
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, synced_zone
from tests.unit.zonekit import settings as make_settings

AREAS = ("home", "web", "edge", "v4x")
NODES = tuple(f"n{i}" for i in range(6))
NAMESPACES = ("shop", "ops")
SERVICES = ("web", "api")


@st.composite
def node_event(draw: st.DrawFn) -> tuple[str, model.NodeFacts | None]:
    name = draw(st.sampled_from(NODES))
    if draw(st.integers(0, 5)) == 0:
        return name, None
    return name, model.NodeFacts(
        name=name,
        areas=frozenset(draw(st.lists(st.sampled_from(AREAS), max_size=2))),
        ips=tuple(
            ipaddress.ip_address(ip)
            for ip in draw(
                st.lists(
                    st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1", "198.51.100.7"]), max_size=2
                )
            )
        ),
        ready=draw(st.booleans()),
        schedulable=draw(st.integers(0, 4)) > 0,
        deleting=draw(st.integers(0, 9)) == 0,
    )


@st.composite
def step(draw: st.DrawFn) -> tuple[str, object]:
    kind = draw(st.sampled_from(["node", "node", "node", "service", "slice", "list"]))
    if kind == "node":
        return kind, draw(node_event())
    namespace = draw(st.sampled_from(NAMESPACES))
    service = draw(st.sampled_from(SERVICES))
    if kind == "service":
        gone = draw(st.integers(0, 4)) == 0
        return kind, (
            (namespace, service),
            None
            if gone
            else model.ServiceFacts(namespace=namespace, name=service, exposed=draw(st.booleans())),
        )
    if kind == "slice":
        name = f"{service}-{draw(st.integers(0, 1))}"
        return kind, (
            (namespace, name),
            model.SliceFacts(
                namespace=namespace,
                name=name,
                service=service,
                ready=frozenset(draw(st.lists(st.sampled_from(NODES), max_size=3))),
                terminating=frozenset(draw(st.lists(st.sampled_from(NODES), max_size=2))),
            ),
        )
    return kind, [e for e in draw(st.lists(node_event(), max_size=4)) if e[1] is not None]


def _apply(zone: Zone, kind: str, event: object, version: int) -> None:
    v = str(version)
    if kind == "node":
        name, node = event  # type: ignore[misc]
        zone.apply(name, node, v)
    elif kind == "service":
        key, value = event  # type: ignore[misc]
        zone.apply_service(key, value, v)
    elif kind == "slice":
        key, value = event  # type: ignore[misc]
        zone.apply_slice(key, value, v)
    else:
        listed = {n.name: n for _, n in event}  # type: ignore[attr-defined]
        zone.replace_all([(n, v) for n in listed.values()], v)


def _content(snap: Snapshot) -> dict[NameKey, object]:
    """Served records by name, the apex SOA aside (its serial is stamped at publication)."""
    out: dict[NameKey, object] = {}
    for key, node in snap.names.items():
        out[key] = {t: r for t, r in node.rrsets.items() if t != TYPE_SOA}
    return out


def _rrsets(snap: Snapshot) -> set[tuple[NameKey, RRset]]:
    return set(snap.rrsets())


POLICIES = st.sampled_from(
    [Policy(), Policy(fail_open_min_healthy=1), Policy(cordoned_healthy=True, fail_open_min_fraction=0.5)]
)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step(), min_size=1, max_size=25), policy=POLICIES)
def test_incremental_builds_equal_a_build_from_scratch(
    steps: list[tuple[str, object]], policy: Policy
) -> None:
    config = zone_config(make_settings(services=True, static_records="edge=203.0.113.9"))
    zone = Zone(config, policy)
    for version, (kind, event) in enumerate(steps, start=10):
        _apply(zone, kind, event, version)
        fresh = build.build(zone.facts, policy, config)
        latest = zone.latest
        assert _content(latest) == _content(fresh)
        assert latest.empty_non_terminals == fresh.empty_non_terminals
        assert latest.health == fresh.health
        assert latest.synced == fresh.synced


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step(), min_size=1, max_size=25))
def test_the_diff_of_two_publications_turns_the_old_zone_into_the_new(
    steps: list[tuple[str, object]],
) -> None:
    zone = Zone(zone_config(make_settings(services=True)), Policy(fail_open_min_healthy=1))
    zone.replace_all([], "5")
    pairs: list[tuple[Snapshot, Snapshot]] = []
    zone.subscribe(lambda old, new: pairs.append((old, new)))
    for version, (kind, event) in enumerate(steps, start=10):
        _apply(zone, kind, event, version)
    for old, new in pairs:
        changes = diff.diff(old, new)
        # the hint of consecutive publications gives what a full comparison gives
        assert changes == diff.diff(old, dataclasses.replace(new, delta=None))
        assert (_rrsets(old) - set(changes.removed)) | set(changes.added) == _rrsets(new)
        assert set(changes.removed) <= _rrsets(old)
        assert (old.names[old.origin].rrsets[TYPE_SOA] in [r for _, r in changes.removed]) == (
            old.serial != new.serial
        )


def test_a_diff_across_several_publications_compares_every_name() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    first = zone.snapshot
    zone.apply("n2", facts("n2", ["web"], ["192.0.2.2"]), "200")
    zone.apply("n1", None, "201")

    changes = diff.diff(first, zone.snapshot)

    # v6. names of IPv4-only areas exist with no records: their marker comes and goes with them.
    owners = {b".".join(key).decode() for key, _ in changes.added}
    assert owners == {"lb.example.net", *(f"{p}web.lb.example.net" for p in ("", "v4.", "v6."))}
    gone = {b".".join(key).decode() for key, _ in changes.removed}
    assert gone == {"lb.example.net", *(f"{p}home.lb.example.net" for p in ("", "v4.", "v6."))}


def test_no_change_gives_an_empty_diff() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])

    assert not diff.diff(zone.snapshot, zone.snapshot)


def test_rebuild_leaves_the_previous_snapshot_as_it_was() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    before = zone.snapshot
    names = dict(before.names)

    zone.apply("n1", facts("n1", ["home", "web"], ["192.0.2.9"]), "200")

    assert dict(before.names) == names
    assert zone.snapshot.names is not before.names


def test_rrsets_start_with_the_apex_soa_and_follow_canonical_order() -> None:
    zone = synced_zone([facts("n1", ["b", "a"], ["192.0.2.1", "2001:db8::1"])])

    rrsets = list(zone.snapshot.rrsets())

    assert rrsets[0] == (zone.snapshot.origin, zone.snapshot.soa)
    owners = [b".".join(key).decode() for key, _ in rrsets]
    assert owners[2:] == [
        "a.lb.example.net",
        "a.lb.example.net",
        "v4.a.lb.example.net",
        "v6.a.lb.example.net",
        "b.lb.example.net",
        "b.lb.example.net",
        "v4.b.lb.example.net",
        "v6.b.lb.example.net",
        "ns1.lb.example.net",
        "ns1.lb.example.net",
        "ns.sub.lb.example.net",
    ]
    assert len(rrsets) == len(set(rrsets))


def test_a_change_touching_one_area_keeps_every_other_node_object() -> None:
    zone = synced_zone([facts(f"n{i}", [f"a{i}"], [f"192.0.2.{i + 1}"]) for i in range(20)])
    before = zone.snapshot

    zone.apply("n3", facts("n3", ["a3"], ["192.0.2.99"]), "500")

    after = zone.snapshot
    moved = {key for key in after.names if after.names[key] is not before.names.get(key)}
    assert {b".".join(k).decode() for k in moved} == {
        "lb.example.net",
        "a3.lb.example.net",
        "v4.a3.lb.example.net",
    }


def test_next_serial_takes_a_newer_version_or_adds_one() -> None:
    assert serial.next_serial(100, 205, now=0) == 205
    assert serial.next_serial(1000, 5, now=0) == 1001
    assert serial.next_serial(7, None, now=1_700_000_000.5) == 1_700_000_000
    assert serial.next_serial(serial.SERIAL_MODULO - 1, serial.SERIAL_MODULO + 3, now=0) == 3


def test_watchers_hear_of_fact_changes_that_publish_nothing() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    heard: list[set[str]] = []
    published: list[Snapshot] = []
    zone.watch(lambda changes: heard.append(changes.nodes))
    zone.subscribe(lambda old, new: published.append(new))

    zone.apply("n2", facts("n2", [], ["192.0.2.2"], schedulable=False), "200")
    zone.apply("n2", facts("n2", [], ["192.0.2.2"], schedulable=False), "201")  # same facts

    assert heard == [{"n2"}]
    assert published == []
