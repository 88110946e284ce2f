"""Node objects to NodeFacts, and the kopf registry that feeds them to the zone.

Only ``@kopf.on.event`` handlers are registered: they never write to the cluster, so a token
with get/list/watch on nodes is all this needs (see the read-only notes in the README).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from node_dns import model
from node_dns.sources import events, kopf, parsing

log = logging.getLogger(__name__)

LOGGED_PROBLEMS = 5
"""Bad entries logged one by one per node and change; the rest are summed in one line."""
LIST_SLICE = 100
"""Listed nodes reconciled with the zone between two turns of the event loop (~1 ms of work)."""


class FactSink(Protocol):
    """Where facts go (the zone state). Two methods: one event, or a complete list."""

    def apply(self, name: str, facts: model.NodeFacts | None, version: str | None = None) -> bool: ...

    def replace_all(
        self, nodes: list[tuple[model.NodeFacts, str | None]], list_version: str | None
    ) -> bool: ...

    def replacing(self, list_version: str | None) -> ListParts: ...


class ListParts(Protocol):
    """A complete list handed over in slices (``feed``), then ``finish`` once (``abandon`` if
    the rest of the list cannot be had)."""

    def feed(self, nodes: Iterable[tuple[model.NodeFacts, str | None]]) -> None: ...

    def finish(self) -> bool: ...

    def abandon(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Keys:
    areas: str
    ips: str
    ip_sources: tuple[str, ...] = ("annotation",)
    """Where IPs come from, in order: the first source that yields an address wins."""
    labels: bool = False
    """Copy the Node's labels into its facts: only render hooks read them, and a label change
    that nothing reads should not cost a facts update."""
    discovered: str = "node-dns/discovered-ips"
    """The annotation the node agent writes (the ``discovered`` source)."""


ADDRESS_TYPES = {"external": "ExternalIP", "internal": "InternalIP"}


def status_ips(status: Mapping[str, Any], address_type: str) -> tuple[model.IPAddress, ...]:
    """Usable addresses of one type from ``status.addresses``; anything unparsable is skipped."""
    ips: dict[model.IPAddress, None] = {}
    for entry in status.get("addresses") or ():
        if not isinstance(entry, Mapping) or entry.get("type") != address_type:
            continue
        try:
            ip = model.parse_ip(str(entry.get("address", "")))
        except ValueError:
            continue
        if not (ip.is_unspecified or ip.is_multicast or getattr(ip, "scope_id", None)):
            ips[ip] = None
    return tuple(ips)


def node_ips(
    body: Mapping[str, Any], keys: Keys
) -> tuple[tuple[model.IPAddress, ...], list[parsing.Problem]]:
    """The IPs of the first source in ``keys.ip_sources`` that yields any; problems of those read."""
    notes = (body.get("metadata") or {}).get("annotations") or {}
    status = body.get("status") or {}
    problems: list[parsing.Problem] = []
    for source in keys.ip_sources:
        if source in ("annotation", "discovered"):
            key = keys.ips if source == "annotation" else keys.discovered
            ips, found = parsing.parse_ips(notes.get(key), key)
            problems += found
        else:
            ips = status_ips(status, ADDRESS_TYPES[source])
        if ips:
            return ips, problems
    return (), problems


def _drop_reserved(areas: frozenset[str], key: str) -> tuple[frozenset[str], list[parsing.Problem]]:
    """v4 and v6 are the family prefixes (v4.<area>): no area may take those names."""
    reserved = areas & model.FAMILY_PREFIXES.keys()
    if not reserved:
        return areas, []
    problems = [
        parsing.Problem(key, area, "reserved for the family prefixes (v4., v6.)") for area in reserved
    ]
    return areas - reserved, problems


def is_ready(status: Mapping[str, Any]) -> bool:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def facts_from_node(body: Mapping[str, Any], keys: Keys) -> tuple[model.NodeFacts, list[parsing.Problem]]:
    """Pure translation of one Node body; bad annotation entries come back as problems."""
    meta = body.get("metadata") or {}
    notes = meta.get("annotations") or {}
    areas, area_problems = parsing.parse_areas(notes.get(keys.areas), keys.areas)
    areas, reserved = _drop_reserved(areas, keys.areas)
    area_problems += reserved
    ips, ip_problems = node_ips(body, keys)
    spec = body.get("spec") or {}
    # Every field is already validated above: construct without pydantic re-validating the IPs
    # (~4% of the CPU per node update at 5,000 nodes).
    facts = model.NodeFacts.model_construct(
        name=str(meta.get("name", "")),
        areas=areas,
        ips=ips,
        ready=is_ready(body.get("status") or {}),
        schedulable=not spec.get("unschedulable", False),
        deleting=bool(meta.get("deletionTimestamp")),
        labels=_labels(meta) if keys.labels else (),
    )
    return facts, area_problems + ip_problems


def _labels(meta: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    labels = meta.get("labels") or {}
    return tuple(sorted((str(key), str(value)) for key, value in labels.items())) if labels else ()


@dataclass
class SourceStats:
    """Plain counters read by the metrics sink at scrape time."""

    events: dict[str, int] = field(default_factory=dict)
    invalid_entries: dict[str, int] = field(default_factory=dict)
    last_event: float = 0.0
    last_list: float = 0.0
    last_contact: float = 0.0
    lists: dict[str, int] = field(default_factory=dict)
    reachable: bool = False


class NodeSource:
    """Turns node events and lists into facts for the sink, reporting bad entries once per change."""

    def __init__(self, sink: FactSink, keys: Keys) -> None:
        self._sink = sink
        self._keys = keys
        self._raw: dict[str, tuple[str | None, ...]] = {}
        self.stats = SourceStats()
        self.on_relisted: Callable[[], None] | None = None
        """Called for objects of a (re-)listing, so a full reconcile can follow it."""
        self.on_replayed: Callable[[], object] | None = None
        """Called once, when the watch has delivered (LISTED) as many nodes as are known after the
        first complete list: start-up is over (the application freezes its heap for the GC then)."""
        self.problem_listeners: list[Any] = []
        """Callables (node name, problems) called when a node's bad entries change."""

    def _facts(self, body: Mapping[str, Any]) -> model.NodeFacts:
        facts, problems = facts_from_node(body, self._keys)
        notes = (body.get("metadata") or {}).get("annotations") or {}
        raw = (notes.get(self._keys.areas), notes.get(self._keys.ips), notes.get(self._keys.discovered))
        if self._raw.get(facts.name) != raw:
            self._raw[facts.name] = raw
            for index, problem in enumerate(problems):
                key = problem.annotation
                self.stats.invalid_entries[key] = self.stats.invalid_entries.get(key, 0) + 1
                if index < LOGGED_PROBLEMS:
                    log.warning(
                        "node %s: skipped %s entry %r: %s",
                        facts.name,
                        problem.annotation,
                        problem.entry,
                        problem.reason,
                    )
            if len(problems) > LOGGED_PROBLEMS:
                log.warning(
                    "node %s: skipped %d more invalid annotation entries (counted in metrics)",
                    facts.name,
                    len(problems) - LOGGED_PROBLEMS,
                )
            for listener in self.problem_listeners:
                listener(facts.name, problems)
        return facts

    def on_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        kind = event_type or "LISTED"
        if event_type is None and self.on_relisted is not None:
            # kopf re-lists after a 410 without reporting what vanished: reconcile soon.
            self.on_relisted()
        self.stats.events[kind] = self.stats.events.get(kind, 0) + 1
        now = time.time()
        self.stats.last_event = now
        self.stats.last_contact = now
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        version = meta.get("resourceVersion")
        if event_type == "DELETED":
            self._raw.pop(name, None)
            self._sink.apply(name, None, version)
        else:
            self._sink.apply(name, self._facts(body), version)
        if event_type is None:
            self._check_replayed()

    def _check_replayed(self) -> None:
        listed = self.stats.events.get("LISTED", 0)
        if self.on_replayed is not None and self.stats.last_list and listed >= len(self._raw):
            callback, self.on_replayed = self.on_replayed, None
            callback()

    def on_list(self, items: Sequence[Mapping[str, Any]], list_version: str | None) -> None:
        self._replace([self._listed(item) for item in items], list_version)

    def relisting(self, list_version: str | None) -> Relisting:
        """A complete list applied as its pages arrive (:class:`Relisting`)."""
        return Relisting(self, self._sink.replacing(list_version))

    def _listed(self, item: Mapping[str, Any]) -> tuple[model.NodeFacts, str | None]:
        return self._facts(item), (item.get("metadata") or {}).get("resourceVersion")

    def _replace(self, nodes: list[tuple[model.NodeFacts, str | None]], list_version: str | None) -> None:
        self._forget_unlisted({facts.name for facts, _ in nodes})
        self._sink.replace_all(nodes, list_version)
        self._check_replayed()

    def _forget_unlisted(self, names: set[str]) -> None:
        for gone in self._raw.keys() - names:
            del self._raw[gone]
        now = time.time()
        self.stats.last_list = now
        self.stats.last_contact = now


