"""Invalid-annotation Events: one per node per change of its bad entries, whoever leads.

The recorder runs on a virtual clock (tests/unit/virtual_clock.py): "it posted nothing more" is
checked once every task has run as far as it can, and retry delays pass without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node_dns.kube import ApiError, Conflict
from node_dns.leader.events import (
    EVENT_NAMESPACE,
    MAX_MESSAGE,
    InvalidAnnotationEvents,
    event_body,
    event_name,
    key_of,
)
from tests.unit import virtual_clock
from tests.unit.virtual_clock import until, virtual_time


@dataclass(frozen=True)
class Problem:
    annotation: str
    entry: str
    reason: str


BAD_IP = Problem("example.net/node-ips", "not-an-ip", "not an IPv4 or IPv6 address")
BAD_AREA = Problem("example.net/node-areas", "Bad_Area", "not a DNS label")


class FakeEventApi:
    """Nodes by name; Events by name with create-only semantics (409 when the name exists)."""

    def __init__(self, nodes: Mapping[str, str]) -> None:
        self.nodes = dict(nodes)
        self.events: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.fail = False

    async def get_node(self, name: str) -> dict[str, Any] | None:
        if self.fail:
            raise OSError("connection refused")
        uid = self.nodes.get(name)
        return {"metadata": {"name": name, "uid": uid}} if uid else None

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        assert namespace == EVENT_NAMESPACE
        self.posts += 1
        name = body["metadata"]["name"]
        if name in self.events:
            raise Conflict(409, {"reason": "AlreadyExists"}, "create event")
        self.events[name] = dict(body)
        return dict(body)


async def settle(recorder: InvalidAnnotationEvents, api: FakeEventApi) -> None:
    """Run the leader task until nothing is pending and it has nothing left to do, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(recorder.run(stop))
    await until(lambda: not recorder.pending(), 1.0)
    await virtual_clock.settle()
    stop.set()
    task.cancel()


@virtual_time
async def test_one_event_per_change_of_a_nodes_bad_entries() -> None:
    api = FakeEventApi({"n1": "uid-1"})
    recorder = InvalidAnnotationEvents(api, "replica-a")

    recorder.update("n1", [BAD_IP])
    await settle(recorder, api)
    recorder.update("n1", [BAD_IP])  # annotation changed, bad entries did not
    await settle(recorder, api)
    assert len(api.events) == 1

    recorder.update("n1", [BAD_IP, BAD_AREA])
    await settle(recorder, api)
    assert len(api.events) == 2
    assert recorder.stats.results == {"created": 2}


@virtual_time
async def test_a_fixed_node_gets_no_event() -> None:
    api = FakeEventApi({"n1": "uid-1"})
    recorder = InvalidAnnotationEvents(api, "replica-a")
    recorder.update("n1", [BAD_IP])
    recorder.update("n1", [])
    await settle(recorder, api)
    assert api.events == {}


@virtual_time
async def test_a_new_leader_does_not_post_again_what_an_earlier_one_recorded() -> None:
    api = FakeEventApi({"n1": "uid-1", "n2": "uid-2"})
    replicas = [InvalidAnnotationEvents(api, f"replica-{i}") for i in range(3)]
    for replica in replicas:  # every replica follows the nodes
        replica.update("n1", [BAD_IP])
        replica.update("n2", [BAD_AREA])

    for replica in replicas:  # leadership passes from one to the next
        await settle(replica, api)

    assert len(api.events) == 2
    assert replicas[0].stats.results == {"created": 2}
    assert replicas[1].stats.results == replicas[2].stats.results == {"exists": 2}


@virtual_time
async def test_the_event_is_a_warning_about_the_node_in_default() -> None:
    api = FakeEventApi({"n1": "uid-1"})
    recorder = InvalidAnnotationEvents(api, "replica-a")
    recorder.update("n1", [BAD_IP])
    await settle(recorder, api)

    (event,) = api.events.values()
    assert event["metadata"]["namespace"] == "default"
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}
    assert (event["type"], event["reason"]) == ("Warning", "InvalidAnnotation")
    assert "example.net/node-ips entry 'not-an-ip': not an IPv4 or IPv6 address" in event["message"]
    assert event["reportingInstance"] == "replica-a"
    assert event["count"] == 1


@virtual_time
async def test_a_recreated_node_is_a_new_object_and_gets_its_own_event() -> None:
    key = key_of([BAD_IP])
    assert event_name("n1", "uid-1", key) != event_name("n1", "uid-2", key)
    assert event_name("n1", "uid-1", key) == event_name("n1", "uid-1", key_of([BAD_IP, BAD_IP]))


@virtual_time
async def test_deleted_nodes_are_dropped_and_failures_retried() -> None:
    api = FakeEventApi({"n1": "uid-1"})
    recorder = InvalidAnnotationEvents(api, "replica-a", retry_delay=0.02)
    recorder.update("gone", [BAD_IP])
    api.fail = True
    recorder.update("n1", [BAD_IP])
    stop = asyncio.Event()
    task = asyncio.create_task(recorder.run(stop))
    await virtual_clock.settle()
    assert recorder.stats.results.get("error", 0) >= 1
    api.fail = False
    await until(lambda: not recorder.pending(), 1.0)
    task.cancel()
    assert len(api.events) == 1
    assert "gone" not in recorder.pending()


def test_long_names_and_messages_stay_within_api_limits() -> None:
    key = key_of([Problem("a/b", "x" * 300, "bad")] * 1 + [Problem("a/c", "y" * 900, "bad")])
    body = event_body("n" * 253, "uid", key, "i" * 300, 0.0)
    assert len(body["metadata"]["name"]) <= 253
    assert len(body["message"]) <= MAX_MESSAGE
    assert len(body["reportingInstance"]) <= 128
    assert body["firstTimestamp"] == "1970-01-01T00:00:00Z"


def test_api_errors_carry_status_and_reason() -> None:
    error = ApiError(422, {"reason": "Invalid", "message": "nope"}, "create event")
    assert (error.status, error.reason) == (422, "Invalid")
    assert "HTTP 422" in str(error)
