"""Reachability probes: failover time, prober CPU, and DNS throughput while probing.

Failover: 4 nodes in an area with loopback addresses and real TCP listeners; node-dns probes
them (``tcp``, interval 1 s, fall 2, rise 2, timeout 0.5 s). One listener at a time is stopped
and the bench asks node-dns every 10 ms until the answer excludes that address (then starts it
again and waits for it to return): the time from "service stops" to "answer excludes it". Beside
it the Ready-only path on another area: the bench flips the node's Ready condition through the
apiserver and times the same thing. In a real cluster that path first waits for the node
controller to notice a dead kubelet: ``node-monitor-grace-period``, 50 s by default, which the
bench does not wait for (it flips Ready by hand).

Prober CPU: the prober alone (uvloop, as node-dns runs it) in its own process on the server CPU,
probing N loopback addresses every 2 s over TCP; a listener process on the client CPU accepts.
Reported: CPU-seconds per second of probing (1.0 = one core) and per probe.

Throughput: node-dns serving 1,000 nodes (loopback addresses, 10 areas), measured with dnsperf
without probes and with every address probed every 2 s, interleaved; answers per second and
per server CPU-second side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from bench import common
from bench.probe_load import addresses
from bench.report import Table, verdict
from tests.harness import probe_targets
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import NodeSpec
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns
from tests.harness.ports import free_port
from tests.integration.livedns import answers

FAILOVER_TARGET_P99 = 3.0
FO_AREA, READY_AREA = "probed", "readyonly"
FO_HOSTS = [f"127.0.9.{n}" for n in range(1, 5)]
READY_HOSTS = [f"127.0.9.{n}" for n in range(11, 15)]
QPS_NODES, QPS_AREAS = 1000, 10
QPS_BASE = "127.3.0.1"
QPS_TARGET_RATIO = 0.95
SETTLE = 3.0
"""Seconds between a node-dns being ready (and, when probing, its first probe round over) and
its throughput run."""
WITHOUT = "without probes"
PROBING = "probing 1,000 addresses / 2 s"
PROBING_SWEPT = "probing, targets accept in passes"
SWEEP = 0.5
"""The second set of targets accepts every 0.5 s instead of on each connection (see
``bench.probe_load.listen``): same probes, same handshakes, no wake-up of the target process
on the load generator's CPU per probe."""
FIXED_QPS = 20_000
"""The fixed rate at which node-dns' CPU is compared with and without probing (well below its
limit, so the comparison is in CPU-seconds and not in what share of the CPU it was given)."""


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    return [failover(plane, opts), prober_cpu(opts), *throughput(plane, opts)]


def _poll_until(check: object, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.01)  # the measured wait: we poll answers every 10 ms
    raise TimeoutError("answer did not change in time")


