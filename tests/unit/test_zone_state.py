"""Zone: membership, health, reconciliation against lists, and when the SOA serial moves."""

from __future__ import annotations

import logging

import dns.message
import dns.rcode
import pytest

from node_dns.answer import responder
from node_dns.zone import snapshot
from node_dns.zone.policy import Policy
from node_dns.zone.serial import SERIAL_MODULO, serial_newer
from node_dns.zone.writer import Zone
from tests.unit.zonekit import ZONE, facts, new_zone, query, settings, synced_zone

HOME = (b"home", b"lb", b"example", b"net")


def addresses(zone: Zone, area: str, rtype: int = snapshot.TYPE_A) -> list[str]:
    node = zone.snapshot.names.get((area.encode(), b"lb", b"example", b"net"))
    if node is None or rtype not in node.rrsets:
        return []
    return list(node.rrsets[rtype].texts)


def exists(zone: Zone, area: str) -> bool:
    return (area.encode(), b"lb", b"example", b"net") in zone.snapshot.names


def rcode(zone: Zone, qname: str, rdtype: str = "A") -> int:
    reply = responder.answer(query(qname, rdtype), zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reply is not None
    return dns.message.from_wire(reply[0]).rcode()


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[snapshot.Snapshot] = []

    def __call__(self, old: snapshot.Snapshot, new: snapshot.Snapshot) -> None:
        assert old.generation < new.generation
        self.snapshots.append(new)


# --- sync gate -----------------------------------------------------------------------------------


def test_new_zone_is_not_synced_and_has_serial_zero() -> None:
    zone = new_zone(settings())

    assert not zone.synced
    assert not zone.snapshot.synced
    assert zone.snapshot.serial == 0


def test_events_before_the_first_list_publish_nothing() -> None:
    zone = new_zone(settings())
    seen = Recorder()
    zone.subscribe(seen)

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"]), "10")

    assert seen.snapshots == []
    assert not zone.snapshot.synced


def test_first_list_makes_zone_synced_with_serial_of_the_list() -> None:
    zone = new_zone(settings())

    changed = zone.replace_all([(facts("n1", ["home"], ["192.0.2.1"]), "7")], "4711")

    assert changed
    assert zone.synced and zone.snapshot.synced
    assert zone.snapshot.serial == 4711
    assert addresses(zone, "home") == ["192.0.2.1"]


def test_first_list_of_an_empty_cluster_makes_zone_authoritative() -> None:
    zone = new_zone(settings())
    seen = Recorder()
    zone.subscribe(seen)

    assert zone.replace_all([], "99")

    assert seen.snapshots[-1].synced
    assert zone.snapshot.serial == 99
    assert rcode(zone, f"home.{ZONE}") == dns.rcode.NXDOMAIN


def test_events_seen_before_the_first_list_are_served_after_it() -> None:
    zone = new_zone(settings())
    zone.apply("late", facts("late", ["home"], ["192.0.2.9"]), "120")

    zone.replace_all([], "100")  # the list was taken before "late" was created

    assert addresses(zone, "home") == ["192.0.2.9"]


# --- membership and health -------------------------------------------------------------------------


def test_area_answers_addresses_of_healthy_members_sorted_numerically() -> None:
    zone = synced_zone(
        [
            facts("n1", ["home"], ["192.0.2.10", "2001:db8::2"]),
            facts("n2", ["home"], ["192.0.2.9", "2001:db8::10"]),
        ]
    )

    assert addresses(zone, "home") == ["192.0.2.9", "192.0.2.10"]
    assert addresses(zone, "home", snapshot.TYPE_AAAA) == ["2001:db8::2", "2001:db8::10"]


def test_same_ip_on_two_nodes_is_served_once() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.1"])])

    assert addresses(zone, "home") == ["192.0.2.1"]


def test_ipv4_mapped_ipv6_is_served_as_a() -> None:
    zone = synced_zone([facts("n1", ["home"], ["::ffff:192.0.2.5"])])

    assert addresses(zone, "home") == ["192.0.2.5"]
    assert addresses(zone, "home", snapshot.TYPE_AAAA) == []


@pytest.mark.parametrize(
    "unhealthy",
    [
        {"ready": False},
        {"schedulable": False},
        {"deleting": True},
    ],
    ids=["not-ready", "cordoned", "deleting"],
)
def test_unhealthy_node_is_not_served(unhealthy: dict[str, bool]) -> None:
    zone = synced_zone(
        [facts("ok", ["home"], ["192.0.2.1"]), facts("bad", ["home"], ["192.0.2.2"], **unhealthy)]
    )

    assert addresses(zone, "home") == ["192.0.2.1"]


def test_cordoned_node_is_served_with_cordoned_healthy() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"], schedulable=False)], cordoned_healthy=True)

    assert addresses(zone, "home") == ["192.0.2.1"]


def test_area_with_only_unhealthy_nodes_exists_without_addresses() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"], ready=False)])

    assert exists(zone, "home")
    assert addresses(zone, "home") == []
    assert rcode(zone, f"home.{ZONE}") == dns.rcode.NOERROR  # NODATA, never NXDOMAIN


def test_node_in_two_areas_is_served_in_both() -> None:
    zone = synced_zone([facts("n1", ["home", "cloud"], ["192.0.2.1"])])

    assert addresses(zone, "home") == addresses(zone, "cloud") == ["192.0.2.1"]


def test_node_leaving_an_area_removes_its_addresses_and_the_empty_area() -> None:
    zone = synced_zone([facts("n1", ["home", "cloud"], ["192.0.2.1"])])

    zone.apply("n1", facts("n1", ["cloud"], ["192.0.2.1"]), "200")

    assert not exists(zone, "home")
    assert addresses(zone, "cloud") == ["192.0.2.1"]
    assert rcode(zone, f"home.{ZONE}") == dns.rcode.NXDOMAIN


def test_deleted_node_is_removed() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.2"])])

    zone.apply("n1", None, "200")

    assert addresses(zone, "home") == ["192.0.2.2"]


def test_deleting_the_last_member_removes_the_area() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])

    zone.apply("n1", None, "200")

    assert not exists(zone, "home")


