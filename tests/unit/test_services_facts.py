"""Services and EndpointSlices to facts: the opt-in annotation and how endpoint conditions count."""

from __future__ import annotations

from typing import Any

import pytest

from node_dns import model
from node_dns.sources import services

ANNOTATION = "node-dns/expose"


def service(name: str = "web", namespace: str = "shop", value: str | None = "true") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": "7"}
    if value is not None:
        meta["annotations"] = {ANNOTATION: value}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta}


def endpoint(node: str | None, **conditions: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"addresses": ["10.1.0.1"], "conditions": {}}
    if node is not None:
        body["nodeName"] = node
    for key, value in conditions.items():
        if value is not None:
            body["conditions"][key] = value
    return body


def endpoint_slice(*endpoints: dict[str, Any], service: str | None = "web") -> dict[str, Any]:
    labels = {services.SERVICE_NAME_LABEL: service} if service else {}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-x1", "namespace": "shop", "labels": labels, "resourceVersion": "9"},
        "addressType": "IPv4",
        "endpoints": list(endpoints),
    }


@pytest.mark.parametrize(
    ("value", "exposed"),
    [
        ("true", True),
        ("True", True),
        (" TRUE ", True),
        ("false", False),
        ("yes", False),
        ("", False),
        (None, False),
    ],
)
def test_a_service_is_exposed_only_by_the_annotation_value_true(value: str | None, exposed: bool) -> None:
    facts = services.service_facts(service(value=value), ANNOTATION)

    assert facts == model.ServiceFacts(namespace="shop", name="web", exposed=exposed)


def test_another_annotation_key_does_not_expose() -> None:
    assert not services.service_facts(service(), "example.net/other").exposed


@pytest.mark.parametrize(
    ("conditions", "kind"),
    [
        ({"ready": True, "serving": True, "terminating": False}, "ready"),
        ({}, "ready"),  # unset ready means ready (as kube-proxy reads it)
        ({"ready": False, "serving": False, "terminating": False}, None),  # not ready, not terminating
        ({"ready": False, "serving": True, "terminating": True}, "terminating"),
        ({"ready": False, "terminating": True}, "terminating"),  # unset serving means serving
        ({"ready": False, "serving": False, "terminating": True}, None),  # terminating, not serving
        ({"ready": False, "serving": True}, None),  # serving but neither ready nor terminating
    ],
)
def test_endpoint_conditions_decide_ready_or_terminating(
    conditions: dict[str, bool], kind: str | None
) -> None:
    facts = services.slice_facts(endpoint_slice(endpoint("n1", **conditions)))

    assert facts.ready == ({"n1"} if kind == "ready" else set())
    assert facts.terminating == ({"n1"} if kind == "terminating" else set())


def test_a_slice_collects_the_nodes_of_its_endpoints_and_its_service() -> None:
    body = endpoint_slice(
        endpoint("n1", ready=True),
        endpoint("n1", ready=True),
        endpoint("n2", ready=False, serving=True, terminating=True),
        endpoint(None, ready=True),  # no nodeName: cannot be mapped to a node
        endpoint("n3", ready=False),
    )

    facts = services.slice_facts(body)

    assert facts == model.SliceFacts(
        namespace="shop", name="web-x1", service="web", ready=frozenset({"n1"}), terminating=frozenset({"n2"})
    )


def test_an_unlabelled_slice_belongs_to_no_service() -> None:
    assert services.slice_facts(endpoint_slice(endpoint("n1"), service=None)).service == ""


def test_garbage_endpoints_are_skipped() -> None:
    body = endpoint_slice(endpoint("n1"))
    body["endpoints"] += ["junk", {"nodeName": 5}, {"nodeName": "n2", "conditions": None}]

    assert services.slice_facts(body).ready == {"n1", "n2"}


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def apply_service(self, key: Any, facts: Any, version: Any = None) -> bool:
        self.calls.append(("service", key, facts, version))
        return True

    def apply_slice(self, key: Any, facts: Any, version: Any = None) -> bool:
        self.calls.append(("slice", key, facts, version))
        return True

    def replace_services(self, *args: Any) -> bool:
        self.calls.append(("replace", *args))
        return True


def test_a_service_named_like_a_family_prefix_is_not_served_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    invalid: dict[str, int] = {}
    source = services.ServiceSource(sink, ANNOTATION, invalid)

    source.on_service_event("ADDED", service(name="v4"))
    source.on_service_event("MODIFIED", service(name="v4"))

    assert [call[2].exposed for call in sink.calls] == [False, False]
    warnings = [r for r in caplog.records if "reserved for the family prefixes" in r.getMessage()]
    assert len(warnings) == 1
    assert invalid == {ANNOTATION: 1}


def test_events_and_lists_reach_the_sink_with_keys_and_versions() -> None:
    sink = Sink()
    source = services.ServiceSource(sink, ANNOTATION)

    source.on_service_event("ADDED", service())
    source.on_slice_event("ADDED", endpoint_slice(endpoint("n1")))
    source.on_slice_event("DELETED", endpoint_slice(endpoint("n1")))
    source.on_service_event("DELETED", service())
    source.on_list(services.Listing("shop", [service()], "20", [endpoint_slice(endpoint("n1"))], "21"))

    assert [call[:2] for call in sink.calls[:4]] == [
        ("service", ("shop", "web")),
        ("slice", ("shop", "web-x1")),
        ("slice", ("shop", "web-x1")),
        ("service", ("shop", "web")),
    ]
    assert sink.calls[2][2] is None and sink.calls[3][2] is None
    assert [call[3] for call in sink.calls[:4]] == ["7", "9", "9", "7"]
    replace = sink.calls[4]
    assert replace[0] == "replace"
    assert replace[1] == [(model.ServiceFacts(namespace="shop", name="web", exposed=True), "7")]
    assert replace[2] == "20" and replace[4] == "21" and replace[5] == "shop"
    assert replace[3][0][0].ready == {"n1"}


def test_listed_objects_ask_for_a_reconcile_and_watch_events_do_not() -> None:
    source = services.ServiceSource(Sink(), ANNOTATION)
    calls: list[None] = []
    source.on_relisted = lambda: calls.append(None)

    source.on_service_event("ADDED", service())
    source.on_slice_event("MODIFIED", endpoint_slice(endpoint("n1")))
    assert calls == []

    source.on_service_event(None, service())
    source.on_slice_event(None, endpoint_slice(endpoint("n1")))
    assert len(calls) == 2
