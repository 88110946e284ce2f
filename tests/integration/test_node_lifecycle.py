"""Node lifecycle against a real apiserver: each change a cluster makes to a Node shows up in the
answers node-dns gives over UDP and TCP (dnspython) and to dig. One node-dns for the module,
running with a token that may only get/list/watch nodes; every test uses its own area names."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dns.rcode
import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import (
    AREAS_ANNOTATION,
    IPS_ANNOTATION,
    answers,
    both_transports,
    dig,
    dig_answers,
    fqdn,
    is_nodata,
    metric,
    node_reader,
    rcode,
    serial,
    udp,
    unique,
    wait_for,
)

pytestmark = pytest.mark.controlplane

CONVERGE = 5.0


@pytest.fixture(scope="module")
def server(control_plane: ControlPlane) -> Iterator[NodeDns]:
    kubeconfig, _ = node_reader(control_plane, "lifecycle")
    # Strict health, as README.md "Annotations" states it: an area with no healthy node answers NODATA.
    # (Fail-open, on by default, is tested with the reliability settings.)
    with NodeDns(kubeconfig, extra_args=["--no-fail-open"]) as running:
        yield running


class Nodes:
    """Creates annotated nodes and deletes them after the test, waiting until node-dns saw it."""

    def __init__(self, plane: ControlPlane, server: NodeDns) -> None:
        self.plane, self.server = plane, server
        self.created: list[str] = []
        self.areas: set[str] = set()

    def add(self, area: str | None, ips: str | None, *, ready: bool = True, **kwargs: object) -> str:
        name = unique("node")
        notes = {}
        if area is not None:
            notes[AREAS_ANNOTATION] = area
            self.areas |= {a.strip().lower() for a in area.split(",") if a.strip()}
        if ips is not None:
            notes[IPS_ANNOTATION] = ips
        self.plane.create_node(name, annotations=notes, ready=ready, **kwargs)
        self.created.append(name)
        return name

    def cleanup(self) -> None:
        self.plane.delete_nodes(self.created)
        gone = [a for a in self.areas if a.isascii()]
        wait_for(
            lambda: all(rcode(self.server, fqdn(a, self.server)) == dns.rcode.NXDOMAIN for a in gone),
            timeout=CONVERGE,
            what="cleanup seen by node-dns",
        )


@pytest.fixture
def nodes(control_plane: ControlPlane, server: NodeDns) -> Iterator[Nodes]:
    made = Nodes(control_plane, server)
    yield made
    made.cleanup()


def converge(predicate: Callable[[], object], what: str) -> None:
    wait_for(predicate, timeout=CONVERGE, what=what)


def modified_events(server: NodeDns) -> float:
    return metric(server, "node_dns_watch_events_total", type="MODIFIED") or 0.0


# --- add ---------------------------------------------------------------------------------------------


def test_new_node_is_answered_over_udp_and_tcp(server: NodeDns, nodes: Nodes) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.10, 2001:db8::10")

    converge(lambda: answers(server, area) == {"192.0.2.10"}, "A answer")

    assert both_transports(server, area, "A") == ({"192.0.2.10"}, {"192.0.2.10"})
    assert both_transports(server, area, "AAAA") == ({"2001:db8::10"}, {"2001:db8::10"})


def test_new_node_is_answered_to_dig(server: NodeDns, nodes: Nodes) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.11, 2001:db8::11")
    converge(lambda: answers(server, area) == {"192.0.2.11"}, "A answer")

    a = dig_answers(dig(server, fqdn(area, server), "A", "+noall", "+answer"))
    aaaa = dig_answers(dig(server, fqdn(area, server), "AAAA", "+noall", "+answer", "+tcp"))

    assert a == [(f"{fqdn(area, server)}.", "A", "192.0.2.11")]
    assert aaaa == [(f"{fqdn(area, server)}.", "AAAA", "2001:db8::11")]


def test_second_node_in_an_area_adds_its_address(server: NodeDns, nodes: Nodes) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.20")
    converge(lambda: answers(server, area) == {"192.0.2.20"}, "first node")

    nodes.add(area, "192.0.2.21")

    converge(lambda: answers(server, area) == {"192.0.2.20", "192.0.2.21"}, "both nodes")
    assert both_transports(server, area)[1] == {"192.0.2.20", "192.0.2.21"}


# --- annotate ----------------------------------------------------------------------------------------


def test_annotating_a_node_puts_it_in_the_area(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    name = nodes.add(None, "192.0.2.30")
    nodes.areas.add(area)
    assert rcode(server, fqdn(area, server)) == dns.rcode.NXDOMAIN

    control_plane.annotate(name, {AREAS_ANNOTATION: area})

    converge(lambda: answers(server, area) == {"192.0.2.30"}, "annotated node answered")


def test_removing_the_areas_annotation_withdraws_the_node(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.31")
    converge(lambda: answers(server, area) == {"192.0.2.31"}, "answered")

    control_plane.annotate(name, {AREAS_ANNOTATION: None})

    converge(lambda: rcode(server, fqdn(area, server)) == dns.rcode.NXDOMAIN, "NXDOMAIN")


def test_moving_a_node_to_another_area(server: NodeDns, nodes: Nodes, control_plane: ControlPlane) -> None:
    old, new = unique("area"), unique("area")
    name = nodes.add(old, "192.0.2.32")
    nodes.areas.add(new)
    converge(lambda: answers(server, old) == {"192.0.2.32"}, "answered in the old area")

    control_plane.annotate(name, {AREAS_ANNOTATION: new})

    converge(lambda: answers(server, new) == {"192.0.2.32"}, "answered in the new area")
    assert rcode(server, fqdn(old, server)) == dns.rcode.NXDOMAIN


def test_changing_ips_replaces_the_answer(server: NodeDns, nodes: Nodes, control_plane: ControlPlane) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.40, 2001:db8::40")
    converge(lambda: answers(server, area) == {"192.0.2.40"}, "first IPs")

    control_plane.annotate(name, {IPS_ANNOTATION: "192.0.2.41, 192.0.2.42"})

    converge(lambda: answers(server, area) == {"192.0.2.41", "192.0.2.42"}, "new IPs")
    assert both_transports(server, area)[1] == {"192.0.2.41", "192.0.2.42"}
    assert is_nodata(udp(server, fqdn(area, server), "AAAA"))


# --- readiness -----------------------------------------------------------------------------------------


def test_not_ready_node_is_withdrawn_and_returns_when_ready(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.50")
    flapping = nodes.add(area, "192.0.2.51")
    converge(lambda: answers(server, area) == {"192.0.2.50", "192.0.2.51"}, "both ready")

    control_plane.set_ready(flapping, False)
    converge(lambda: answers(server, area) == {"192.0.2.50"}, "withdrawn when NotReady")
    assert both_transports(server, area)[1] == {"192.0.2.50"}

    control_plane.set_ready(flapping, True)
    converge(lambda: answers(server, area) == {"192.0.2.50", "192.0.2.51"}, "back when Ready")


@pytest.mark.parametrize("status", [False, "Unknown"])
def test_area_whose_only_node_is_not_ready_answers_nodata(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane, status: bool | str
) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.52")
    converge(lambda: answers(server, area) == {"192.0.2.52"}, "ready")

    control_plane.set_ready(name, status)

    converge(lambda: answers(server, area) == set(), "NODATA")
    assert is_nodata(udp(server, fqdn(area, server)))
    assert "status: NOERROR" in dig(server, fqdn(area, server), "A")


def test_node_created_not_ready_is_not_answered(server: NodeDns, nodes: Nodes) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.53", ready=False)
    nodes.add(area, "192.0.2.54")

    converge(lambda: answers(server, area) == {"192.0.2.54"}, "only the ready node")


# --- cordon -------------------------------------------------------------------------------------------


def test_cordoned_node_is_withdrawn_and_uncordon_restores_it(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.60")
    drained = nodes.add(area, "192.0.2.61")
    converge(lambda: answers(server, area) == {"192.0.2.60", "192.0.2.61"}, "both")

    control_plane.cordon(drained)
    converge(lambda: answers(server, area) == {"192.0.2.60"}, "withdrawn when cordoned")

    control_plane.uncordon(drained)
    converge(lambda: answers(server, area) == {"192.0.2.60", "192.0.2.61"}, "back when uncordoned")


# --- delete -------------------------------------------------------------------------------------------


def test_deleted_node_is_withdrawn(server: NodeDns, nodes: Nodes, control_plane: ControlPlane) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.70")
    doomed = nodes.add(area, "192.0.2.71")
    converge(lambda: answers(server, area) == {"192.0.2.70", "192.0.2.71"}, "both")

    control_plane.delete_node(doomed)

    converge(lambda: answers(server, area) == {"192.0.2.70"}, "withdrawn when deleted")
    assert both_transports(server, area)[1] == {"192.0.2.70"}


def test_deleting_the_last_node_makes_the_area_nxdomain(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.72")
    converge(lambda: answers(server, area) == {"192.0.2.72"}, "answered")

    control_plane.delete_node(name)

    converge(lambda: rcode(server, fqdn(area, server)) == dns.rcode.NXDOMAIN, "NXDOMAIN")
    assert "status: NXDOMAIN" in dig(server, fqdn(area, server), "A")


# --- SOA serial ---------------------------------------------------------------------------------------


def test_label_change_keeps_the_soa_serial(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.80")
    converge(lambda: answers(server, area) == {"192.0.2.80"}, "answered")
    before, events = serial(server), modified_events(server)

    control_plane.label(name, {"example.net/rack": "r1"})

    converge(lambda: modified_events(server) > events, "label event seen")
    assert serial(server) == before


def test_reordered_annotations_keep_the_soa_serial(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    one, two = unique("area"), unique("area")
    name = nodes.add(f"{one}, {two}", "192.0.2.81, 192.0.2.82, 2001:db8::81")
    converge(lambda: answers(server, two) == {"192.0.2.81", "192.0.2.82"}, "answered")
    before, events = serial(server), modified_events(server)

    control_plane.annotate(
        name, {AREAS_ANNOTATION: f"{two.upper()},{one}", IPS_ANNOTATION: "2001:db8::81,192.0.2.82,192.0.2.81"}
    )

    converge(lambda: modified_events(server) > events, "annotation event seen")
    assert serial(server) == before


def test_ready_flip_moves_the_soa_serial_both_ways(
    server: NodeDns, nodes: Nodes, control_plane: ControlPlane
) -> None:
    area = unique("area")
    name = nodes.add(area, "192.0.2.83")
    converge(lambda: answers(server, area) == {"192.0.2.83"}, "answered")
    start = serial(server)

    down_version = int(control_plane.set_ready(name, False)["metadata"]["resourceVersion"])
    converge(lambda: answers(server, area) == set(), "withdrawn")
    down = serial(server)
    control_plane.set_ready(name, True)
    converge(lambda: answers(server, area) == {"192.0.2.83"}, "back")
    up = serial(server)

    assert start < down < up
    assert down == down_version  # the resourceVersion of the change, so replicas agree


# --- bad annotation values ----------------------------------------------------------------------------


def test_bad_entries_are_skipped_counted_and_logged_without_harming_good_ones(
    server: NodeDns, nodes: Nodes
) -> None:
    area = unique("area")
    ips_before = metric(server, "node_dns_invalid_annotation_entries_total", annotation=IPS_ANNOTATION) or 0
    areas_before = (
        metric(server, "node_dns_invalid_annotation_entries_total", annotation=AREAS_ANNOTATION) or 0
    )
    nodes.add(area, "192.0.2.90")
    messy = nodes.add(
        f"{area}, Bad_Area, ünïcode, {area}, , -x-",
        "192.0.2.91, nope, 300.1.1.1, ::ffff:192.0.2.92, fe80::1%eth0, 192.0.2.91,, 2001:DB8::91",
    )

    converge(lambda: answers(server, area) == {"192.0.2.90", "192.0.2.91", "192.0.2.92"}, "good entries")
    assert answers(server, area, "AAAA") == {"2001:db8::91"}
    converge(
        lambda: (
            metric(server, "node_dns_invalid_annotation_entries_total", annotation=IPS_ANNOTATION)
            == ips_before + 3
        ),
        "IP problems counted",
    )
    assert (
        metric(server, "node_dns_invalid_annotation_entries_total", annotation=AREAS_ANNOTATION)
        == areas_before + 3
    )
    warnings = [line for line in server.logs().splitlines() if "WARNING" in line and messy in line]
    assert len(warnings) == 6
    assert any("Bad_Area" in line for line in warnings)


def test_huge_annotation_value_is_bounded_and_other_nodes_unaffected(server: NodeDns, nodes: Nodes) -> None:
    area = unique("area")
    nodes.add(area, "192.0.2.95")
    junk = ",".join(["not-an-ip"] * 20_000)  # ~200 KB, under the apiserver's 256 KiB limit
    nodes.add(area, "192.0.2.96," + junk)

    converge(lambda: answers(server, area) == {"192.0.2.95", "192.0.2.96"}, "both nodes served")
    assert server.running
