"""A watch event's decoded object is emptied once its facts are taken, so it is freed at once
rather than by the cyclic collector; the facts the zone got do not change with it."""

from __future__ import annotations

import ipaddress

from node_dns.sources import events, nodes, services
from tests.unit.test_parsing import KEYS, Sink, node
from tests.unit.test_services_facts import ANNOTATION, endpoint, endpoint_slice, service
from tests.unit.test_services_facts import Sink as ServiceSink


def test_the_facts_of_an_event_outlive_its_emptied_object() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)
    body = node("n1", "home", "192.0.2.1", version="5")

    source.on_event("MODIFIED", body)
    events.release(body)

    assert body == {}
    ((name, facts, version),) = sink.applied
    assert (name, version) == ("n1", "5")
    assert facts is not None and facts.areas == frozenset({"home"})
    assert facts.ips == (ipaddress.IPv4Address("192.0.2.1"),)


def test_an_object_that_is_not_a_plain_dict_is_left_alone() -> None:
    view = (("metadata", {"name": "n1"}),)

    events.release(view)

    assert view == (("metadata", {"name": "n1"}),)


def test_the_facts_of_a_service_event_outlive_its_emptied_object() -> None:
    sink = ServiceSink()
    source = services.ServiceSource(sink, ANNOTATION)
    body = service()

    source.on_service_event("ADDED", body)
    events.release(body)

    assert body == {}
    ((_, key, facts, version),) = sink.calls
    assert (key, version) == (("shop", "web"), "7")
    assert facts == services.service_facts(service(), ANNOTATION)


def test_the_facts_of_an_endpoint_slice_event_outlive_its_emptied_object() -> None:
    sink = ServiceSink()
    source = services.ServiceSource(sink, ANNOTATION)
    body = endpoint_slice(endpoint("n1"), endpoint("n2"))

    source.on_slice_event("ADDED", body)
    events.release(body)

    assert body == {}
    ((_, _, facts, _),) = sink.calls
    assert facts == services.slice_facts(endpoint_slice(endpoint("n1"), endpoint("n2")))
    assert facts.ready == {"n1", "n2"}
