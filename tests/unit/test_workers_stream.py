"""A worker's copy of the zone, fed by the snapshot stream, is the zone the writer published."""

from __future__ import annotations

import marshal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_dns import model
from node_dns.answer import responder as responder_mod
from node_dns.transports.workers import wire
from node_dns.zone import diff, stream
from node_dns.zone.snapshot import Snapshot
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, query, synced_zone

ZONE = "lb.example.net"


def same_content(copy: Snapshot, original: Snapshot) -> None:
    assert copy.origin == original.origin
    assert copy.serial == original.serial
    assert copy.synced == original.synced
    assert copy.generation == original.generation
    assert copy.soa == original.soa
    assert copy.negative_ttl == original.negative_ttl
    assert dict(copy.names) == dict(original.names)
    assert dict(copy.below) == dict(original.below)
    assert list(copy.rrsets()) == list(original.rrsets())


class Copy:
    """What a worker holds: the copy, fed every publication through marshal as the pipe does."""

    def __init__(self, zone: Zone) -> None:
        self.snapshot = stream.apply(None, self.carry(stream.full(zone.snapshot)))
        self.messages: list[stream.Message] = []
        zone.subscribe(self.publish)

    @staticmethod
    def carry(message: stream.Message) -> stream.Message:
        (got,), rest = wire.split(wire.frame((wire.ZONE, message)))
        assert rest == b""
        return got[1]  # type: ignore[no-any-return]

    def publish(self, old: Snapshot, new: Snapshot) -> None:
        message = self.carry(stream.encode(old, new))
        self.messages.append(message)
        self.snapshot = stream.apply(self.snapshot, message)


@pytest.fixture
def zone() -> Zone:
    return synced_zone(
        [facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["work"], ["192.0.2.2", "2001:db8::2"])]
    )


def test_the_whole_zone_arrives_equal(zone: Zone) -> None:
    copy = Copy(zone)
    same_content(copy.snapshot, zone.snapshot)


def test_a_node_change_arrives_as_a_change_of_the_names_it_touched(zone: Zone) -> None:
    copy = Copy(zone)
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    (message,) = copy.messages
    assert message[0] == stream.CHANGE
    sent = {tuple(key) for key, _ in message[7]}
    assert {(b"home", b"lb", b"example", b"net"), (b"lb", b"example", b"net")} <= sent  # area, apex
    assert all(b"work" not in key for key in sent)  # nothing of the area the change left alone
    same_content(copy.snapshot, zone.snapshot)


def test_a_copy_diffs_like_the_original_so_cached_answers_survive(zone: Zone) -> None:
    copy = Copy(zone)
    before_copy, before = copy.snapshot, zone.snapshot
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")

    assert copy.snapshot.delta is not None and copy.snapshot.lineage is before_copy.lineage
    assert diff.diff(before_copy, copy.snapshot) == diff.diff(before, zone.snapshot)


def test_a_responder_on_the_copy_keeps_answers_of_untouched_names(zone: Zone) -> None:
    copy = Copy(zone)
    responder = responder_mod.Responder(copy.snapshot)
    home, work = query(f"home.{ZONE}"), query(f"work.{ZONE}")
    responder.respond(home)
    responder.respond(work)
    old = copy.snapshot

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")
    responder.publish(old, copy.snapshot)

    keys = {key for key in (responder_mod.cache_key(p) for p in (home, work)) if key is not None}
    kept = {key[0] for key in keys} & set(responder._udp)
    assert kept == {responder_mod.cache_key(work)[0]}  # type: ignore[index]
    for packet in (home, work):
        reference = responder_mod.answer(packet, zone.snapshot, tcp=False, edns_udp_size=1232)
        assert reference is not None and responder.respond(packet) == reference[0]


def test_snapshots_of_another_lineage_go_whole() -> None:
    one, other = synced_zone([facts("n1", ["home"], ["192.0.2.1"])]), synced_zone([])
    assert stream.change(other.snapshot, one.snapshot) is None
    assert stream.encode(other.snapshot, one.snapshot)[0] == stream.FULL


