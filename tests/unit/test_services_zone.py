"""Service records in the zone: which nodes' IPs a Service gets, and what moves them."""

from __future__ import annotations

import dns.message
import dns.rcode
import pytest

from node_dns import model
from node_dns.answer import responder
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, new_zone, query, settings, synced_zone

WEB = ("shop", "web")


def exposed(name: str = "web", namespace: str = "shop", on: bool = True) -> model.ServiceFacts:
    return model.ServiceFacts(namespace=namespace, name=name, exposed=on)


def eps(
    name: str = "web-1",
    service: str = "web",
    ready: tuple[str, ...] = (),
    terminating: tuple[str, ...] = (),
    namespace: str = "shop",
) -> model.SliceFacts:
    return model.SliceFacts(
        namespace=namespace,
        name=name,
        service=service,
        ready=frozenset(ready),
        terminating=frozenset(terminating),
    )


def ask(zone: Zone, qname: str = "web.shop.lb.example.net", rdtype: str = "A") -> tuple[int, list[str]]:
    reply = responder.answer(query(qname, rdtype), zone.snapshot, tcp=False, edns_udp_size=1232)
    assert reply is not None
    msg = dns.message.from_wire(reply[0])
    return msg.rcode(), sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


def three_nodes(**overrides: object) -> Zone:
    return synced_zone(
        [
            facts("n1", [], ["192.0.2.1", "2001:db8::1"]),
            facts("n2", [], ["192.0.2.2"]),
            facts("n3", [], ["192.0.2.3"], ready=False),
        ],
        services=True,
        **overrides,
    )


def test_an_opted_in_service_answers_the_ips_of_nodes_with_ready_endpoints() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1"])
    assert ask(zone, rdtype="AAAA") == (dns.rcode.NOERROR, ["2001:db8::1"])


def test_slices_of_one_service_are_united() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps("web-1", ready=("n1",)), "201")
    zone.apply_slice(("shop", "web-2"), eps("web-2", ready=("n2",)), "202")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.2"])


def test_a_service_without_the_annotation_is_not_in_the_zone() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(on=False), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")

    assert ask(zone)[0] == dns.rcode.NXDOMAIN


def test_an_opted_in_service_without_endpoints_is_nodata() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")

    assert ask(zone) == (dns.rcode.NOERROR, [])
    assert ask(zone, "nothere.shop.lb.example.net")[0] == dns.rcode.NXDOMAIN
    assert ask(zone, "shop.lb.example.net") == (dns.rcode.NOERROR, [])  # empty non-terminal


def test_endpoints_on_unhealthy_nodes_do_not_count() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n3",)), "201")

    assert ask(zone) == (dns.rcode.NOERROR, [])


def test_serving_terminating_endpoints_are_the_fallback_when_none_is_ready() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",), terminating=("n2",)), "201")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1"])

    zone.apply_slice(("shop", "web-1"), eps(terminating=("n2",)), "202")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.2"])

    zone.apply_slice(("shop", "web-1"), eps(ready=("n3",), terminating=("n2",)), "203")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.2"]), "a ready endpoint on an unhealthy node is none"


def test_following_an_endpoint_from_node_to_node_changes_the_answer() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")
    serial = zone.snapshot.serial

    zone.apply_slice(("shop", "web-1"), eps(ready=("n2",)), "202")

    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.2"])
    assert zone.snapshot.serial == 202 and serial == 201


def test_node_health_and_ip_changes_reach_the_services_on_that_node() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1", "n3")), "201")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1"])

    zone.apply("n3", facts("n3", [], ["192.0.2.3"]), "202")  # becomes Ready
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1", "192.0.2.3"])

    zone.apply("n1", facts("n1", [], ["192.0.2.11"]), "203")  # new IP
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.11", "192.0.2.3"])

    zone.apply("n1", None, "204")  # deleted
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.3"])

    zone.replace_all([(facts("n3", [], ["192.0.2.3"], ready=False), "205")], "205")  # list: n3 not ready
    assert ask(zone) == (dns.rcode.NOERROR, [])


