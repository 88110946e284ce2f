"""The soak's shape (population, churn, rate, budget), what one run measured, and its tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import canary as canary_mod
from bench import common, stallstats
from bench.report import Table

CHURN = (0, 5, 50)
"""Ready flips per second."""
RATE_FRACTION = 1 / 3
"""The fixed rate as a fraction of node-dns' unthrottled UDP rate measured in the same run."""
NODES, AREAS = 200, 10
BIG_NODES, BIG_AREAS, BIG_CHURN = 5000, 100, 50
"""The stall target's population: one more node-dns run at the same rate with 50 flips/s."""
STALL_BUDGET = 0.005
STALL_WATCH = (f"--stall-threshold={STALL_BUDGET}", "--debug-endpoints")
"""The stall watch names the culprits of stalls over the budget (off by default in node-dns);
/debug/stalls gives each stall's end time, to line it up with the machine canary."""
SECONDS = {True: 60.0, False: 600.0}
"""Length of each run, by --quick."""
RSS_CHURN = 5
"""Flips per second of the long RSS run (``--only soak-rss``)."""
RSS_EVERY = 5.0
"""Seconds between two RSS samples."""
SCRAPE_EVERY = 15.0
"""Seconds between two /metrics scrapes during a run (Prometheus' usual interval)."""


@dataclass
class Phase:
    server: str
    churn: int
    flips_done: int = 0
    seconds: float = 0.0
    sent: int = 0
    lost: int = 0
    longest_lag: float = float("nan")
    """Upper bound of the histogram bucket of the longest lag during the run."""
    longest_since_start: float = float("nan")
    """node_dns_event_loop_lag_max_seconds at the end: start-up (first list, freeze) included."""
    stalls_over_budget: float = float("nan")
    kernel_drops: float = float("nan")
    gc_longest: float = float("nan")
    """Upper bound of the bucket of the longest garbage collection during the run, seconds."""
    run_queue_wait: float = float("nan")
    """Seconds the server's main thread was runnable but not running (other load on its CPU)."""
    own_longest: float = float("nan")
    """Like ``longest_lag``, less the loop thread's run-queue wait (node_dns_event_loop_own_lag_seconds)."""
    own_over_budget: float = float("nan")
    receive_longest: float = float("nan")
    """Upper bound of the bucket of the longest UDP receive wait during the run (the oldest
    datagram of a read, from its kernel stamp: node_dns_dns_udp_receive_wait_seconds)."""
    receive_over_budget: float = float("nan")
    cpu_s: float = float("nan")
    """CPU seconds of the node-dns process during the run (every thread)."""
    culprits: dict[str, stallstats.Culprit] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)
    canary: canary_mod.Record = field(default_factory=canary_mod.Record)
    """The machine canary on the server's CPU during the run."""
    stalls: list[canary_mod.Stall] = field(default_factory=list)
    """node-dns' stalls over the budget during the run, with their times (/debug/stalls)."""

    @property
    def flips_per_second(self) -> float:
        return self.flips_done / self.seconds if self.seconds else 0.0

    def rss_growth(self) -> float:
        """RSS at the end over RSS after the first sample (the first one is taken warmed up)."""
        return self.rss_mb[-1] / self.rss_mb[0] - 1 if len(self.rss_mb) >= 2 else float("nan")


def culprit_table(phases: Sequence[Phase], seconds: float) -> Table:
    return stallstats.table(
        f"Soak: event-loop stalls by culprit ({seconds:.0f} s runs)",
        [(f"{phase.server}, {phase.churn} flips/s", phase.culprits) for phase in phases],
        STALL_BUDGET * 1e3,
    )


def bucket(seconds: float) -> str:
    return f"<= {seconds * 1e3:g}" if seconds > 0 else "none"


