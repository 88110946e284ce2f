"""The template context: a documented, stable, plain-data view of what node-dns serves.

Templates see only dicts, lists, strings, numbers and booleans, so the names below are the
whole interface (README, "Render hooks"). Areas and Services are read from the served snapshot,
so fail-open and static records show exactly as DNS answers them; ``nodes`` come from the node
facts and the health policy of the zone.

| name        | what                                                                        |
|-------------|-----------------------------------------------------------------------------|
| zone        | the zone name, no trailing dot                                              |
| serial      | the SOA serial served                                                       |
| timestamp   | Unix time (whole seconds) of the change this render shows                  |
| areas       | area -> {ips, ipv4, ipv6, failed_open}: addresses as served, sorted          |
| nodes       | list, by name, of {name, areas, ips, ipv4, ipv6, ready, cordoned, healthy,   |
|             | labels}                                                                     |
| services    | "namespace/name" -> {namespace, name, ips, ipv4, ipv6, failed_open}          |
|             | (only defined when the Services source is on)                               |
| static      | area -> list of the static addresses configured for it                      |
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from node_dns import model
from node_dns.zone import snapshot as snapshot_mod


@dataclass(frozen=True, slots=True)
class Served:
    """The addresses DNS answers for one name, in answer order (numeric, IPv4 then IPv6)."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    failed_open: bool = False


@dataclass(frozen=True)
class View:
    """Everything one render reads; taken on the event loop, turned into a context anywhere."""

    zone: str
    serial: int
    timestamp: float
    areas: Mapping[str, Served]
    nodes: Sequence[model.NodeFacts]
    healthy: Callable[[model.NodeFacts], bool]
    static: Mapping[str, Sequence[model.IPAddress]] = field(default_factory=dict)
    services: Mapping[tuple[str, str], Served] | None = None

    @functools.cached_property
    def healthy_nodes(self) -> int:
        """Nodes healthy by the zone's rule (counted once per view, for ``min_nodes``)."""
        return sum(1 for facts in self.nodes if self.healthy(facts))


def served(node: snapshot_mod.Node | None, failed_open: bool = False) -> Served:
    """The A and AAAA texts of one snapshot name (already sorted the way they are answered)."""
    if node is None:
        return Served(failed_open=failed_open)
    a = node.rrsets.get(snapshot_mod.TYPE_A)
    aaaa = node.rrsets.get(snapshot_mod.TYPE_AAAA)
    return Served(a.texts if a else (), aaaa.texts if aaaa else (), failed_open)


def _addresses(value: Served) -> dict[str, Any]:
    return {
        "ips": [*value.ipv4, *value.ipv6],
        "ipv4": list(value.ipv4),
        "ipv6": list(value.ipv6),
        "failed_open": value.failed_open,
    }


def _sorted_texts(ips: Iterable[model.IPAddress]) -> tuple[list[str], list[str]]:
    v4 = sorted({ip for ip in ips if ip.version == 4}, key=int)
    v6 = sorted({ip for ip in ips if ip.version == 6}, key=int)
    return [str(ip) for ip in v4], [str(ip) for ip in v6]


class NodeEntries:
    """Per-node context entries, kept while a node's facts and health stay the same.

    NodeFacts are immutable and replaced on change, so identity tells whether an entry can be
    reused: at 5,000 nodes a render then rebuilds only the entries of nodes that changed.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[model.NodeFacts, bool, dict[str, Any]]] = {}

    def entries(
        self, nodes: Sequence[model.NodeFacts], healthy: Callable[[model.NodeFacts], bool]
    ) -> list[dict[str, Any]]:
        return _run(self.stepping(nodes, healthy))

    def stepping(
        self, nodes: Sequence[model.NodeFacts], healthy: Callable[[model.NodeFacts], bool]
    ) -> Generator[None, None, list[dict[str, Any]]]:
        """:meth:`entries`, pausing (``yield``) every :data:`STEP` nodes so a caller can let
        other work run between the steps."""
        fresh: dict[str, tuple[model.NodeFacts, bool, dict[str, Any]]] = {}
        result = []
        for count, facts in enumerate(sorted(nodes, key=lambda f: f.name), 1):
            if count % STEP == 0:
                yield
            ok = healthy(facts)
            known = self._cache.get(facts.name)
            if known is not None and known[0] is facts and known[1] == ok:
                entry = known[2]
            else:
                entry = node_entry(facts, ok)
            fresh[facts.name] = (facts, ok, entry)
            result.append(entry)
        self._cache = fresh
        return result


STEP = 256
"""Nodes handled between two pauses of a stepping build."""

T = TypeVar("T")


def _run(steps: Generator[None, None, T]) -> T:
    """Drive a stepping build to its end without pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


def _joined(ips: Iterable[model.IPAddress]) -> list[str]:
    ipv4, ipv6 = _sorted_texts(ips)
    return ipv4 + ipv6


def node_entry(facts: model.NodeFacts, healthy: bool) -> dict[str, Any]:
    ipv4, ipv6 = _sorted_texts(facts.ips)
    return {
        "name": facts.name,
        "areas": sorted(facts.areas),
        "ips": ipv4 + ipv6,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "ready": facts.ready,
        "cordoned": not facts.schedulable,
        "healthy": healthy,
        "labels": dict(facts.labels),
    }


def build(view: View, entries: NodeEntries | None = None) -> dict[str, Any]:
    """The context of one render, as plain data."""
    return _run(stepping(view, entries))


def stepping(view: View, entries: NodeEntries | None = None) -> Generator[None, None, dict[str, Any]]:
    """:func:`build` in steps (see :meth:`NodeEntries.stepping`)."""
    nodes = yield from (entries or NodeEntries()).stepping(view.nodes, view.healthy)
    context: dict[str, Any] = {
        "zone": view.zone,
        "serial": view.serial,
        "timestamp": int(view.timestamp),
        "areas": {name: _addresses(view.areas[name]) for name in sorted(view.areas)},
        "nodes": nodes,
        "static": {area: _joined(ips) for area, ips in sorted(view.static.items())},
    }
    if view.services is not None:
        context["services"] = {
            f"{namespace}/{name}": {"namespace": namespace, "name": name, **_addresses(value)}
            for (namespace, name), value in sorted(view.services.items())
        }
    return context
