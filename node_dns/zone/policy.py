"""Which nodes a name is served from: health, and the fail-open rule with its log switch.

Written once for every kind of name (areas and Services): the builder hands :meth:`Policy.select`
the candidate nodes of one name and serves what it returns. The policy is a plain value; it
keeps no state. Whether a name is failed open is part of each snapshot's health, so the log
switch (:func:`log_transition`) compares the old and the new health of one name and speaks only
when it flips: one line on entering fail-open, one on leaving.

Reachability probes are such an input: :attr:`Policy.reachable` says, per node, address and
area, whether clients can reach it. It only ever removes: an area serves a healthy node's
addresses that are reachable (a dead IPv6 path drops the AAAA and keeps the A), a node with no
reachable address counts as unhealthy for the fail-open rule, and fail-open serves every
candidate with all its addresses, as it does for health.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from node_dns import model

log = logging.getLogger(__name__)

NODE_STATES = ("healthy", "not_ready", "cordoned", "deleting")


@dataclass(frozen=True, slots=True)
class ScopeHealth:
    """How one name (area or Service) stands: healthy and candidate node counts, fail-open."""

    healthy: int
    members: int
    failed_open: bool = False


@dataclass(frozen=True, slots=True)
class Selection:
    served: tuple[model.NodeFacts, ...]
    health: ScopeHealth


class Reachability(Protocol):
    """Probe verdicts as the policy reads them (node_dns.sources.probes.verdicts implements it)."""

    def usable(self, node: str, ip: model.IPAddress, area: str) -> bool: ...

    def why(self, node: str, ip: model.IPAddress, area: str) -> str:
        """A few words on the verdict, for /debug/zone."""
        ...


@dataclass(frozen=True, slots=True)
class Policy:
    """How the addresses of a name are chosen from its candidate nodes.

    The default is strict: only healthy nodes are served. ``fail_open_min_healthy`` and
    ``fail_open_min_fraction`` protect against a whole name looking unhealthy at once (for
    example a control-plane partition): below the threshold every candidate is served.
    """

    cordoned_healthy: bool = False
    fail_open_min_healthy: int = 0
    fail_open_min_fraction: float = 0.0
    reachable: Reachability | None = None
    """Probe verdicts for areas (not Services); None: addresses are not probed."""

    def state(self, facts: model.NodeFacts) -> str:
        """One of :data:`NODE_STATES`; a node is healthy only in the first."""
        if facts.deleting:
            return "deleting"
        if not facts.ready:
            return "not_ready"
        if not facts.schedulable and not self.cordoned_healthy:
            return "cordoned"
        return "healthy"

    def healthy(self, facts: model.NodeFacts, scope: str = "") -> bool:
        """``scope`` names the area or Service asking, for inputs that differ per name."""
        return facts.ready and not facts.deleting and (facts.schedulable or self.cordoned_healthy)

    def fails_open(self, healthy: int, members: int) -> bool:
        if members == 0:
            return False
        return healthy < self.fail_open_min_healthy or healthy < self.fail_open_min_fraction * members

    def select(self, candidates: Sequence[model.NodeFacts], scope: str = "", area: bool = False) -> Selection:
        """The healthy candidates, or all of them when too few are healthy (fail-open).

        For an area (``area=True``) with probe verdicts, a healthy candidate is served with its
        reachable addresses only (a copy of its facts when some are not), and one with none
        left is not served nor counted healthy.
        """
        if area and self.reachable is not None:
            healthy = self._reachable(candidates, scope)
        else:
            healthy = tuple(f for f in candidates if self.healthy(f, scope))
        if self.fails_open(len(healthy), len(candidates)):
            return Selection(tuple(candidates), ScopeHealth(len(healthy), len(candidates), True))
        return Selection(healthy, ScopeHealth(len(healthy), len(candidates)))

    def _reachable(self, candidates: Sequence[model.NodeFacts], area: str) -> tuple[model.NodeFacts, ...]:
        assert self.reachable is not None
        usable = self.reachable.usable
        served: list[model.NodeFacts] = []
        for facts in candidates:
            if not self.healthy(facts, area):
                continue
            ips = tuple(ip for ip in facts.ips if usable(facts.name, ip, area))
            if len(ips) == len(facts.ips):
                served.append(facts)
            elif ips:
                served.append(facts.model_copy(update={"ips": ips}))
        return tuple(served)


def log_transition(kind: str, name: str, noun: str, old: ScopeHealth | None, new: ScopeHealth | None) -> None:
    """Log a name entering or leaving fail-open; nothing while it stays either way.

    ``kind`` and ``name`` say which name ("area", "home"; "service", "shop/web"), ``noun`` what
    was counted. A name that disappears while failed open is forgotten without a line.
    """
    was = old is not None and old.failed_open
    if new is not None and new.failed_open and not was:
        log.warning(
            "%s %s has %d of %d %s healthy, below the fail-open threshold: serving all %d",
            kind,
            name,
            new.healthy,
            new.members,
            noun,
            new.members,
        )
    elif was and new is not None and not new.failed_open:
        log.info("%s %s is back above the fail-open threshold", kind, name)
