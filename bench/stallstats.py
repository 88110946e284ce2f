"""Stalls between two /metrics scrapes of node-dns: by culprit (the stall watch's counters), and
what a histogram of waits (loop lag, receive waits, GC pauses) gained.

A culprit is what the event loop was running while it was late by more than the threshold
(``node_dns_event_loop_stalls_total{culprit}``); ``(run queue)`` is a stall that was nearly all
waiting for a CPU, i.e. the machine's other load rather than node-dns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.report import Table

FAMILIES = {
    "stalls": "node_dns_event_loop_stalls_total",
    "seconds": "node_dns_event_loop_stall_seconds_total",
    "waited": "node_dns_event_loop_stall_run_queue_seconds_total",
    "cpu": "node_dns_event_loop_stall_cpu_seconds_total",
}
SHOWN = 6
"""Culprits listed per run, most stall time first."""


@dataclass
class Culprit:
    stalls: float = 0.0
    seconds: float = 0.0
    waited: float = 0.0
    cpu: float = 0.0

    @property
    def own(self) -> float:
        return self.seconds - self.waited


def buckets(text: str, family: str) -> dict[float, float]:
    """A cumulative histogram (GC pauses of every generation summed): upper bound -> count."""
    found = re.findall(rf'^{family}_bucket\{{(?:generation="\d",)?le="([^"]+)"\}} ([\d.e+-]+)$', text, re.M)
    cumulative: dict[float, float] = {}
    for bound, count in found:
        cumulative[float(bound)] = cumulative.get(float(bound), 0.0) + float(count)
    return cumulative


def in_phase(before: str, after: str, family: str, budget: float) -> tuple[float, float]:
    """Between two scrapes: the upper bound of the bucket of the longest observation (0: none),
    and how many observations passed ``budget`` (one of the bounds)."""
    old, new = buckets(before, family), buckets(after, family)
    if not new:
        return float("nan"), float("nan")
    longest, below = 0.0, 0.0
    for bound in sorted(new):
        observed = new[bound] - old.get(bound, 0.0)
        if observed > below:
            longest = bound
        below = observed
    over = (new[float("inf")] - old.get(float("inf"), 0.0)) - (new[budget] - old.get(budget, 0.0))
    return longest, over


def parse(text: str) -> dict[str, Culprit]:
    found: dict[str, Culprit] = {}
    for field, family in FAMILIES.items():
        pattern = rf'^{family}\{{culprit="((?:[^"\\]|\\.)*)"\}} ([\d.e+-]+)$'
        for name, value in re.findall(pattern, text, re.MULTILINE):
            culprit = found.setdefault(name.replace('\\"', '"').replace("\\\\", "\\"), Culprit())
            setattr(culprit, field, float(value))
    return found


def between(before: str, after: str) -> dict[str, Culprit]:
    """What each culprit gained from the first scrape to the second (culprits with stalls only)."""
    old, new = parse(before), parse(after)
    gained = {}
    for name, now in new.items():
        was = old.get(name, Culprit())
        delta = Culprit(
            now.stalls - was.stalls, now.seconds - was.seconds, now.waited - was.waited, now.cpu - was.cpu
        )
        if delta.stalls > 0:
            gained[name] = delta
    return gained


def table(title: str, runs: Sequence[tuple[str, Mapping[str, Culprit]]], threshold_ms: float = 5) -> Table:
    result = Table(
        title,
        [
            "run",
            "culprit",
            "stalls",
            "stall time ms",
            "of it run-queue wait ms",
            "own ms (less the wait)",
            "CPU ms",
        ],
    )
    for label, culprits in runs:
        ranked = sorted(culprits.items(), key=lambda item: -item[1].seconds)
        if not ranked:
            result.rows.append([label, f"no stall over {threshold_ms:g} ms", 0, 0, 0, 0, 0])
        for name, c in ranked[:SHOWN]:
            result.rows.append(
                [label, f"`{name}`", int(c.stalls), c.seconds * 1e3, c.waited * 1e3, c.own * 1e3, c.cpu * 1e3]
            )
        if len(ranked) > SHOWN:
            rest = ranked[SHOWN:]
            result.rows.append(
                [
                    label,
                    f"{len(rest)} more culprits",
                    int(sum(c.stalls for _, c in rest)),
                    sum(c.seconds for _, c in rest) * 1e3,
                    sum(c.waited for _, c in rest) * 1e3,
                    sum(c.own for _, c in rest) * 1e3,
                    sum(c.cpu for _, c in rest) * 1e3,
                ]
            )
        result.raw[label] = {name: c.__dict__ for name, c in culprits.items()}
    result.notes += [
        f"stall: the event loop ran a due timer more than {threshold_ms:g} ms late (heartbeat every 25 ms); "
        "culprit: what a watchdog thread saw the loop run during the stall (origin > own frame > innermost "
        "frame), '(run queue)' when the lag less the loop thread's run-queue wait stays within the threshold",
        "run-queue wait: the loop thread's schedstat read when the heartbeat fell due and when it came; "
        "CPU: the loop thread's CPU clock over the same span",
    ]
    return result
