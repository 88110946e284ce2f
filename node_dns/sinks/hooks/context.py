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

:class:`State` is the render process's copy of the served state, kept current by
:class:`~node_dns.sinks.hooks.view.Update` messages. It keeps each part of the context built
and rebuilds only what an update touched: at 5,000 nodes a flip rebuilds one node's entry and
the sorted list of entries, not 5,000 entries. The parts are shared between renders, which is
safe because templates run in the immutable sandbox (they cannot change a list or a dict).
"""

from __future__ import annotations

from typing import Any

from node_dns.sinks.hooks.view import NodeRecord, Served, ServiceKey, Update


def _addresses(value: Served) -> dict[str, Any]:
    return {
        "ips": [*value.ipv4, *value.ipv6],
        "ipv4": list(value.ipv4),
        "ipv6": list(value.ipv6),
        "failed_open": value.failed_open,
    }


def node_entry(record: NodeRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "areas": list(record.areas),
        "ips": [*record.ipv4, *record.ipv6],
        "ipv4": list(record.ipv4),
        "ipv6": list(record.ipv6),
        "ready": record.ready,
        "cordoned": record.cordoned,
        "healthy": record.healthy,
        "labels": dict(record.labels),
    }


class State:
    """The served state as hooks see it, updated in place; :meth:`context` for each render."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.zone = ""
        self.serial = 0
        self.timestamp = 0.0
        self.healthy_nodes = 0
        """Nodes healthy by the zone's rule (for ``min_nodes``)."""
        self._nodes: dict[str, tuple[NodeRecord, dict[str, Any]]] = {}
        self._areas: dict[str, Served] = {}
        self._services: dict[ServiceKey, Served] | None = None
        self._static: dict[str, list[str]] = {}
        self._node_list: list[dict[str, Any]] | None = None
        self._area_map: dict[str, Any] | None = None
        self._service_map: dict[str, Any] | None = None

    def apply(self, update: Update) -> None:
        if update.full:
            self._reset()
            self._services = {} if update.services is not None else None
            self._static = {area: list(ips) for area, ips in sorted(update.static)}
        self.zone, self.serial, self.timestamp = update.zone, update.serial, update.timestamp
        for record in update.nodes:
            known = self._nodes.get(record.name)
            if known is not None:
                if known[0] == record:
                    continue
                self.healthy_nodes -= known[0].healthy
            self._nodes[record.name] = (record, node_entry(record))
            self.healthy_nodes += record.healthy
            self._node_list = None
        for name in update.gone:
            gone = self._nodes.pop(name, None)
            if gone is not None:
                self.healthy_nodes -= gone[0].healthy
                self._node_list = None
        for area, served in update.areas:
            if served is None:
                self._areas.pop(area, None)
            else:
                self._areas[area] = served
            self._area_map = None
        if self._services is not None:
            for key, value in update.services or ():
                if value is None:
                    self._services.pop(key, None)
                else:
                    self._services[key] = value
                self._service_map = None

    def context(self) -> dict[str, Any]:
        """The context of one render, as plain data (parts reused while unchanged)."""
        if self._node_list is None:
            self._node_list = [self._nodes[name][1] for name in sorted(self._nodes)]
        if self._area_map is None:
            self._area_map = {name: _addresses(self._areas[name]) for name in sorted(self._areas)}
        context: dict[str, Any] = {
            "zone": self.zone,
            "serial": self.serial,
            "timestamp": int(self.timestamp),
            "areas": self._area_map,
            "nodes": self._node_list,
            "static": self._static,
        }
        if self._services is not None:
            if self._service_map is None:
                self._service_map = {
                    f"{namespace}/{name}": {"namespace": namespace, "name": name, **_addresses(value)}
                    for (namespace, name), value in sorted(self._services.items())
                }
            context["services"] = self._service_map
        return context


def build(update: Update) -> dict[str, Any]:
    """The context of one full update (tests, benchmarks)."""
    state = State()
    state.apply(update)
    return state.context()
