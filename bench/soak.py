"""Soak: a fixed UDP rate while nodes flip Ready, node-dns beside NSD in the same run.

The rate is a stated fraction (:data:`RATE_FRACTION`) of what node-dns answers unthrottled on
this machine at the start of the run. NSD serves the same zone at the same rate with nothing
changing: what it loses is what the client and the kernel of this machine lose anyway. node-dns
then runs the same rate once per churn level (:data:`CHURN`, Ready flips per second through the
apiserver), each time a fresh process, and reports the queries dnsperf lost (no reply within 2 s),
the longest event-loop lag (``node_dns_event_loop_lag_max_seconds``), the lag observations above
5 ms, the kernel's drops on the UDP socket and RSS over the run.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import canary, common, heavy_nodes, peers, stallstats
from bench.report import Table
from bench.soak_report import (
    AREAS,
    BIG_AREAS,
    BIG_CHURN,
    BIG_NODES,
    CHURN,
    NODES,
    RATE_FRACTION,
    RSS_CHURN,
    RSS_EVERY,
    SCRAPE_EVERY,
    SECONDS,
    STALL_BUDGET,
    STALL_WATCH,
    Phase,
    canary_table,
    culprit_table,
    table,
)
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns


class Flipper:
    """Flips nodes' Ready condition at a steady rate: each node goes NotReady, then Ready again at
    the next flip, so at most one node is down at a time and no area ever fails open."""

    def __init__(self, plane: ControlPlane, names: Sequence[str], per_second: int) -> None:
        self._plane = plane
        self._names = names
        self._rate = per_second
        self._stop = threading.Event()
        self.done = 0
        self._thread = threading.Thread(target=self._run, name="flipper", daemon=True)

    def __enter__(self) -> Flipper:
        if self._rate:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._rate:
            self._thread.join()

    def _run(self) -> None:
        interval = 1 / self._rate
        next_at = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for i in itertools.count():
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
                name = self._names[(i // 2) % len(self._names)]
                pool.submit(self._flip, name, i % 2 == 1)
                next_at += interval
        self._plane.set_ready(self._names[0], True)

    def _flip(self, name: str, ready: bool) -> None:
        with contextlib.suppress(Exception):  # a failed flip is a flip not counted
            self._plane.set_ready(name, ready)
            self.done += 1


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([\d.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def _run_queue_wait(pid: int) -> float:
    """Seconds the main thread has waited on a run queue (/proc/PID/schedstat, second field)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def _lag_in_phase(
    before: str, after: str, family: str = "node_dns_event_loop_lag_seconds"
) -> tuple[float, float]:
    """Between two scrapes: the upper bound of the longest observation, and those over the budget."""
    return stallstats.in_phase(before, after, family, STALL_BUDGET)


@contextlib.contextmanager
def _sampling(pid: int, into: list[float], every: float = RSS_EVERY) -> Iterator[None]:
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):
                into.append(common.rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _scraping(process: NodeDns, every: float = SCRAPE_EVERY) -> Iterator[None]:
    """Scrape /metrics as Prometheus would, so a scrape's cost on the loop is part of the run."""
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):
                process.http_get("/metrics")

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _node_dns_phase(
    plane: ControlPlane,
    mix: common.Mix,
    names: Sequence[str],
    churn: int,
    rate: int,
    seconds: float,
    label: str = "node-dns",
) -> Phase:
    phase = Phase(label, churn)
    with common.on_client_cpu(plane.pids), common.node_dns(plane, *STALL_WATCH) as process:
        _warm(process, len(names))
        pid = process.pid or 0
        phase.rss_mb.append(common.rss_mb(pid))
        _, before = process.http_get("/metrics")
        waited = _run_queue_wait(pid)
        cpu = common.cpu_seconds(pid)
        started = time.monotonic()
        with (
            _sampling(pid, phase.rss_mb),
            _scraping(process),
            canary.watching(common.SERVER_CPU) as phase.canary,
            Flipper(plane, names, churn) as flipper,
        ):
            result = _dnsperf(process.dns_port, mix, seconds, rate, pid)
        ended = time.monotonic()
        phase.seconds = ended - started
        phase.flips_done = flipper.done
        phase.rss_mb.append(common.rss_mb(pid))
        _, text = process.http_get("/metrics")
        _, listed = process.http_get("/debug/stalls")  # after /metrics: its own cost is not in them
        phase.stalls = [
            stall for stall in canary.parse_stalls(listed, started, ended) if stall.lag > STALL_BUDGET
        ]
        phase.longest_lag, phase.stalls_over_budget = _lag_in_phase(before, text)
        phase.gc_longest, _ = _lag_in_phase(before, text, "node_dns_gc_pause_seconds")
        phase.run_queue_wait = _run_queue_wait(pid) - waited
        phase.cpu_s = common.cpu_seconds(pid) - cpu
        phase.own_longest, phase.own_over_budget = _lag_in_phase(
            before, text, "node_dns_event_loop_own_lag_seconds"
        )
        phase.receive_longest, phase.receive_over_budget = _lag_in_phase(
            before, text, "node_dns_dns_udp_receive_wait_seconds"
        )
        phase.culprits = stallstats.between(before, text)
        phase.longest_since_start = _metric(text, "node_dns_event_loop_lag_max_seconds")
        drops = "node_dns_dns_udp_kernel_drops_total"
        phase.kernel_drops = _metric(text, drops) - _metric(before, drops)
    phase.sent, phase.lost = result.sent, result.lost
    return phase