def failover(plane: ControlPlane, opts: common.Options) -> Table:
    kills = 10 if opts.quick else 50
    specs = [
        NodeSpec(f"fo-{n}", annotations={AREAS_ANNOTATION: FO_AREA, IPS_ANNOTATION: ip}, ready=True)
        for n, ip in enumerate(FO_HOSTS)
    ] + [
        NodeSpec(f"ro-{n}", annotations={AREAS_ANNOTATION: READY_AREA, IPS_ANNOTATION: ip}, ready=True)
        for n, ip in enumerate(READY_HOSTS)
    ]
    common.populate(plane, specs)
    port = free_port(FO_HOSTS[0])
    listeners = [probe_targets.ThreadedTarget(ip, port).start() for ip in FO_HOSTS]
    workdir = Path(tempfile.mkdtemp(prefix="probes-", dir=opts.workdir))
    probe_file = workdir / "probes.yaml"
    probe_file.write_text(yaml.safe_dump({"areas": {FO_AREA: f"tcp:{port}"}}))
    process = common.node_dns(
        plane,
        f"--probe-file={probe_file}",
        "--probe-interval=1",
        "--probe-timeout=0.5",
        "--probe-fall=2",
        "--probe-rise=2",
        "--no-fail-open",
    )
    probed: list[float] = []
    ready_only: list[float] = []
    try:
        with process:
            _poll_until(lambda: answers(process, FO_AREA) == set(FO_HOSTS))
            for i in range(kills):
                victim = listeners[i % len(listeners)]
                stopped = time.monotonic()
                victim.stop()
                gone = _poll_until(lambda v=victim: victim_gone(process, FO_AREA, v.host))
                probed.append(gone - stopped)
                victim.start()
                _poll_until(lambda: answers(process, FO_AREA) == set(FO_HOSTS))
            for i in range(kills):
                node = f"ro-{i % len(READY_HOSTS)}"
                host = READY_HOSTS[i % len(READY_HOSTS)]
                flipped = time.monotonic()
                plane.set_ready(node, False)
                gone = _poll_until(lambda h=host: victim_gone(process, READY_AREA, h))
                ready_only.append(gone - flipped)
                plane.set_ready(node, True)
                _poll_until(lambda: answers(process, READY_AREA) == set(READY_HOSTS))
    finally:
        for listener in listeners:
            listener.stop()
    p50, p99 = common.percentile(probed, 50), common.percentile(probed, 99)
    table = Table(
        f"Failover: service stops -> answer excludes it ({kills} kills, interval 1 s, fall 2)",
        ["path", "p50 s", "p99 s", "max s", "target"],
        notes=[
            "Probed: a TCP listener is stopped; node-dns probes every address every 1 s and takes it "
            "out after 2 failures in a row. Time measured by the bench from the stop to the first "
            "answer (polled every 10 ms) without the address.",
            "Ready-only: the bench sets Ready=False through the apiserver; node-dns takes the node "
            "out as soon as the watch delivers it. In a cluster, Ready turns False only after the "
            "node controller's node-monitor-grace-period (50 s by default since 1.32) once a node "
            "dies: add that to this column.",
            common.load_note(),
        ],
        raw={
            "probed": probed,
            "ready_only": ready_only,
            "summary": [
                (
                    "probe failover p99 (s)",
                    f"{p99:.2f}",
                    f"<= {FAILOVER_TARGET_P99:g}",
                    p99 <= FAILOVER_TARGET_P99,
                    "-",
                )
            ],
        },
    )
    table.rows.append(
        [
            "probes (tcp, 1 s, fall 2)",
            p50,
            p99,
            max(probed),
            verdict(p99 <= FAILOVER_TARGET_P99, "p99 <= 3 s"),
        ]
    )
    table.rows.append(
        [
            "Ready-only (flipped by hand; + 50 s grace in a cluster)",
            common.percentile(ready_only, 50),
            common.percentile(ready_only, 99),
            max(ready_only),
            "-",
        ]
    )
    return table


def victim_gone(process: NodeDns, area: str, host: str) -> bool:
    seen = answers(process, area)
    return seen is not None and host not in seen


