"""Probe texts and the per-area YAML plan: what parses, what is refused and how it says so."""

from __future__ import annotations

import pytest
import yaml

from node_dns.settings import probe_spec as spec


def test_tcp_probe_names_a_port_only() -> None:
    probe = spec.parse("tcp:443")
    assert (probe.kind, probe.port) == ("tcp", 443)
    assert probe.short == "tcp:443"


def test_http_probe_keeps_path_and_query() -> None:
    probe = spec.parse("http://:8080/healthz?full=1")
    assert (probe.kind, probe.port, probe.path) == ("http", 8080, "/healthz?full=1")


def test_http_probe_without_path_asks_for_root() -> None:
    assert spec.parse("http://:80").path == "/"


def test_https_probe_verifies_tls_by_default() -> None:
    probe = spec.parse("https://:443/ready")
    assert probe.kind == "https"
    assert probe.verify is True
    assert probe.status == (200, 399)


def test_dns_probe_names_port_and_question() -> None:
    probe = spec.parse("dns:53:Probe.Example.NET.")
    assert (probe.kind, probe.port, probe.name, probe.rcode) == ("dns", 53, "probe.example.net", 0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tcp:0", "port '0'"),
        ("tcp:http", "port 'http'"),
        ("http://example.org:80/", "no host"),
        ("dns:53", "dns:PORT:NAME"),
        ("dns:53:bad..name", "not a DNS name"),
        ("udp:53", "must be tcp:PORT"),
    ],
)
def test_bad_probe_text_is_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(spec.SpecError, match=words.replace(".", r"\.").replace("(", r"\(")):
        spec.parse(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("200", (200, 200)), ("200-299", (200, 299)), ("2xx", (200, 299))]
)
def test_status_ranges(text: str, expected: tuple[int, int]) -> None:
    assert spec.parse_status(text) == expected


def test_status_range_out_of_order_is_refused() -> None:
    with pytest.raises(spec.SpecError):
        spec.parse_status("299-200")


def test_rcode_by_name_or_number() -> None:
    assert spec.parse_rcode("nxdomain") == 3
    assert spec.parse_rcode("5") == 5
    with pytest.raises(spec.SpecError):
        spec.parse_rcode("NOPE")


def test_timing_rules() -> None:
    with pytest.raises(spec.SpecError, match="timeout"):
        spec.Timing(interval=1, timeout=2).check()
    with pytest.raises(spec.SpecError, match="rise and fall"):
        spec.Timing(fall=0).check()
    with pytest.raises(spec.SpecError, match="jitter"):
        spec.Timing(jitter=1.5).check()


def test_key_differs_when_anything_that_matters_differs() -> None:
    base = spec.parse("https://:443/")
    assert base.key != spec.parse("https://:443/other").key
    assert base.key != spec.parse("https://:443/", spec.Probe("tcp", 1, sni="a.example")).key
    assert base.key != spec.parse("https://:443/", timing=spec.Timing(interval=5)).key
    assert base.key == spec.parse("https://:443/").key


def _plan(text: str, default: str | None = "tcp:22") -> spec.Plan:
    base = spec.Probe("tcp", 1)
    probe = spec.parse(default, base) if default else None
    return spec.plan_from(yaml.safe_load(text), probe, base)


def test_area_entries_override_the_flag_default() -> None:
    plan = _plan(
        """
areas:
  home: https://:443/healthz
  lab: none
  edge:
    probe: http://:8080/
    status: 2xx
    fall: 3
"""
    )
    assert plan.for_area("other").short == "tcp:22"  # type: ignore[union-attr]
    assert plan.for_area("home").short == "https://:443/healthz"  # type: ignore[union-attr]
    assert plan.for_area("lab") is None
    edge = plan.for_area("edge")
    assert edge is not None
    assert (edge.status, edge.timing.fall) == ((200, 299), 3)


def test_file_default_replaces_the_flag_default() -> None:
    plan = _plan("default: dns:53:probe.example.net\n")
    assert plan.for_area("any").kind == "dns"  # type: ignore[union-attr]


def test_area_entry_without_probe_adjusts_the_default() -> None:
    plan = _plan("areas:\n  slow:\n    interval: 10\n    timeout: 3\n")
    slow = plan.for_area("slow")
    assert slow is not None
    assert (slow.short, slow.timing.interval, slow.timing.timeout) == ("tcp:22", 10.0, 3.0)


def test_no_default_means_only_listed_areas_are_probed() -> None:
    plan = _plan("areas:\n  home: tcp:443\n", default=None)
    assert plan.for_area("other") is None
    assert plan.enabled


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("areas:\n  home:\n    probe: tcp:1\n    colour: red\n", "area 'home': unknown keys"),
        ("areas:\n  home: udp:1\n", "area 'home': probe 'udp:1'"),
        ("areas:\n  home:\n    timeout: 9\n", "area 'home': timeout"),
        ("probes: {}\n", "unknown keys"),
        ("- tcp:1\n", "must be a mapping"),
    ],
)
def test_bad_probe_file_names_the_area_and_the_rule(text: str, words: str) -> None:
    with pytest.raises(spec.SpecError, match=words):
        _plan(text)


def test_plan_lists_each_distinct_probe_once() -> None:
    plan = _plan("areas:\n  a: tcp:22\n  b: tcp:443\n")
    assert [p.short for p in plan.probes()] == ["tcp:22", "tcp:443"]