def _warm(process: NodeDns, nodes: int) -> None:
    common.wait_answering(process.dns_port, common.query_bytes(f"{common.area_name(0)}.{common.ZONE}", 1))
    common.wait_replayed(process, nodes)


def _dnsperf(port: int, mix: common.Mix, seconds: float, rate: int, pid: int) -> common.PerfResult:
    return common.dnsperf(port, mix, seconds=seconds, pid=pid, max_qps=rate)


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    seconds = SECONDS[opts.quick]
    areas = [common.area_name(i) for i in range(AREAS)]
    specs = common.node_specs(NODES, AREAS)
    common.populate(plane, specs)
    names = [spec.name for spec in specs]
    mix = common.write_mix(opts.workdir / "mix-soak.txt", areas)

    with common.node_dns(plane, *STALL_WATCH) as process:
        _warm(process, NODES)
        unthrottled = common.dnsperf(process.dns_port, mix, seconds=5.0, pid=process.pid)
        zone_file = peers.write_zone(opts.workdir, plane.list_nodes(), process.dns_port)
    rate = int(unthrottled.qps * RATE_FRACTION)

    nsd = peers.Nsd(opts.workdir / "nsd-soak", zone_file)
    nsd.start()
    try:
        peers.settle()
        reference = Phase("NSD", 0)
        with _sampling(nsd.pid, reference.rss_mb), canary.watching(common.SERVER_CPU) as reference.canary:
            started = time.monotonic()
            result = common.dnsperf(nsd.port, mix, seconds=seconds, pid=nsd.pid, max_qps=rate)
            reference.seconds = time.monotonic() - started
        reference.sent, reference.lost = result.sent, result.lost
    finally:
        nsd.stop()
    phases = [reference]
    phases += [_node_dns_phase(plane, mix, names, churn, rate, seconds) for churn in CHURN]

    big_areas = [common.area_name(i) for i in range(BIG_AREAS)]
    big = common.node_specs(BIG_NODES, BIG_AREAS)
    heavy_nodes.populate(plane, big)
    big_mix = common.write_mix(opts.workdir / "mix-soak-big.txt", big_areas)
    label = f"node-dns, {BIG_NODES:,} nodes in {BIG_AREAS} areas"
    phases.append(
        _node_dns_phase(plane, big_mix, [spec.name for spec in big], BIG_CHURN, rate, seconds, label)
    )
    return [
        table(phases, rate, unthrottled.qps, seconds),
        culprit_table(phases[1:], seconds),
        canary_table(phases, seconds),
    ]


def run_rss(plane: ControlPlane, opts: common.Options, *, big: bool = False) -> list[Table]:
    """One long node-dns run (10 minutes; 60 s with --quick): RSS over time.

    200 nodes at :data:`RSS_CHURN` flips/s, or with ``big`` the stall target's population
    (:data:`BIG_NODES` kubelet-shaped nodes at :data:`BIG_CHURN` flips/s), where a leak per event
    or per node would show first. The rate is a third of node-dns' unthrottled rate on 200 nodes,
    as in the soak.
    """
    seconds = SECONDS[opts.quick]
    areas = [common.area_name(i) for i in range(AREAS)]
    specs = common.node_specs(NODES, AREAS)
    common.populate(plane, specs)
    mix = common.write_mix(opts.workdir / "mix-soak.txt", areas)
    with common.node_dns(plane, *STALL_WATCH) as process:
        _warm(process, NODES)
        unthrottled = common.dnsperf(process.dns_port, mix, seconds=5.0, pid=process.pid)
    rate = int(unthrottled.qps * RATE_FRACTION)
    if big:
        big_specs = common.node_specs(BIG_NODES, BIG_AREAS)
        heavy_nodes.populate(plane, big_specs)
        big_mix = common.write_mix(
            opts.workdir / "mix-soak-big.txt", [common.area_name(i) for i in range(BIG_AREAS)]
        )
        label = f"node-dns, {BIG_NODES:,} nodes in {BIG_AREAS} areas"
        names = [spec.name for spec in big_specs]
        phase = _node_dns_phase(plane, big_mix, names, BIG_CHURN, rate, seconds, label)
    else:
        phase = _node_dns_phase(plane, mix, [spec.name for spec in specs], RSS_CHURN, rate, seconds)
    rss = table([phase], rate, unthrottled.qps, seconds)
    rss.title = f"Soak, RSS over {seconds / 60:.0f} min: " + rss.title.removeprefix("Soak: ")
    if big:
        rss.title = rss.title.replace(
            f"{NODES} nodes in {AREAS} areas", f"{BIG_NODES:,} kubelet-shaped nodes in {BIG_AREAS} areas"
        )
    every = max(1, round(60 / RSS_EVERY))
    rss.notes.insert(
        0,
        "RSS MB every minute: "
        + ", ".join(f"{mb:.1f}" for mb in phase.rss_mb[::every])
        + f" (last {phase.rss_mb[-1]:.1f})",
    )
    return [rss, culprit_table([phase], seconds), canary_table([phase], seconds)]