def table(phases: Sequence[Phase], rate: int, unthrottled: float, seconds: float) -> Table:
    reference = phases[0]
    table = Table(
        f"Soak: {rate:,} UDP queries/s for {seconds:.0f} s, {NODES} nodes in {AREAS} areas, Ready flips",
        [
            "server",
            "flips/s asked (done)",
            "sent",
            "lost",
            "lost / NSD's",
            "longest loop lag ms (bucket; since start)",
            f"lags > {STALL_BUDGET * 1e3:.0f} ms",
            f"own lags > {STALL_BUDGET * 1e3:.0f} ms (longest ms, bucket)",
            "longest receive wait ms (bucket)",
            f"receive waits > {STALL_BUDGET * 1e3:.0f} ms",
            "kernel drops",
            "longest GC ms CPU (bucket)",
            "waited for CPU s",
            "CPU s",
            "RSS MB start, end (growth)",
        ],
    )
    for phase in phases:
        share = phase.lost / reference.lost if reference.lost else float("nan")
        rss = ""
        if phase.rss_mb:
            rss = f"{phase.rss_mb[0]:.1f}, {phase.rss_mb[-1]:.1f} ({phase.rss_growth():+.1%})"
        table.rows.append(
            [
                phase.server,
                f"{phase.churn} ({phase.flips_per_second:.1f})" if phase.server != "NSD" else "0",
                phase.sent,
                phase.lost,
                f"{share:.2f}x" if reference.lost else ("0 lost by NSD" if phase is not reference else "-"),
                (
                    f"{bucket(phase.longest_lag)}; {phase.longest_since_start * 1e3:.0f}"
                    if phase.server != "NSD"
                    else "-"
                ),
                phase.stalls_over_budget if phase.server != "NSD" else "-",
                (
                    f"{phase.own_over_budget:.0f} ({bucket(phase.own_longest)})"
                    if phase.server != "NSD"
                    else "-"
                ),
                bucket(phase.receive_longest) if phase.server != "NSD" else "-",
                phase.receive_over_budget if phase.server != "NSD" else "-",
                phase.kernel_drops if phase.server != "NSD" else "-",
                bucket(phase.gc_longest) if phase.server != "NSD" else "-",
                phase.run_queue_wait if phase.server != "NSD" else "-",
                phase.cpu_s if phase.server != "NSD" else "-",
                rss,
            ]
        )
        table.raw[f"{phase.server} {phase.churn}"] = phase.__dict__ | {
            "rss_mb": phase.rss_mb,
            "culprits": {name: c.__dict__ for name, c in phase.culprits.items()},
            "canary": dataclasses.asdict(phase.canary),
            "stalls": [dataclasses.asdict(stall) for stall in phase.stalls],
        }
    table.notes += [
        f"rate: {RATE_FRACTION:.2f} of node-dns' unthrottled {unthrottled:,.0f} queries/s measured at the "
        "start of the run (dnsperf -c 1 -q 100 -Q rate); lost: no reply within dnsperf's 2 s timeout",
        f"the last row serves {BIG_NODES:,} nodes in {BIG_AREAS} areas (the stall target's size) at the "
        "same rate; its lost queries compare with NSD's on the small zone only loosely; those nodes are "
        "shaped like a kubelet's (~10 KB of JSON each: images, labels, capacity, five conditions)",
        "each node-dns row is a fresh process; flips go through the apiserver (strategic-merge patch of "
        "the Ready condition), a node down then up again, so no area fails open",
        f"during node-dns' rows the apiserver, etcd and the bench's own threads (flipper, scrapes) run on "
        f"CPU {common.CLIENT_CPU} with dnsperf, as a control plane on other machines would: node-dns has "
        f"CPU {common.SERVER_CPU} to itself (before 2026-12-03 19:00 UTC they floated over both CPUs)",
        "mix: positive A, positive AAAA, NXDOMAIN, NODATA (TXT), apex SOA in equal parts, random case",
        "loop lag and GC: the highest histogram bucket that gained an observation during the run "
        "(node_dns_event_loop_lag_seconds; node_dns_gc_pause_seconds, CPU time of each collection)",
        "'since start': node_dns_event_loop_lag_max_seconds, start-up included",
        "receive wait: per read of the UDP socket (a recvmmsg batch), how long its oldest query sat in "
        "the socket, from the kernel's receive stamp (node_dns_dns_udp_receive_wait_seconds): the "
        "queries' own wait, where the loop lag is a timer's",
        f"/metrics is scraped every {SCRAPE_EVERY:.0f} s during each run, as Prometheus would",
        "'waited for CPU': run-queue delay of node-dns' main thread during the run "
        "(/proc/PID/schedstat), the share of a stall that other processes on its CPU caused",
        "'own lags': lag less the loop thread's run-queue wait while it was late "
        "(node_dns_event_loop_own_lag_seconds): the stalls node-dns itself caused; 'CPU s': the "
        "node-dns process' CPU time during the run",
        common.load_note(),
    ]
    return table


def canary_table(phases: Sequence[Phase], seconds: float) -> Table:
    """node-dns' stalls over the budget against the machine canary's late wake-ups, same run."""
    budget = STALL_BUDGET
    out = Table(
        f"Soak: loop stalls against the machine canary on node-dns' CPU ({seconds:.0f} s runs)",
        [
            "run",
            "canary wake-ups",
            f"canary late > {budget * 1e3:.0f} ms (longest ms)",
            f"node-dns stalls > {budget * 1e3:.0f} ms (longest ms)",
            f"of them still > {budget * 1e3:.0f} ms, less the machine's part (longest ms left)",
        ],
    )
    for phase in phases:
        late = phase.canary.over(budget)
        row: list[object] = [
            f"{phase.server}, {phase.churn} flips/s",
            phase.canary.wakeups,
            f"{len(late)} ({max(late, default=0) * 1e3:.1f})",
        ]
        if phase.server == "NSD":
            row += ["-", "-"]
        else:
            left = [rest for rest in canary_mod.beyond(phase.stalls, phase.canary) if rest > budget]
            row += [
                f"{len(phase.stalls)} ({max((s.lag for s in phase.stalls), default=0) * 1e3:.1f})",
                f"{len(left)} ({max(left, default=0) * 1e3:.1f})",
            ]
        out.rows.append(row)
    realtime = all(phase.canary.realtime for phase in phases)
    out.notes += [
        f"canary: a process pinned to node-dns' CPU (CPU {common.SERVER_CPU}) that sleeps "
        f"{canary_mod.PERIOD * 1e3:g} ms at a time"
        + (
            ", real-time (SCHED_FIFO), so node-dns never delays it"
            if realtime
            else " (NOT real-time: SCHED_FIFO was refused, so node-dns' own work can delay it too)"
        )
        + "; its late wake-ups are what the machine (interrupts, kernel threads, the VM's host) "
        "does to any process on that CPU",
        "the stalls are node-dns' event-loop lags over the budget, with their times from /debug/stalls; "
        "'less the machine's part': each stall less the part of it during which the canary was late "
        "too (both on CLOCK_MONOTONIC), or less the loop thread's run-queue wait in it (ordinary work "
        "on the CPU, which a real-time canary does not wait for), whichever is longer: what is left "
        "is node-dns' own, or more",
    ]
    return out