class Relisting:
    """A node list applied page by page: :meth:`read` each page as it arrives, then
    :meth:`finish` once the list is complete, or :meth:`abandon` if it fails part-way.

    Each page is read into facts and handed to the zone's replacement before the next is asked
    for, so nothing of a page's JSON outlives it, and the facts of a node that did not change are
    dropped at once (the zone keeps the object it holds). Deletions and the one publication come
    at :meth:`finish`. A watch event applied between two pages keeps the resourceVersion rules.
    """

    def __init__(self, source: NodeSource, replacement: ListParts) -> None:
        self._source = source
        self._replacement = replacement
        self._names: set[str] = set()
        self.count = 0
        """Nodes read so far."""

    async def read(self, items: list[dict[str, Any]], *, size: int = LIST_SLICE) -> None:
        """Read and apply one page, ``size`` nodes per turn of the event loop; the page's
        objects are taken out of ``items`` as they are read (it is empty afterwards).

        Reading a kubelet-shaped Node costs ~5 µs and reconciling it with the zone ~7 µs.
        """
        while items:
            part = [self._source._listed(item) for item in items[:size]]
            del items[:size]
            self._names.update(facts.name for facts, _ in part)
            self._replacement.feed(part)
            self.count += len(part)
            del part
            await asyncio.sleep(0)

    async def finish(self) -> None:
        """The list is complete: remove what it lacked and publish (two steps of the loop: each
        compares the names listed with those known, ~1 ms at 5,000 nodes)."""
        self._source._forget_unlisted(self._names)
        await asyncio.sleep(0)
        self._replacement.finish()
        self._source._check_replayed()

    def abandon(self) -> None:
        """The list failed part-way: keep what its pages said (each node as current as a watch
        event would make it), delete nothing, and publish that."""
        self._replacement.abandon()


def register(registry: kopf.OperatorRegistry, source: NodeSource) -> None:
    """An event handler only: kopf then needs nothing but get/list/watch (read-only)."""

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def _node(event: Mapping[str, Any], **_: Any) -> None:
        body = event.get("object") or {}
        source.on_event(event.get("type"), body)
        events.release(body)
