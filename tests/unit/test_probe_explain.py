"""/debug/zone's last part: why each node is in or out of each of its areas."""

from __future__ import annotations

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import verdicts
from node_dns.zone import config as zone_config
from node_dns.zone.explain import explain
from tests.unit.zonekit import facts, new_zone, settings

TCP = spec.parse("tcp:443")


def lines(fail_open: bool = False, table: verdicts.Table | None = None, probed: bool = True) -> list[str]:
    s = settings(fail_open=fail_open)
    zone = new_zone(s, zone_config.policy(s))
    zone.replace_all(
        [
            (facts("n1", ["home"], ["192.0.2.1", "2001:db8::1"]), "10"),
            (facts("n2", ["home"], ["192.0.2.2"], ready=False), "10"),
            (facts("n3", [], ["192.0.2.3"]), "10"),
        ],
        "10",
    )
    if probed:
        zone.set_reachability(verdicts.Reachability(spec.Plan(None, {"home": TCP}), table), ["home"], "11")
    return explain(zone.facts, zone.policy, zone.latest)


def test_without_probes_health_alone_decides() -> None:
    text = lines(probed=False)
    assert "; n1 home: in: healthy" in text
    assert "; n2 home: out: not ready" in text
    assert "; n3 -: out: in no area (healthy)" in text


def test_each_address_says_what_its_probe_found() -> None:
    table = verdicts.Table(
        {("n1", "192.0.2.1", TCP.key): True, ("n1", "2001:db8::1", TCP.key): False}, frozenset({TCP.key})
    )
    (line,) = [x for x in lines(table=table) if x.startswith("; n1 home")]
    assert line == (
        "; n1 home: in: healthy; 192.0.2.1 served (tcp:443: reachable), "
        "2001:db8::1 not served (tcp:443: unreachable)"
    )


def test_a_node_with_no_reachable_address_is_out_unless_the_area_fails_open() -> None:
    table = verdicts.Table(
        {("n1", "192.0.2.1", TCP.key): False, ("n1", "2001:db8::1", TCP.key): False}, frozenset({TCP.key})
    )
    assert any(x.startswith("; n1 home: out: healthy;") for x in lines(table=table))
    assert any(x.startswith("; n1 home: in (area failed open): healthy;") for x in lines(True, table))


def test_the_fallback_is_named() -> None:
    assert any("verdicts unavailable (Ready-only)" in x for x in lines(table=None))
