"""One serial for the same content on every replica: the Lease record and what a replica adopts."""

from __future__ import annotations

from node_dns.zone import serial
from node_dns.zone.writer import Zone
from tests.unit import zonekit


def _zone(list_version: str, ips: tuple[str, ...] = ("192.0.2.1", "192.0.2.2")) -> Zone:
    nodes = [zonekit.facts(f"n{i}", ["home"], [ip]) for i, ip in enumerate(ips)]
    return zonekit.synced_zone(nodes, list_version=list_version)


def test_the_same_content_hashes_alike_whatever_the_serial() -> None:
    early, late = _zone("100"), _zone("900")

    assert early.snapshot.serial != late.snapshot.serial
    assert serial.content_hash(early.snapshot) == serial.content_hash(late.snapshot)
    assert serial.content_hash(early.snapshot) != serial.content_hash(_zone("100", ("192.0.2.9",)).snapshot)


def test_a_replica_started_later_adopts_the_leaders_older_serial_while_provisional() -> None:
    leader, late = _zone("100"), _zone("900")  # the later list counts unrelated writes too
    record = serial.Agreement().record(leader.snapshot)[serial.ANNOTATION]
    agreement = serial.Agreement()

    adopted = agreement.observe(record, late.snapshot)

    assert adopted == leader.snapshot.serial
    assert late.adopt_serial(adopted)
    assert late.snapshot.serial == leader.snapshot.serial and not agreement.provisional


def test_once_settled_a_replica_never_goes_back() -> None:
    leader, replica = _zone("100"), _zone("900")
    agreement = serial.Agreement()
    agreement.observe(None, replica.snapshot)  # settled: the Lease had no record yet

    older = serial.Agreement().record(leader.snapshot)[serial.ANNOTATION]

    assert agreement.observe(older, replica.snapshot) is None


def test_a_newer_serial_for_the_same_content_is_adopted_and_other_content_is_ignored() -> None:
    replica, ahead = _zone("100"), _zone("500")
    agreement = serial.Agreement()
    agreement.observe(None, replica.snapshot)
    other = serial.Agreement().record(_zone("700", ("192.0.2.7",)).snapshot)[serial.ANNOTATION]

    assert agreement.observe(other, replica.snapshot) is None
    newer = serial.Agreement().record(ahead.snapshot)[serial.ANNOTATION]
    assert agreement.observe(newer, replica.snapshot) == ahead.snapshot.serial


def test_adopting_publishes_the_same_records_under_the_new_serial() -> None:
    zone = _zone("100")
    seen: list[tuple[int, int]] = []
    zone.subscribe(lambda old, new: seen.append((old.serial, new.serial)))
    before = serial.content_hash(zone.snapshot)

    zone.adopt_serial(42)

    assert seen == [(100, 42)] and serial.content_hash(zone.snapshot) == before


def test_malformed_records_are_ignored() -> None:
    zone = _zone("100")
    for value in ("", "x y", "123", "99999999999 abc", None):
        assert serial.Agreement().observe(value, zone.snapshot) is None