@contextlib.contextmanager
def _listener(base: str, count: int, port: int, sweep: float = 0.0) -> Iterator[None]:
    argv = [
        sys.executable, "-m", "bench.probe_load", "listen", "--base", base, "--count", str(count),
        "--port", str(port), "--sweep", f"{sweep:g}",
    ]  # fmt: skip
    # Niced: the kernel completes the handshakes (a probe only needs that), the accepts can wait,
    # and dnsperf on the same CPU keeps its share.
    process = subprocess.Popen(
        ["nice", "-n", "19", *common.pinned(argv, common.CLIENT_CPU)], stdout=subprocess.PIPE, env=_env()
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("probe listener did not start")
        yield
    finally:
        process.kill()
        process.wait(10)


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def prober_cpu(opts: common.Options) -> Table:
    seconds = 10.0 if opts.quick else 30.0
    table = Table(
        "Prober CPU: one asyncio prober, TCP probe of every address every 2 s",
        [
            "targets",
            "probes/s",
            "CPU s per s (1.0 = one core)",
            "CPU µs per probe",
            "of which kernel µs",
            "failed",
            "skipped",
        ],
        notes=[
            f"Prober alone (uvloop) pinned to CPU {common.SERVER_CPU}; a Python accept loop for every "
            f"address on CPU {common.CLIENT_CPU}; {seconds:g} s measured after the first round. "
            "Failures are probes the listener did not accept within the 1 s timeout.",
            "Kernel: the prober's system time. On loopback the target's half of every TCP handshake "
            "(SYN-ACK, the accept queue, the reset) runs inside the prober's connect and close "
            "calls too; a remote node pays that half itself.",
            common.load_note(),
        ],
    )
    for count in (1000, 5000):
        port = free_port("127.1.0.1")
        with _listener("127.1.0.1", count, port):
            argv = [
                sys.executable, "-m", "bench.probe_load", "probe", "--base", "127.1.0.1",
                "--count", str(count), "--port", str(port), "--seconds", f"{seconds:g}", "--warmup", "5",
            ]  # fmt: skip
            done = subprocess.run(
                common.pinned(argv, common.SERVER_CPU),
                capture_output=True,
                text=True,
                env=_env(),
                timeout=seconds + 60,
            )
            result = json.loads(done.stdout)
        rate = result["probes"] / result["wall_seconds"]
        share = result["cpu_seconds"] / result["wall_seconds"]
        table.rows.append(
            [
                count,
                rate,
                share,
                1e6 * result["cpu_seconds"] / max(result["probes"], 1),
                1e6 * result["system_seconds"] / max(result["probes"], 1),
                result["failures"],
                result["skipped"],
            ]
        )
        table.raw[str(count)] = result
    return table


def throughput(plane: ControlPlane, opts: common.Options) -> list[Table]:
    ips = addresses(QPS_BASE, QPS_NODES)
    areas = [f"q-{n:02d}" for n in range(QPS_AREAS)]
    specs = [
        NodeSpec(
            f"q-{i:05d}", annotations={AREAS_ANNOTATION: areas[i % QPS_AREAS], IPS_ANNOTATION: ip}, ready=True
        )
        for i, ip in enumerate(ips)
    ]
    common.populate(plane, specs)
    workdir = Path(tempfile.mkdtemp(prefix="probes-qps-", dir=opts.workdir))
    mix = common.write_mix(workdir / "mix.txt", areas)
    port, swept = free_port("127.3.0.1"), free_port("127.3.0.1")
    modes: dict[str, list[str]] = {WITHOUT: []}
    for mode, target_port in ((PROBING, port), (PROBING_SWEPT, swept)):
        probe_file = workdir / f"probes-{target_port}.yaml"
        probe_file.write_text(yaml.safe_dump({"areas": dict.fromkeys(areas, f"tcp:{target_port}")}))
        modes[mode] = [f"--probe-file={probe_file}"]
    results: dict[str, list[common.PerfResult]] = {mode: [] for mode in modes}
    fixed: dict[str, list[common.PerfResult]] = {mode: [] for mode in modes}
    with _listener(QPS_BASE, QPS_NODES, port), _listener(QPS_BASE, QPS_NODES, swept, sweep=SWEEP):
        for round_ in range(opts.rounds):
            for mode in _order(list(modes), round_):
                args = modes[mode]
                process = common.node_dns(plane, *args)
                with process:
                    common.wait_replayed(process, QPS_NODES)
                    if args:
                        _poll_until(
                            lambda p=process: (_metric(p, "node_dns_probe_verdicts_available") or 0) == 1, 60
                        )
                    # Probing at its steady rate (first round over); the same wait without probes,
                    # so the modes differ in nothing but the probes.
                    time.sleep(SETTLE)
                    assert process.pid is not None
                    results[mode].append(
                        common.dnsperf(process.dns_port, mix, seconds=opts.seconds, pid=process.pid)
                    )
                    fixed[mode].append(
                        common.dnsperf(
                            process.dns_port, mix, seconds=opts.seconds, pid=process.pid, max_qps=FIXED_QPS
                        )
                    )
    return [throughput_table(results, opts), fixed_rate_table(fixed, opts)]


def _order(modes: list[str], round_: int) -> list[str]:
    """Every other round the other way round (ABC CBA): no mode always runs first or last."""
    return modes if round_ % 2 == 0 else modes[::-1]


def _paired(
    runs: dict[str, list[common.PerfResult]], mode: str
) -> list[tuple[common.PerfResult, common.PerfResult]]:
    """(without, probing) runs of the same round."""
    return list(zip(runs[WITHOUT], runs[mode], strict=True))


def fixed_rate_table(fixed: dict[str, list[common.PerfResult]], opts: common.Options) -> Table:
    """node-dns' CPU at one fixed query rate with and without probing: the difference, per probe,
    is what a probe costs the process that answers (the probes run on its event loop)."""
    rate = QPS_NODES / 2
    per_probe = {
        mode: [
            1e6 * (p.server_cpu_s / p.wall_s - w.server_cpu_s / w.wall_s) / rate
            for w, p in _paired(fixed, mode)
            if p.wall_s and w.wall_s
        ]
        for mode in fixed
        if mode != WITHOUT
    }
    table = Table(
        f"node-dns CPU at a fixed {FIXED_QPS:,} q/s, with and without probing (1,000 nodes)",
        ["mode", "CPU s per s (median)", "answers lost (total)", "CPU µs per probe (paired median)"],
        notes=[
            f"dnsperf -Q {FIXED_QPS} for {opts.seconds:g} s right after each throughput run, same process; "
            "CPU of node-dns and its children from /proc. Per probe: (probing - without, same round) / "
            f"{rate:,.0f} probes/s. Each round, µs: "
            + "; ".join(f"{mode}: " + ", ".join(f"{u:.0f}" for u in us) for mode, us in per_probe.items()),
            "On loopback the target's half of each TCP handshake is also charged to node-dns (see the "
            "prober CPU table).",
            common.load_note(),
        ],
        raw={mode: [r.__dict__ for r in rs] for mode, rs in fixed.items()} | {"per_probe_us": per_probe},
    )
    for mode, runs in fixed.items():
        us = per_probe.get(mode)
        table.rows.append(
            [
                mode,
                common.median([r.server_cpu_s / r.wall_s for r in runs if r.wall_s]),
                sum(r.lost for r in runs),
                f"{common.median(us):.0f}" if us else "-",
            ]
        )
    return table


def throughput_table(results: dict[str, list[common.PerfResult]], opts: common.Options) -> Table:
    """Medians, paired per-round ratios and the implied CPU per probe (from the runs alone)."""
    qps_pairs: dict[str, list[float]] = {}
    cpu_pairs: dict[str, list[float]] = {}
    probe_us: dict[str, list[float]] = {}
    for mode in results:
        if mode == WITHOUT:
            continue
        paired = _paired(results, mode)
        qps_pairs[mode] = [p.qps / w.qps for w, p in paired if w.qps]
        cpu_pairs[mode] = [p.per_cpu_second / w.per_cpu_second for w, p in paired if w.per_cpu_second]
        # The probing run's CPU beyond what its answers cost at the same round's rate without probes.
        probe_us[mode] = [
            1e6 * (p.server_cpu_s - p.completed / w.per_cpu_second) / (QPS_NODES / 2 * p.wall_s)
            for w, p in paired
            if w.per_cpu_second and p.wall_s
        ]

    def each(pairs: dict[str, list[float]], spec: str) -> str:
        return "; ".join(f"{mode}: " + ", ".join(format(r, spec) for r in rs) for mode, rs in pairs.items())

    table = Table(
        "DNS throughput while probing (UDP, 1,000 nodes)",
        [
            "mode",
            "QPS (median)",
            "answers per server CPU-second (median)",
            "QPS ratio (paired median)",
            "per-CPU-second ratio (paired median)",
        ],
        notes=[
            f"node-dns pinned to CPU {common.SERVER_CPU}, dnsperf on CPU {common.CLIENT_CPU}; "
            f"{opts.rounds} rounds of {opts.seconds:g} s, the order of the modes reversed every other "
            "round (a fresh node-dns per run, the same wait before each); target: within 5% of without.",
            f"Probe targets: a niced Python accept loop per address on CPU {common.CLIENT_CPU}, woken by "
            f"each connection ({PROBING!r}) or accepting every {SWEEP:g} s without being woken "
            f"({PROBING_SWEPT!r}); the kernel completes the handshake either way.",
            "QPS ratio of each round (probing / without, same round): " + each(qps_pairs, ".3f"),
            "Answers per server CPU-second, ratio of each round: "
            + each(cpu_pairs, ".3f")
            + " (the capacity measure: it does not depend on how much of its CPU other work took).",
            "node-dns CPU per probe implied by each round (its CPU beyond what its answers cost at that "
            "round's rate without probes), µs: " + each(probe_us, ".0f"),
            common.load_note(),
        ],
    )
    for mode, runs in results.items():
        probing = mode != WITHOUT
        table.rows.append(
            [
                mode,
                common.median([r.qps for r in runs]),
                common.median([r.per_cpu_second for r in runs]),
                f"{common.median(qps_pairs[mode]):.3f}" if probing else "1.000",
                f"{common.median(cpu_pairs[mode]):.3f}" if probing else "1.000",
            ]
        )
    summary = []
    for mode, qps_ratios in qps_pairs.items():
        qps_ratio = common.median(qps_ratios) if qps_ratios else 0.0
        cpu_ratio = common.median(cpu_pairs[mode]) if cpu_pairs[mode] else 0.0
        summary += [
            (f"QPS {mode} / without", f"{qps_ratio:.3f}", ">= 0.95", qps_ratio >= QPS_TARGET_RATIO, "-"),
            (
                f"answers per CPU-second {mode} / without",
                f"{cpu_ratio:.3f}",
                ">= 0.95",
                cpu_ratio >= QPS_TARGET_RATIO,
                "-",
            ),
        ]
    table.raw = {mode: [r.__dict__ for r in rs] for mode, rs in results.items()} | {
        "probe_us": probe_us,
        "summary": summary,
    }
    return table


def _metric(process: NodeDns, name: str) -> float | None:
    with contextlib.suppress(OSError):
        _, text = process.http_get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None
