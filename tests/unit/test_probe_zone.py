"""Probe verdicts as a zone policy input: per address, per area, only removing, fail-open kept."""

from __future__ import annotations

from typing import Any

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import verdicts
from node_dns.zone import config as zone_config
from node_dns.zone.writer import Zone
from tests.unit.zonekit import ZONE, ask, facts, new_zone, query, settings

TCP = spec.parse("tcp:443")
PLAN = spec.Plan(None, {"home": TCP})


def table(
    down: list[tuple[str, str]] = (), *, complete: bool = True, up: list[tuple[str, str]] = ()
) -> verdicts.Table:  # type: ignore[assignment]
    found = {(n, ip, TCP.key): False for n, ip in down}
    found.update({(n, ip, TCP.key): True for n, ip in up})
    return verdicts.Table(found, frozenset({TCP.key}) if complete else frozenset())


def zone(*, fail_open: bool = False, **overrides: Any) -> Zone:
    s = settings(fail_open=fail_open, **overrides)
    z = new_zone(s, zone_config.policy(s))
    z.replace_all(
        [
            (facts("n1", ["home", "lab"], ["192.0.2.1", "2001:db8::1"]), "10"),
            (facts("n2", ["home", "lab"], ["192.0.2.2"]), "10"),
            (facts("n3", ["home"], ["192.0.2.3"]), "10"),
        ],
        "10",
    )
    return z


def answers(z: Zone, area: str, rtype: str = "A") -> set[str]:
    _, reply = ask(query(f"{area}.{ZONE}", rtype), z.snapshot)
    return {rd.to_text() for rrset in reply.answer for rd in rrset}


def every(ips: list[str]) -> list[tuple[str, str]]:
    return [
        (n, ip)
        for n, ip in [("n1", "192.0.2.1"), ("n1", "2001:db8::1"), ("n2", "192.0.2.2"), ("n3", "192.0.2.3")]
        if ip in ips
    ]


def reach(t: verdicts.Table | None) -> verdicts.Reachability:
    return verdicts.Reachability(PLAN, t)


ALL_UP = table(up=every(["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"]))


def test_an_unreachable_address_leaves_its_probed_area_only() -> None:
    z = zone()
    z.set_reachability(
        reach(table(down=[("n2", "192.0.2.2")], up=every(["192.0.2.1", "2001:db8::1", "192.0.2.3"]))),
        ["home"],
        "20",
    )
    assert answers(z, "home") == {"192.0.2.1", "192.0.2.3"}
    assert answers(z, "lab") == {"192.0.2.1", "192.0.2.2"}  # lab has no probe


def test_a_dead_ipv6_path_keeps_the_ipv4_answer() -> None:
    z = zone()
    z.set_reachability(
        reach(table(down=[("n1", "2001:db8::1")], up=every(["192.0.2.1", "192.0.2.2", "192.0.2.3"]))),
        ["home"],
        "20",
    )
    assert answers(z, "home", "AAAA") == set()
    assert answers(z, "home") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert z.area_counts["home"] == (3, 3)


def test_probes_never_add_an_unhealthy_node() -> None:
    s = settings(fail_open=False)
    z = new_zone(s, zone_config.policy(s))
    z.replace_all(
        [
            (facts("n1", ["home"], ["192.0.2.1"], ready=False), "10"),
            (facts("n2", ["home"], ["192.0.2.2"]), "10"),
        ],
        "10",
    )
    z.set_reachability(reach(table(up=[("n1", "192.0.2.1"), ("n2", "192.0.2.2")])), ["home"], "20")
    assert answers(z, "home") == {"192.0.2.2"}


def test_before_the_first_round_completes_unprobed_addresses_are_served() -> None:
    z = zone()
    z.set_reachability(reach(table(complete=False)), ["home"], "20")
    assert answers(z, "home") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}


def test_after_the_first_round_a_new_unprobed_node_waits_for_its_verdict() -> None:
    z = zone()
    z.set_reachability(reach(ALL_UP), ["home"], "20")
    z.apply("n4", facts("n4", ["home"], ["192.0.2.4"]), "21")
    assert "192.0.2.4" not in answers(z, "home")
    z.set_reachability(
        reach(
            table(up=[*every(["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"]), ("n4", "192.0.2.4")])
        ),
        ["home"],
        "22",
    )
    assert "192.0.2.4" in answers(z, "home")


def test_fail_open_still_applies_when_every_node_fails_its_probe() -> None:
    z = zone(fail_open=True)
    down = every(["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"])
    z.set_reachability(reach(table(down=down)), ["home"], "20")
    assert answers(z, "home") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert "home" in z.failed_open


def test_fallback_to_ready_only_serves_every_healthy_node() -> None:
    z = zone()
    z.set_reachability(reach(table(down=[("n2", "192.0.2.2")])), ["home"], "20")
    z.set_reachability(reach(None), ["home"], "21")
    assert answers(z, "home") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}


def test_serial_follows_the_verdict_objects_version_and_stays_when_content_does_not_move() -> None:
    z = zone()
    z.set_reachability(reach(table(down=[("n2", "192.0.2.2")])), ["home"], "20")
    assert z.snapshot.serial == 20
    assert not z.set_reachability(reach(table(down=[("n2", "192.0.2.2")])), ["home"], "25")
    assert z.snapshot.serial == 20


def test_rebuilt_zone_equals_a_zone_built_from_scratch_with_the_same_verdicts() -> None:
    z = zone()
    t = table(down=[("n1", "2001:db8::1"), ("n3", "192.0.2.3")])
    z.set_reachability(reach(t), ["home"], "20")
    s = settings(fail_open=False)
    fresh = new_zone(s, zone_config.policy(s))
    fresh.set_reachability(reach(t), [], None)
    fresh.replace_all([(f, "10") for f in z.facts.nodes.values()], "10")
    assert answers(fresh, "home") == answers(z, "home")
    assert answers(fresh, "home", "AAAA") == answers(z, "home", "AAAA")
