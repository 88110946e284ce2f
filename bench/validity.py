"""When a throughput run measured the client instead of the server, and the ratio we headline.

One dnsperf on one core can send and receive only so many datagrams a second. When it is the
limit, every server looks as fast as the client and the ratio between servers drifts towards
1.0x: node-dns' 0.92x of NSD in an earlier docs/benchmarks.md was such a figure. A run is
**client-bound** when the client's core was saturated while the server's core still had idle
time: the server was waiting for queries, so its QPS says nothing about what it can do.

The headline ratio is answers per server CPU-second (user + system time of the whole process
tree, NSD's forked server children included): a server that is not saturated spends no CPU
while it waits, and CPU that other processes take from the core is not counted against it.
QPS is printed beside it.

Everything here is pure; :mod:`bench.common` reads the clocks and ``/proc/stat``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SATURATED = 0.95
"""The client's core counts as saturated at this share busy (all processes on it)."""
SPARE = 0.10
"""The server has CPU to spare when its core was idle at least this share of the run."""
DRIVEN = 0.80
"""A server using less than this share of a core, with the client not saturated either, was
limited by neither: by the rest of the machine (scheduling behind other processes)."""


@dataclass(frozen=True)
class CoreTimes:
    """Cumulative busy and total time of one CPU (``/proc/stat`` jiffies)."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> dict[int, CoreTimes]:
    """Per-CPU times from the text of ``/proc/stat``; idle and iowait count as not busy."""
    cores: dict[int, CoreTimes] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(v) for v in rest.split()]
        total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
        cores[int(name[3:])] = CoreTimes(total - values[3] - values[4], total)
    return cores


def busy_share(before: CoreTimes, after: CoreTimes) -> float:
    """Share of the interval the CPU was busy (0..1); NaN when no time passed."""
    total = after.total - before.total
    return (after.busy - before.busy) / total if total > 0 else float("nan")


def client_bound(client_core_busy: float, server_core_busy: float) -> bool:
    """The run measured the client: its core saturated, the server's core had time to spare."""
    return client_core_busy >= SATURATED and server_core_busy <= 1.0 - SPARE


def why_invalid(client_core_busy: float, server_core_busy: float) -> str | None:
    """One line saying why the run is invalid, or None when it is valid."""
    if not client_bound(client_core_busy, server_core_busy):
        return None
    return (
        f"INVALID (client-bound): client core {client_core_busy:.0%} busy "
        f"while the server core was {1.0 - server_core_busy:.0%} idle"
    )


def undriven(server_share: float, client_core_busy: float) -> bool:
    """Neither server nor client was the limit. Not invalid, but such a server reads smaller
    batches per wake-up and spends more CPU per answer than at its limit: its answers per
    CPU-second are pessimistic, and a ratio against it optimistic."""
    return server_share < DRIVEN and client_core_busy < SATURATED


def why_undriven(server_share: float, client_core_busy: float) -> str | None:
    if not undriven(server_share, client_core_busy):
        return None
    return (
        f"not driven to its limit: server {server_share:.0%} of a core, "
        f"client core {client_core_busy:.0%} busy"
    )


def per_cpu_second(answers: int, server_cpu_s: float) -> float:
    """Answers per second of server CPU; NaN when the CPU was not measured."""
    return answers / server_cpu_s if server_cpu_s > 0 else float("nan")


def pooled(answers: Sequence[int], cpu_seconds: Sequence[float]) -> float:
    """Answers per server CPU-second over several runs: total answers / total CPU. Not a median of
    per-run figures: a short run and a long one weigh by what they measured."""
    cpu = sum(cpu_seconds)
    return per_cpu_second(sum(answers), cpu)


def ratio(ours: float, reference: float) -> float:
    """``ours / reference``; NaN when either is missing."""
    if math.isnan(reference) or math.isnan(ours) or reference <= 0:
        return float("nan")
    return ours / reference


def headline(per_cpu: Mapping[str, float], ours: str, reference: str) -> float:
    """Our answers per CPU-second over the reference server's, from the same run."""
    return ratio(per_cpu.get(ours, float("nan")), per_cpu.get(reference, float("nan")))


def judged(share: float, target: float, *, ours_bound: int, reference_bound: int) -> tuple[str, bool]:
    """The summary cell of a per-CPU-second ratio (ours / reference) and whether it meets ``target``.

    A client-bound run is one where the server was not saturated, and a server below its limit
    reads smaller batches per wake-up and spends more CPU per answer: its answers per CPU-second
    are pessimistic. So client-bound runs of the reference make the ratio optimistic: INVALID,
    never met (the rule the issue set: the client saturated while the reference server had CPU to
    spare). Client-bound runs of ours alone make the ratio pessimistic, a lower bound: at or
    above the target it is met; below it, it is inconclusive (ours might be faster than shown).
    """
    text = f"{share:.2f}x"
    if reference_bound:
        return f"{text} (INVALID: the reference was client-bound in {reference_bound} runs)", False
    if not ours_bound:
        return text, share >= target
    if share >= target:
        return f"{text} (a lower bound: node-dns was client-bound in {ours_bound} runs)", True
    return f"{text} (inconclusive: node-dns was client-bound in {ours_bound} runs)", False
