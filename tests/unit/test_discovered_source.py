"""The `discovered` IP source: the node agent's annotation, in the order --ip-sources gives."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from node_dns.sources import nodes
from tests.unit.zonekit import settings

KEY = "node-dns/discovered-ips"


def node(hand_set: str | None = None, discovered: str | None = None) -> dict[str, Any]:
    notes = {"a": "home"}
    if hand_set is not None:
        notes["i"] = hand_set
    if discovered is not None:
        notes[KEY] = discovered
    status = {"addresses": [{"type": "ExternalIP", "address": "198.51.100.1"}]}
    return {"metadata": {"name": "n1", "annotations": notes}, "status": status}


def ips(body: dict[str, Any], *sources: str) -> list[str]:
    keys = nodes.Keys(areas="a", ips="i", ip_sources=sources, discovered=KEY)
    facts, _ = nodes.facts_from_node(body, keys)
    return [str(ip) for ip in facts.ips]


def test_discovered_addresses_are_served_when_listed() -> None:
    assert ips(node(discovered="11.0.0.10,3ffe::10"), "discovered") == ["11.0.0.10", "3ffe::10"]


def test_a_hand_set_annotation_wins_over_discovered_addresses() -> None:
    body = node(hand_set="192.0.2.1", discovered="11.0.0.10")

    assert ips(body, "annotation", "discovered", "external") == ["192.0.2.1"]


def test_discovered_addresses_win_over_status_when_listed_first() -> None:
    assert ips(node(discovered="11.0.0.10"), "annotation", "discovered", "external") == ["11.0.0.10"]


def test_status_addresses_follow_when_the_agent_published_none() -> None:
    assert ips(node(discovered=""), "annotation", "discovered", "external") == ["198.51.100.1"]


def test_discovered_addresses_are_ignored_unless_listed() -> None:
    assert ips(node(discovered="11.0.0.10"), "annotation", "external") == ["198.51.100.1"]


def test_bad_entries_of_the_discovered_annotation_are_problems_of_that_key() -> None:
    keys = nodes.Keys(areas="a", ips="i", ip_sources=("discovered",), discovered=KEY)

    facts, problems = nodes.facts_from_node(node(discovered="11.0.0.10,nonsense"), keys)

    assert [str(ip) for ip in facts.ips] == ["11.0.0.10"]
    assert [(p.annotation, p.entry) for p in problems] == [(KEY, "nonsense")]


def test_the_settings_accept_discovered_and_name_its_annotation() -> None:
    chosen = settings(ip_sources="annotation,discovered,external")

    assert chosen.ip_sources == ("annotation", "discovered", "external")
    assert chosen.discovered_annotation == KEY


def test_the_agents_annotation_may_not_be_a_hand_set_one() -> None:
    for key in ("node-dns/ips", "node-dns/areas"):
        with pytest.raises(ValidationError, match="must differ from"):
            settings(discovered_annotation=key)
