"""A node event's decoded object is emptied once its facts are taken, so it is freed at once
rather than by the cyclic collector; the facts the zone got do not change with it."""

from __future__ import annotations

import ipaddress

from node_dns.sources import nodes
from tests.unit.test_parsing import KEYS, Sink, node


def test_the_facts_of_an_event_outlive_its_emptied_object() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)
    body = node("n1", "home", "192.0.2.1", version="5")

    source.on_event("MODIFIED", body)
    nodes.release(body)

    assert body == {}
    ((name, facts, version),) = sink.applied
    assert (name, version) == ("n1", "5")
    assert facts is not None and facts.areas == frozenset({"home"})
    assert facts.ips == (ipaddress.IPv4Address("192.0.2.1"),)


def test_an_object_that_is_not_a_plain_dict_is_left_alone() -> None:
    view = (("metadata", {"name": "n1"}),)

    nodes.release(view)

    assert view == (("metadata", {"name": "n1"}),)