def test_a_change_for_another_generation_is_refused(zone: Zone) -> None:
    copy = Copy(zone)
    first = zone.snapshot
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")
    second = zone.snapshot
    zone.apply("n2", facts("n2", ["work"], ["192.0.2.7"]), "201")
    skipped = stream.change(second, zone.snapshot)
    assert skipped is not None

    stale = stream.apply(None, stream.full(first))
    with pytest.raises(stream.StreamError, match="generation"):
        stream.apply(stale, skipped)
    assert copy.snapshot.generation == zone.snapshot.generation


def test_a_change_before_any_whole_zone_is_refused(zone: Zone) -> None:
    old = zone.snapshot
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")
    message = stream.change(old, zone.snapshot)
    assert message is not None
    with pytest.raises(stream.StreamError, match="before any full"):
        stream.apply(None, message)


def test_a_change_that_does_not_lead_to_the_writers_sizes_is_refused(zone: Zone) -> None:
    copy = stream.apply(None, stream.full(zone.snapshot))
    old = zone.snapshot
    zone.apply("n3", facts("n3", ["new"], ["192.0.2.3"]), "200")
    message = stream.change(old, zone.snapshot)
    assert message is not None
    lost = tuple(item for item in message[7] if item[0] != (b"new", b"lb", b"example", b"net"))
    dropped_a_name = (*message[:7], lost, *message[8:])  # the new area lost on the way
    with pytest.raises(stream.StreamError, match="names"):
        stream.apply(copy, dropped_a_name)


@pytest.mark.parametrize("message", [("nonsense",), (stream.FULL, "too", "short"), (stream.CHANGE,), ()])
def test_messages_this_module_does_not_write_are_refused(message: stream.Message) -> None:
    with pytest.raises(stream.StreamError):
        stream.apply(None, message)


def test_the_messages_are_plain_values_marshal_carries(zone: Zone) -> None:
    message = stream.full(zone.snapshot)
    assert marshal.loads(marshal.dumps(message)) == message


AREAS = ("a", "b", "c")
IPS = ("192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::1")
step = st.tuples(
    st.sampled_from(("n1", "n2", "n3", "n4")),
    st.one_of(
        st.none(),  # the node goes
        st.tuples(
            st.frozensets(st.sampled_from(AREAS), max_size=3),
            st.frozensets(st.sampled_from(IPS), max_size=4),
            st.booleans(),
        ),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_any_sequence_of_node_changes_keeps_the_copy_equal(steps: list[tuple[str, object]]) -> None:
    zone = synced_zone([facts("n1", ["a"], ["192.0.2.1"])])
    copy = Copy(zone)
    for version, (name, change) in enumerate(steps, start=200):
        if change is None:
            zone.apply(name, None, str(version))
        else:
            areas, ips, ready = change  # type: ignore[misc]
            zone.apply(name, facts(name, areas, ips, ready=ready), str(version))
        same_content(copy.snapshot, zone.snapshot)
    assert all(message[0] == stream.CHANGE for message in copy.messages)


def test_names_below_names_keep_their_parent_counts() -> None:
    zone = synced_zone([facts("n1", [], ["192.0.2.1"])], services=True)
    copy = Copy(zone)
    zone.apply_service(("shop", "web"), model.ServiceFacts(namespace="shop", name="web", exposed=True), "300")
    zone.apply_slice(
        ("shop", "web-1"),
        model.SliceFacts(namespace="shop", name="web-1", service="web", ready=frozenset({"n1"})),
        "301",
    )
    same_content(copy.snapshot, zone.snapshot)
    assert (b"shop", b"lb", b"example", b"net") in copy.snapshot.below
    zone.apply_service(("shop", "web"), None, "302")
    same_content(copy.snapshot, zone.snapshot)
    assert (b"shop", b"lb", b"example", b"net") not in copy.snapshot.below
