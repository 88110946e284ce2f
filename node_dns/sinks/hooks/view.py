"""What the serving process tells the render process: plain records of the served state.

The render process holds its own copy of what hooks see. After the first complete copy it
gets only what changed (an :class:`Update` with the nodes, areas and Services that moved), so
the serving process's work per publication is proportional to the change, not to the cluster.
Only plain values travel here (strings, numbers, tuples): cheap to pickle, nothing to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from node_dns.sinks.hooks.command import Outcome

ServiceKey = tuple[str, str]
"""(namespace, name) of a Service."""


class NodeRecord(NamedTuple):
    """One node as templates see it; addresses sorted numerically, IPv4 first."""

    name: str
    areas: tuple[str, ...]
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    ready: bool
    cordoned: bool
    healthy: bool
    labels: tuple[tuple[str, str], ...]


class Served(NamedTuple):
    """The addresses DNS answers for one name, in answer order (numeric, IPv4 then IPv6)."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    failed_open: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    """A change to the render process's copy; ``full`` replaces the copy with this one.

    ``areas`` and ``services`` carry None for a name that is gone. ``services`` is None when
    the Services source is off (then templates have no ``services``). ``static`` comes with a
    full update only (it is configuration).
    """

    zone: str
    serial: int
    timestamp: float
    full: bool = False
    nodes: tuple[NodeRecord, ...] = ()
    gone: tuple[str, ...] = ()
    areas: tuple[tuple[str, Served | None], ...] = ()
    services: tuple[tuple[ServiceKey, Served | None], ...] | None = None
    static: tuple[tuple[str, tuple[str, ...]], ...] = ()


class Rendered(NamedTuple):
    """What one render came to (the render process's reply)."""

    result: str
    """written, unchanged, guarded (min_nodes), error (the template failed), write_error."""
    detail: str = ""
    started: int | Outcome | None = None
    """The command started right after the write: its pid, or why it could not start."""
    healthy: int = 0
    """Healthy nodes in the state rendered (for the min_nodes log lines)."""
