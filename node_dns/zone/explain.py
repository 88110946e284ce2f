"""Why each node is in or out of each of its areas, as comment lines for /debug/zone.

Pure: the facts, the policy and the latest health in, text out. A node is *in* an area when the
policy serves it there: healthy (Ready, schedulable or cordons allowed, not deleting) and, when
the area is probed, with at least one reachable address (only those are served); an area that
failed open serves every member whatever its state, and says so.
"""

from __future__ import annotations

from collections.abc import Iterator

from node_dns.zone.policy import Policy
from node_dns.zone.snapshot import Snapshot
from node_dns.zone.store import Facts


def explain(facts: Facts, policy: Policy, latest: Snapshot) -> list[str]:
    """One ``;`` line per node and area (nodes sorted by name, areas by name)."""
    return list(lines(facts, policy, latest))


def lines(facts: Facts, policy: Policy, latest: Snapshot) -> Iterator[str]:
    """:func:`explain` a line at a time. The facts may change while it is read (a page written in
    slices): a node gone by the time its turn comes is left out."""
    yield "; why each node is in or out (node area: verdict: reason)"
    reachable = policy.reachable
    for name in sorted(facts.nodes):
        node = facts.nodes.get(name)
        if node is None:
            continue
        state = policy.state(node)
        if not node.areas:
            yield f"; {name} -: out: in no area ({state})"
            continue
        for area in sorted(node.areas):
            health = latest.health.areas.get(area)
            failed_open = health is not None and health.failed_open
            if state != "healthy":
                verdict = "in (area failed open)" if failed_open else "out"
                yield f"; {name} {area}: {verdict}: {state.replace('_', ' ')}"
                continue
            if reachable is None:
                yield f"; {name} {area}: in: healthy"
                continue
            parts = []
            usable = 0
            for ip in node.ips:
                ok = reachable.usable(name, ip, area)
                usable += ok
                parts.append(f"{ip} {'served' if ok else 'not served'} ({reachable.why(name, ip, area)})")
            verdict = "in" if usable or not node.ips else "in (area failed open)" if failed_open else "out"
            yield f"; {name} {area}: {verdict}: healthy; " + ", ".join(parts)