def test_area_shadowing_a_glue_name_serves_the_glue(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        zone = synced_zone([facts("n1", ["ns1"], ["192.0.2.1"])])

    assert addresses(zone, "ns1") == ["192.0.2.53"]
    assert "shadows" in caplog.text


def test_fail_open_serves_every_member_below_the_threshold() -> None:
    zone = new_zone(settings(), Policy(fail_open_min_healthy=1))
    zone.replace_all([(facts("n1", ["home"], ["192.0.2.1"], ready=False), "1")], "1")

    assert addresses(zone, "home") == ["192.0.2.1"]
    assert zone.failed_open == {"home"}


def test_node_states_count_each_node_once() -> None:
    zone = synced_zone(
        [
            facts("a", ["home"], ["192.0.2.1"]),
            facts("b", ["home"], ["192.0.2.2"], ready=False),
            facts("c", ["home"], ["192.0.2.3"], schedulable=False),
            facts("d", ["home"], ["192.0.2.4"], deleting=True, ready=False),
        ]
    )

    assert zone.node_states() == {"healthy": 1, "not_ready": 1, "cordoned": 1, "deleting": 1}


def test_area_counts_follow_membership_changes_that_do_not_move_content() -> None:
    zone = synced_zone([facts("a", ["home"], ["192.0.2.1"])])

    zone.apply("b", facts("b", ["home"], ["192.0.2.2"], ready=False), "200")

    assert zone.area_counts == {"home": (1, 2)}


# --- ordering and reconciliation --------------------------------------------------------------------


def test_event_older_than_what_is_held_is_ignored() -> None:
    zone = synced_zone([])
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.2"]), "300")

    assert not zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"]), "250")

    assert addresses(zone, "home") == ["192.0.2.2"]


def test_relist_removes_nodes_deleted_while_the_watch_was_down() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"]), facts("n2", ["home"], ["192.0.2.2"])])

    zone.replace_all([(facts("n2", ["home"], ["192.0.2.2"]), "100")], "500")

    assert addresses(zone, "home") == ["192.0.2.2"]


def test_relist_keeps_nodes_created_after_the_list_was_taken() -> None:
    zone = synced_zone([], list_version="100")
    zone.apply("new", facts("new", ["home"], ["192.0.2.3"]), "600")

    zone.replace_all([], "500")

    assert addresses(zone, "home") == ["192.0.2.3"]


def test_relist_older_than_a_delete_does_not_bring_the_node_back() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    zone.apply("n1", None, "300")

    zone.replace_all([(facts("n1", ["home"], ["192.0.2.1"]), "100")], "250")

    assert not exists(zone, "home")


def test_relist_does_not_undo_a_newer_event() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"], ready=False), "300")

    zone.replace_all([(facts("n1", ["home"], ["192.0.2.1"]), "100")], "250")

    assert addresses(zone, "home") == []


def test_recreated_node_after_delete_is_served() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    zone.apply("n1", None, "300")

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.8"]), "400")

    assert addresses(zone, "home") == ["192.0.2.8"]


# --- SOA serial --------------------------------------------------------------------------------------


def test_serial_unchanged_by_an_event_with_identical_facts() -> None:
    # A label change or a status heartbeat: new resourceVersion, same facts.
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    before = zone.snapshot
    seen = Recorder()
    zone.subscribe(seen)

    changed = zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"]), "200")

    assert not changed
    assert zone.snapshot is before
    assert zone.snapshot.serial == 100
    assert seen.snapshots == []


def test_serial_unchanged_by_reordered_ips() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1", "192.0.2.2", "2001:db8::1"])], list_version="100")

    zone.apply("n1", facts("n1", ["home"], ["2001:db8::1", "192.0.2.2", "192.0.2.1"]), "200")

    assert zone.snapshot.serial == 100


def test_serial_unchanged_when_an_unhealthy_node_changes_its_ips() -> None:
    zone = synced_zone(
        [facts("ok", ["home"], ["192.0.2.1"]), facts("down", ["home"], ["192.0.2.2"], ready=False)],
        list_version="100",
    )

    zone.apply("down", facts("down", ["home"], ["192.0.2.3"], ready=False), "200")

    assert zone.snapshot.serial == 100


def test_serial_unchanged_by_a_node_without_areas() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")

    zone.apply("plain", facts("plain", [], ["192.0.2.7"]), "200")
    zone.apply("plain", facts("plain", [], ["192.0.2.7"], ready=False), "201")

    assert zone.snapshot.serial == 100


def test_serial_unchanged_by_a_relist_with_the_same_content() -> None:
    nodes = [facts("n1", ["home"], ["192.0.2.1"])]
    zone = synced_zone(nodes, list_version="100")

    assert not zone.replace_all([(nodes[0], "100")], "900")

    assert zone.snapshot.serial == 100


def test_ready_flip_moves_serial_to_the_events_resource_version() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"], ready=False), "205")
    down = zone.snapshot.serial
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"]), "310")

    assert down == 205
    assert zone.snapshot.serial == 310


def test_serial_in_the_soa_record_matches_the_snapshot() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.2"]), "321")

    reply = responder.answer(query(ZONE, "SOA"), zone.snapshot, tcp=False, edns_udp_size=1232)

    assert reply is not None
    assert dns.message.from_wire(reply[0]).answer[0][0].serial == 321


def test_each_content_change_publishes_exactly_once() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="100")
    seen = Recorder()
    zone.subscribe(seen)

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"], ready=False), "200")
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"], ready=False), "201")
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.1"]), "202")

    assert [s.serial for s in seen.snapshots] == [200, 202]


