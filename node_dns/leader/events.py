"""Invalid node annotations as Kubernetes Events, posted by the leader only, once per change.

Every replica follows the nodes' bad annotation entries (:meth:`InvalidAnnotationEvents.update`
is a NodeSource problem listener), so a new leader knows the current state at once. Only the
leader's task (:meth:`InvalidAnnotationEvents.run`) posts.

An Event's name is derived from the node's uid and its set of bad entries. The first leader's
POST creates it; any later leader (or the same one after a restart) gets 409 AlreadyExists for
the same state and counts it as recorded -- so there is one Event per node per change of its bad
entries, however many replicas and leaders there were, and ``events: create`` is the only
right needed. (After the apiserver's event TTL, 1 h by default, a new leader would post again.)

Events about Nodes, which are cluster-scoped, are only accepted in the ``default`` namespace.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from node_dns.kube import Conflict
from node_dns.leader.decide import micro_time

log = logging.getLogger(__name__)

EVENT_NAMESPACE = "default"
REASON = "InvalidAnnotation"
COMPONENT = "node-dns"
RETRY_DELAY = 5.0
MAX_MESSAGE = 1024

Key = tuple[tuple[str, str, str], ...]


class Problem(Protocol):
    """One skipped annotation entry (node_dns.sources.parsing.Problem has these fields)."""

    @property
    def annotation(self) -> str: ...

    @property
    def entry(self) -> str: ...

    @property
    def reason(self) -> str: ...


class EventApi(Protocol):
    async def get_node(self, name: str) -> dict[str, Any] | None: ...

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class EventStats:
    """Counters for metrics: events created, already there (posted by an earlier leader), failed."""

    results: dict[str, int] = field(default_factory=dict)

    def count(self, result: str) -> None:
        self.results[result] = self.results.get(result, 0) + 1


def key_of(problems: Iterable[Problem]) -> Key:
    return tuple(sorted({(p.annotation, p.entry, p.reason) for p in problems}))


def event_name(node: str, uid: str, key: Key) -> str:
    """Deterministic: the same node (uid) with the same bad entries always gives the same name."""
    digest = hashlib.sha256(repr((uid, key)).encode()).hexdigest()[:16]
    return f"{node[:200].rstrip('.-')}.{digest}"


def message_of(key: Key) -> str:
    parts = [f"{annotation} entry {entry!r}: {reason}" for annotation, entry, reason in key]
    return "skipped invalid annotation entries: " + "; ".join(parts)


def node_event(
    *, name: str, node: str, uid: str, reason: str, message: str, warning: bool, instance: str, wall: float
) -> dict[str, Any]:
    """A core/v1 Event about a Node (``kubectl describe node`` shows it): the one body every
    leader-posted Event uses, so their names, sources and timestamps follow one rule."""
    seconds = micro_time(wall).split(".")[0] + "Z"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": EVENT_NAMESPACE},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid},
        "reason": reason,
        "message": message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "...",
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": seconds,
        "lastTimestamp": seconds,
        "count": 1,
    }


def event_body(node: str, uid: str, key: Key, instance: str, wall: float) -> dict[str, Any]:
    """A Warning Event naming the node's invalid annotation entries."""
    return node_event(
        name=event_name(node, uid, key),
        node=node,
        uid=uid,
        reason=REASON,
        message=message_of(key),
        warning=True,
        instance=instance,
        wall=wall,
    )


class InvalidAnnotationEvents:
    """Follows bad entries on every replica; posts them as Events while leading."""

    def __init__(self, api: EventApi, instance: str, *, retry_delay: float = RETRY_DELAY) -> None:
        self._api = api
        self._instance = instance
        self._retry_delay = retry_delay
        self._wanted: dict[str, Key] = {}
        """Node -> its current bad entries (only nodes that have some)."""
        self._recorded: dict[str, Key] = {}
        """Node -> the bad entries an Event is known to exist for."""
        self._changed = asyncio.Event()
        self.stats = EventStats()

    def update(self, node: str, problems: Iterable[Problem]) -> None:
        """Problem listener: called (on every replica) when a node's bad entries change."""
        key = key_of(problems)
        if key:
            self._wanted[node] = key
        else:
            self._wanted.pop(node, None)
            self._recorded.pop(node, None)
        self._changed.set()

    def pending(self) -> dict[str, Key]:
        return {node: key for node, key in self._wanted.items() if self._recorded.get(node) != key}

    async def run(self, stop: asyncio.Event) -> None:
        """The leader task: post what is pending, then wait for changes; retry failures later."""
        while not stop.is_set():
            self._changed.clear()
            failed = False
            for node, key in self.pending().items():
                if stop.is_set():
                    return
                try:
                    await self._post(node, key)
                except Exception as error:  # the apiserver may be away: keep it, try again later
                    failed = True
                    self.stats.count("error")
                    log.warning("could not record an event for node %s: %s", node, error)
            try:
                async with asyncio.timeout(self._retry_delay if failed else None):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def _post(self, node: str, key: Key) -> None:
        body = await self._api.get_node(node)
        if self._wanted.get(node) != key:
            return  # changed while we asked; the next round has the new state
        if body is None:
            self._wanted.pop(node, None)  # deleted; nothing to report on
            return
        uid = str((body.get("metadata") or {}).get("uid") or "")
        event = event_body(node, uid, key, self._instance, time.time())
        try:
            await self._api.create_event(EVENT_NAMESPACE, event)
        except Conflict:
            self.stats.count("exists")
            log.debug("event %s already recorded", event["metadata"]["name"])
        else:
            self.stats.count("created")
            log.info("recorded event %s for node %s", event["metadata"]["name"], node)
        if self._wanted.get(node) == key:
            self._recorded[node] = key
