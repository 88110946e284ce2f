"""The zone file dump: what the snapshot serves, as text a DNS server (and dnspython) can load."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from node_dns import model
from node_dns.zone import dump
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, new_zone, settings, synced_zone


def zone_with_everything() -> Zone:
    zone = synced_zone(
        [
            facts("n1", ["home", "dual"], ["192.0.2.1", "2001:db8::1"]),
            facts("n2", ["home"], ["192.0.2.2"], ready=False),
        ],
        services=True,
        static_records="office=192.0.2.50",
    )
    zone.apply_service(("shop", "web"), model.ServiceFacts(namespace="shop", name="web", exposed=True), "200")
    zone.apply_service(
        ("shop", "idle"), model.ServiceFacts(namespace="shop", name="idle", exposed=True), "201"
    )
    zone.apply_slice(
        ("shop", "w"),
        model.SliceFacts(namespace="shop", name="w", service="web", ready=frozenset({"n1"})),
        "202",
    )
    return zone


def test_the_dump_loads_as_a_zone_with_every_served_record() -> None:
    zone = zone_with_everything()
    text = dump.render(zone.snapshot)

    loaded = dns.zone.from_text(text, origin="lb.example.net.", relativize=False, check_origin=True)

    def rdatas(name: str, rdtype: str) -> list[str]:
        rdataset = loaded.get_rdataset(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
        return sorted(rd.to_text() for rd in rdataset) if rdataset else []

    assert rdatas("lb.example.net.", "SOA")[0].split()[2] == "202"
    assert rdatas("lb.example.net.", "NS") == [
        "ns.sub.lb.example.net.",
        "ns1.lb.example.net.",
        "ns2.example.org.",
    ]
    assert rdatas("ns1.lb.example.net.", "A") == ["192.0.2.53"]
    assert rdatas("home.lb.example.net.", "A") == ["192.0.2.1"]
    assert rdatas("home.lb.example.net.", "AAAA") == ["2001:db8::1"]
    assert rdatas("v4.home.lb.example.net.", "A") == ["192.0.2.1"]
    assert rdatas("v4.home.lb.example.net.", "AAAA") == []
    assert rdatas("office.lb.example.net.", "A") == ["192.0.2.50"]
    assert rdatas("web.shop.lb.example.net.", "A") == ["192.0.2.1"]
    assert "; idle.shop.lb.example.net. exists with no records (NODATA)" in text
    assert ";   shop.lb.example.net." in text


def test_apex_first_then_canonical_order_one_record_per_line() -> None:
    lines = [
        line
        for line in dump.render(zone_with_everything().snapshot).splitlines()
        if not line.startswith((";", "$"))
    ]
    owners = [line.split()[0] for line in lines]

    assert owners[0] == owners[1] == "lb.example.net."
    assert lines[0].split()[3] == "SOA"
    rest = [o for o in dict.fromkeys(owners) if o != "lb.example.net."]
    assert rest == sorted(rest, key=lambda name: list(reversed(name.rstrip(".").split("."))))
    assert all(len(line.split()) >= 5 for line in lines)


def test_an_unsynced_zone_says_so() -> None:
    text = dump.render(new_zone(settings()).snapshot)

    assert "NOT SYNCED" in text
    assert "lb.example.net. 300 IN SOA ns1.lb.example.net. hostmaster.example.net. 0 " in text


@pytest.mark.skipif(shutil.which("nsd-checkzone") is None, reason="nsd-checkzone (Debian nsd) not installed")
def test_nsd_accepts_the_dump(tmp_path: Path) -> None:
    path = tmp_path / "lb.example.net.zone"
    path.write_text(dump.render(zone_with_everything().snapshot))

    result = subprocess.run(
        ["nsd-checkzone", "lb.example.net", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