def test_serial_never_moves_backwards_when_versions_do() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])], list_version="1000")

    zone.apply("n2", facts("n2", ["home"], ["192.0.2.2"]), "5")

    assert zone.snapshot.serial == 1001


def test_serial_uses_resource_version_modulo_2_32() -> None:
    zone = synced_zone([], list_version=str(SERIAL_MODULO + 5))

    assert zone.snapshot.serial == 5


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        (1, 0, True),
        (0, 1, False),
        (5, 5, False),
        (0, SERIAL_MODULO - 1, True),  # wrap-around
        (2**31 - 1, 0, True),
        (2**31 + 1, 0, False),
    ],
)
def test_serial_comparison_follows_rfc_1982(a: int, b: int, newer: bool) -> None:
    assert serial_newer(a, b) is newer


# --- names -------------------------------------------------------------------------------------------


def test_empty_non_terminals_above_deep_names() -> None:
    zone = synced_zone([], nameservers="ns1.a.b.lb.example.net=192.0.2.53")

    assert zone.snapshot.empty_non_terminals == {
        (b"a", b"b", b"lb", b"example", b"net"),
        (b"b", b"lb", b"example", b"net"),
    }


def test_apex_always_has_soa_and_ns() -> None:
    zone = synced_zone([])

    apex = zone.snapshot.names[(b"lb", b"example", b"net")]
    assert set(apex.rrsets) == {snapshot.TYPE_SOA, snapshot.TYPE_NS}


def test_home_key_is_lower_case_labels() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])

    assert HOME in zone.snapshot.names
