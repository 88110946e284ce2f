"""Annotation parsing and Node -> NodeFacts: bad entries are skipped, counted and logged once;
good entries of the same node and every other node are unaffected."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest

from node_dns import model
from node_dns.sources import nodes, parsing
from tests.unit.zonekit import new_zone, settings

AREAS = "example.net/node-areas"
IPS = "example.net/node-ips"
KEYS = nodes.Keys(areas=AREAS, ips=IPS)


def ip(text: str) -> model.IPAddress:
    return ipaddress.ip_address(text)


def node(
    name: str,
    areas: str | None = None,
    ips: str | None = None,
    *,
    ready: str | None = "True",
    unschedulable: bool = False,
    deleting: bool = False,
    version: str = "1",
) -> dict[str, Any]:
    annotations = {}
    if areas is not None:
        annotations[AREAS] = areas
    if ips is not None:
        annotations[IPS] = ips
    body: dict[str, Any] = {
        "metadata": {"name": name, "annotations": annotations, "resourceVersion": version},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": [] if ready is None else [{"type": "Ready", "status": ready}]},
    }
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return body


# --- areas ---------------------------------------------------------------------------------------


def test_areas_are_trimmed_lower_cased_and_deduplicated() -> None:
    areas, problems = parsing.parse_areas(" home ,Cloud,HOME, cloud ", AREAS)

    assert areas == {"home", "cloud"}
    assert problems == []


@pytest.mark.parametrize("value", [None, "", " ", ",", " , ,, "])
def test_empty_areas_annotation_or_entries_are_no_areas_and_no_problem(value: str | None) -> None:
    assert parsing.parse_areas(value, AREAS) == (frozenset(), [])


@pytest.mark.parametrize(
    "bad",
    [
        "Bad_Area",
        "-lead",
        "trail-",
        "two.labels",
        "x" * 64,
        "with space",
        "*",
        "ünïcode",
        "\uff48\uff4f\uff4d\uff45",  # fullwidth letters
        "\u212aube",  # KELVIN SIGN lower-cases to ASCII 'k': still not a DNS label
        "home\x00",
        "new\nline",
    ],
)
def test_bad_area_is_skipped_and_good_ones_kept(bad: str) -> None:
    areas, problems = parsing.parse_areas(f"home,{bad},cloud", AREAS)

    assert areas == {"home", "cloud"}
    assert [(p.annotation, p.entry) for p in problems] == [(AREAS, bad)]


def test_longest_valid_label_is_accepted() -> None:
    areas, problems = parsing.parse_areas("a" * 63 + ",xn--bcher-kva,0-9", AREAS)

    assert areas == {"a" * 63, "xn--bcher-kva", "0-9"}
    assert problems == []


def test_huge_area_entry_is_reported_shortened() -> None:
    _, problems = parsing.parse_areas("home," + "x" * 100_000, AREAS)

    (problem,) = problems
    assert len(problem.entry) <= 64
    assert problem.entry.endswith("...")


def test_too_many_area_entries_read_only_the_first_ones() -> None:
    value = ",".join(f"a{i}" for i in range(parsing.MAX_ENTRIES + 500))

    areas, problems = parsing.parse_areas(value, AREAS)

    assert len(areas) == parsing.MAX_ENTRIES
    assert "a0" in areas
    assert f"a{parsing.MAX_ENTRIES}" not in areas
    assert len(problems) == 1


# --- IPs ----------------------------------------------------------------------------------------


def test_ips_keep_ipv4_and_ipv6_and_drop_duplicates() -> None:
    ips, problems = parsing.parse_ips("192.0.2.1, 2001:db8::1,192.0.2.1, 2001:DB8:0::1", IPS)

    assert ips == (ip("192.0.2.1"), ip("2001:db8::1"))
    assert problems == []


def test_ipv4_mapped_ipv6_is_normalised_to_ipv4_and_deduplicated() -> None:
    ips, problems = parsing.parse_ips("::ffff:192.0.2.1, 192.0.2.1, ::FFFF:c000:202", IPS)

    assert ips == (ip("192.0.2.1"), ip("192.0.2.2"))
    assert problems == []


@pytest.mark.parametrize("value", [None, "", ",", " , "])
def test_empty_ips_annotation_or_entries_are_no_ips_and_no_problem(value: str | None) -> None:
    assert parsing.parse_ips(value, IPS) == ((), [])


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        "1.2.3",
        "256.1.1.1",
        "01.2.3.4",  # leading zeros are ambiguous (octal?)
        "192.0.2.1/24",
        "192.0.2.1:53",
        "[2001:db8::1]",
        "2001:db8::1::2",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "fe80::1%eth0",  # zone index: packs like fe80::1, meaningless in DNS
        "\uff11.\uff12.\uff13.\uff14",  # fullwidth digits
        "192.0.2.1\x00",
        "9" * 5000,
    ],
)
def test_bad_ip_is_skipped_and_good_ones_kept(bad: str) -> None:
    ips, problems = parsing.parse_ips(f"192.0.2.1,{bad},2001:db8::1", IPS)

    assert ips == (ip("192.0.2.1"), ip("2001:db8::1"))
    assert len(problems) == 1
    assert problems[0].annotation == IPS


def test_scoped_and_plain_link_local_never_give_two_identical_records() -> None:
    ips, _ = parsing.parse_ips("fe80::1, fe80::1%eth0", IPS)

    assert [a.packed for a in ips] == [ip("fe80::1").packed]


# --- Node objects to facts --------------------------------------------------------------------------


def test_facts_from_node_reads_areas_ips_readiness_cordon_and_deletion() -> None:
    facts, problems = nodes.facts_from_node(
        node("n1", "home", "192.0.2.1", ready="True", unschedulable=True, deleting=True), KEYS
    )

    assert facts == model.NodeFacts(
        name="n1",
        areas=frozenset({"home"}),
        ips=(ip("192.0.2.1"),),
        ready=True,
        schedulable=False,
        deleting=True,
    )
    assert problems == []


@pytest.mark.parametrize(
    ("status", "ready"), [("True", True), ("False", False), ("Unknown", False), (None, False)]
)
def test_only_ready_true_counts_as_ready(status: str | None, ready: bool) -> None:
    facts, _ = nodes.facts_from_node(node("n1", "home", "192.0.2.1", ready=status), KEYS)

    assert facts.ready is ready


def test_node_without_annotations_has_no_areas() -> None:
    facts, problems = nodes.facts_from_node({"metadata": {"name": "bare"}}, KEYS)

    assert (facts.areas, facts.ips, facts.ready) == (frozenset(), (), False)
    assert problems == []


def test_other_annotation_keys_are_ignored() -> None:
    body = node("n1", "home", "192.0.2.1")
    body["metadata"]["annotations"]["node-dns/areas"] = "other"

    facts, _ = nodes.facts_from_node(body, KEYS)

    assert facts.areas == {"home"}


# --- NodeSource: reporting ------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.applied: list[tuple[str, model.NodeFacts | None, str | None]] = []
        self.lists: list[tuple[list[tuple[model.NodeFacts, str | None]], str | None]] = []
        self.abandoned: list[tuple[list[tuple[model.NodeFacts, str | None]], str | None]] = []

    def apply(self, name: str, facts: model.NodeFacts | None, version: str | None = None) -> bool:
        self.applied.append((name, facts, version))
        return True

    def replace_all(self, nodes: list[tuple[model.NodeFacts, str | None]], list_version: str | None) -> bool:
        self.lists.append((nodes, list_version))
        return True

    def replacing(self, list_version: str | None) -> SinkList:
        return SinkList(self, list_version)


class SinkList:
    """A list handed over in slices: recorded in the sink as one list when finished."""

    def __init__(self, sink: Sink, list_version: str | None) -> None:
        self.sink, self.version = sink, list_version
        self.nodes: list[tuple[model.NodeFacts, str | None]] = []
        self.parts = 0

    def feed(self, nodes: list[tuple[model.NodeFacts, str | None]]) -> None:
        self.nodes.extend(nodes)
        self.parts += 1

    def finish(self) -> bool:
        return self.sink.replace_all(self.nodes, self.version)

    def abandon(self) -> None:
        self.sink.abandoned.append((self.nodes, self.version))


def test_bad_entries_are_logged_and_counted_per_annotation(caplog: pytest.LogCaptureFixture) -> None:
    source = nodes.NodeSource(Sink(), KEYS)

    with caplog.at_level(logging.WARNING, logger="node_dns.sources.nodes"):
        source.on_event("ADDED", node("n1", "home,Bad_Area", "192.0.2.1,nope,also-bad"))

    assert source.stats.invalid_entries == {AREAS: 1, IPS: 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("n1" in line for line in warnings)
    assert any("Bad_Area" in line for line in warnings)


def test_bad_entries_are_reported_once_until_the_annotation_changes(caplog: pytest.LogCaptureFixture) -> None:
    source = nodes.NodeSource(Sink(), KEYS)

    with caplog.at_level(logging.WARNING, logger="node_dns.sources.nodes"):
        source.on_event("ADDED", node("n1", "home", "nope", version="1"))
        source.on_event("MODIFIED", node("n1", "home", "nope", ready="False", version="2"))  # heartbeat
        source.on_list([node("n1", "home", "nope", ready="False", version="2")], "3")
        once = source.stats.invalid_entries[IPS]
        source.on_event("MODIFIED", node("n1", "home", "nope, nope2", version="4"))

    assert once == 1
    assert source.stats.invalid_entries[IPS] == 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_bad_entries_of_one_node_leave_other_nodes_alone() -> None:
    zone = new_zone(settings())
    source = nodes.NodeSource(zone, KEYS)

    source.on_list(
        [
            node("good", "home", "192.0.2.1"),
            node("messy", "home, Not Valid, ünï", "nope, 192.0.2.2, ::ffff:192.0.2.3, 300.1.1.1"),
            node("huge", "home", ",".join(["bad"] * 3000)),
        ],
        "10",
    )

    home = zone.snapshot.names[(b"home", b"lb", b"example", b"net")]
    assert list(home.rrsets[1].texts) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_deleted_event_removes_the_node_from_the_sink() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)

    source.on_event("DELETED", node("n1", "home", "192.0.2.1", version="9"))

    assert sink.applied == [("n1", None, "9")]


def test_listing_event_type_none_applies_facts_with_the_resource_version() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)

    source.on_event(None, node("n1", "home", "192.0.2.1", version="5"))

    ((name, facts, version),) = sink.applied
    assert (name, version) == ("n1", "5")
    assert facts is not None and facts.areas == {"home"}
    assert source.stats.events == {"LISTED": 1}


def test_list_passes_every_node_and_the_list_version() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)

    source.on_list([node("a", version="3"), node("b", version="4")], "7")

    ((listed, version),) = sink.lists
    assert version == "7"
    assert [(f.name, v) for f, v in listed] == [("a", "3"), ("b", "4")]


def test_a_cached_parse_hands_out_a_fresh_problem_list_each_time() -> None:
    first_ips, first = parsing.parse_ips("192.0.2.1, nope", "k")
    first.append(parsing.Problem("k", "added by a caller", "x"))

    again_ips, again = parsing.parse_ips("192.0.2.1, nope", "k")

    assert again_ips == first_ips
    assert [p.entry for p in again] == ["nope"]


def test_values_too_long_for_the_cache_are_parsed_the_same() -> None:
    value = ", ".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(100))
    assert len(value) > parsing.CACHE_VALUE_LIMIT

    ips, problems = parsing.parse_ips(value, "k")

    assert len(ips) == 100 and problems == []
