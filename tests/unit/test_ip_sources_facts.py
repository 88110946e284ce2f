"""ip_sources: where a node's IPs come from; the first source that yields an address wins."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from node_dns.sources import nodes
from tests.unit.zonekit import settings


def node(annotation: str | None = None, addresses: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    notes = {"a": "home"}
    if annotation is not None:
        notes["i"] = annotation
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True"}]}
    if addresses is not None:
        status["addresses"] = [{"type": kind, "address": address} for kind, address in addresses]
    return {"metadata": {"name": "n1", "annotations": notes}, "status": status}


ADDRESSES = [
    ("InternalIP", "10.0.0.1"),
    ("ExternalIP", "198.51.100.1"),
    ("ExternalIP", "2001:db8::1"),
    ("Hostname", "n1"),
    ("InternalIP", "fd00::1"),
]


def ips(body: dict[str, Any], *sources: str) -> list[str]:
    facts, _ = nodes.facts_from_node(body, nodes.Keys(areas="a", ips="i", ip_sources=sources))
    return [str(ip) for ip in facts.ips]


@pytest.mark.parametrize(
    ("sources", "annotation", "expected"),
    [
        (("annotation",), "192.0.2.1", ["192.0.2.1"]),
        (("annotation",), None, []),
        (("external",), "192.0.2.1", ["198.51.100.1", "2001:db8::1"]),
        (("internal",), None, ["10.0.0.1", "fd00::1"]),
        (("annotation", "external"), "192.0.2.1", ["192.0.2.1"]),
        (("annotation", "external"), None, ["198.51.100.1", "2001:db8::1"]),
        (("annotation", "external"), "not-an-ip", ["198.51.100.1", "2001:db8::1"]),
        (("external", "annotation"), "192.0.2.1", ["198.51.100.1", "2001:db8::1"]),
        (("internal", "external", "annotation"), "192.0.2.1", ["10.0.0.1", "fd00::1"]),
    ],
)
def test_the_first_source_with_an_address_wins(
    sources: tuple[str, ...], annotation: str | None, expected: list[str]
) -> None:
    assert ips(node(annotation, ADDRESSES), *sources) == expected


def test_sources_are_never_mixed() -> None:
    body = node("192.0.2.1", [("ExternalIP", "198.51.100.1")])

    assert ips(body, "annotation", "external") == ["192.0.2.1"]


def test_later_sources_are_used_when_earlier_ones_have_none() -> None:
    body = node(None, [("InternalIP", "10.0.0.1")])

    assert ips(body, "annotation", "external", "internal") == ["10.0.0.1"]
    assert ips(body, "annotation", "external") == []


def test_unusable_status_addresses_are_skipped() -> None:
    body = node(
        None, [("ExternalIP", "bogus"), ("ExternalIP", "0.0.0.0"), ("ExternalIP", "::ffff:198.51.100.7")]
    )
    body["status"]["addresses"].append("junk")

    assert ips(body, "external") == ["198.51.100.7"]


def test_annotation_problems_are_reported_only_when_the_annotation_is_read() -> None:
    body = node("bad", [("ExternalIP", "198.51.100.1")])
    keys = nodes.Keys(areas="a", ips="i", ip_sources=("external", "annotation"))

    _, problems = nodes.facts_from_node(body, keys)
    assert problems == []

    keys = nodes.Keys(areas="a", ips="i", ip_sources=("annotation", "external"))
    _, problems = nodes.facts_from_node(body, keys)
    assert [p.entry for p in problems] == ["bad"]


def test_the_setting_parses_a_list_and_rejects_unknown_or_repeated_sources() -> None:
    assert settings().ip_sources == ("annotation",)
    assert settings(ip_sources="external, internal").ip_sources == ("external", "internal")
    assert settings(ip_sources=["internal"]).ip_sources == ("internal",)
    for bad in ("", "hostname", "external,external"):
        with pytest.raises(ValidationError):
            settings(ip_sources=bad)