def test_removing_the_annotation_or_the_service_removes_the_name() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")

    zone.apply_service(WEB, exposed(on=False), "202")
    assert ask(zone)[0] == dns.rcode.NXDOMAIN

    zone.apply_service(WEB, exposed(), "203")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1"])

    zone.apply_service(WEB, None, "204")
    assert ask(zone)[0] == dns.rcode.NXDOMAIN


def test_deleting_the_slice_leaves_nodata() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")

    zone.apply_slice(("shop", "web-1"), None, "202")

    assert ask(zone) == (dns.rcode.NOERROR, [])


def test_a_slice_relabelled_to_another_service_moves_with_it() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_service(("shop", "api"), exposed("api"), "200")
    zone.apply_slice(("shop", "x"), eps("x", service="web", ready=("n1",)), "201")

    zone.apply_slice(("shop", "x"), eps("x", service="api", ready=("n1",)), "202")

    assert ask(zone) == (dns.rcode.NOERROR, [])
    assert ask(zone, "api.shop.lb.example.net") == (dns.rcode.NOERROR, ["192.0.2.1"])


def test_older_events_are_ignored() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n2",)), "210")

    assert not zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "205")
    assert not zone.apply_service(WEB, None, "199")
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.2"])


def test_a_list_removes_what_is_gone_but_not_what_is_newer() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")
    zone.apply_service(("shop", "new"), exposed("new"), "400")  # created after the list below

    zone.replace_services([], "300", [], "300")

    assert ask(zone)[0] == dns.rcode.NXDOMAIN
    assert ask(zone, "new.shop.lb.example.net") == (dns.rcode.NOERROR, [])


def test_a_namespace_list_reconciles_only_that_namespace() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_service(("other", "web"), exposed(namespace="other"), "201")

    zone.replace_services([], "300", [], "300", namespace="other")

    assert ask(zone) == (dns.rcode.NOERROR, [])
    assert ask(zone, "web.other.lb.example.net")[0] == dns.rcode.NXDOMAIN


def test_a_list_does_not_undo_a_newer_delete() -> None:
    zone = three_nodes()
    zone.apply_service(WEB, exposed(), "200")
    zone.apply_service(WEB, None, "310")

    zone.replace_services([(exposed(), "200")], "300", [], "300")

    assert ask(zone)[0] == dns.rcode.NXDOMAIN


def test_service_lists_before_the_node_list_publish_nothing() -> None:
    zone = new_zone(settings(services=True))
    seen: list[object] = []
    zone.subscribe(lambda old, new: seen.append(new))

    zone.replace_services([(exposed(), "5")], "9", [(eps(ready=("n1",)), "6")], "9")
    assert seen == [] and not zone.synced

    zone.replace_all([(facts("n1", [], ["192.0.2.1"]), "3")], "10")
    assert len(seen) == 1
    assert ask(zone) == (dns.rcode.NOERROR, ["192.0.2.1"])


def test_with_services_off_service_facts_change_nothing() -> None:
    zone = synced_zone([facts("n1", [], ["192.0.2.1"])])
    generation = zone.snapshot.generation

    assert not zone.apply_service(WEB, exposed(), "200")
    assert not zone.apply_slice(("shop", "web-1"), eps(ready=("n1",)), "201")
    assert zone.snapshot.generation == generation
    assert ask(zone)[0] == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("name", ["v4", "v6"])
def test_a_service_named_like_a_family_prefix_is_never_served(name: str) -> None:
    zone = three_nodes()
    zone.replace_all([(facts("n1", ["shop"], ["192.0.2.1"]), "150")], "150")
    zone.apply_service(("shop", name), exposed(name), "200")
    zone.apply_slice(("shop", "x"), eps("x", service=name, ready=("n1",)), "201")

    # v4.shop is the IPv4 view of the area "shop", not the Service.
    assert ask(zone, f"{name}.shop.lb.example.net", "A" if name == "v4" else "AAAA")[1] == (
        ["192.0.2.1"] if name == "v4" else []
    )
