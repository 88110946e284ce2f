"""More cores: node-dns with ``--workers`` 1 and 2 beside NSD with ``server-count`` 1 and 2, one run.

Every server may use both CPUs (no pinning), and so may the load: two dnsperf processes run
at once, each pinned to one CPU with 16 sockets (source ports) and 50 queries outstanding,
so the kernel's SO_REUSEPORT hash spreads 32 flows over the server's sockets and neither CPU
carries all of the client. With client and server sharing two cores, QPS says what the
machine does as a whole; answers per second of the server's CPU (its whole process tree:
parent, workers, NSD's forked servers) say what the server costs per answer, the figure
that stays comparable while other work runs on the machine. node-dns in-process (``--workers
0``, the default) is measured the same way as the baseline. Runs are interleaved per round.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import common, peers, validity
from bench.report import Table, ratio
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns

CLIENTS = 16
"""Sockets per dnsperf process (dnsperf -c): each is its own source port, its own flow."""
OUTSTANDING = 100
"""Queries in flight per dnsperf process (-q): 200 in all, so the servers read full batches."""
SMALL_NODES, SMALL_AREAS = 10, 2
CPUS = "0,1"


class SpreadNsd(peers.Nsd):
    """NSD with ``server-count`` server processes (each with its own SO_REUSEPORT socket when
    more than one), free to run on both CPUs."""

    def __init__(self, workdir: Path, zone_file: Path, count: int) -> None:
        super().__init__(workdir, zone_file)
        self.count = count
        self.name = f"NSD server-count {count}"

    def argv(self) -> list[str]:
        argv = super().argv()
        conf = self.workdir / "nsd.conf"
        # reuseport: one socket per server process, as node-dns gives each worker its own
        spread = f"server-count: {self.count}\n    reuseport: {'yes' if self.count > 1 else 'no'}"
        conf.write_text(conf.read_text().replace("server-count: 1", spread))
        return argv

    def pinned(self, argv: Sequence[str]) -> list[str]:
        return ["taskset", "-c", CPUS, *argv]


@dataclass
class Split:
    """One run of two dnsperf processes at once against one server."""

    qps: float
    completed: int
    sent: int
    lost: int
    server_cpu_s: float
    client_cpu_s: float
    wall_s: float
    machine_busy: float
    """Share of both CPUs' time that anything (server, clients, other load) used during the run."""
    shares: list[float]
    """Share of the answers each node-dns worker gave (empty for other servers)."""

    @property
    def per_cpu_second(self) -> float:
        return validity.per_cpu_second(self.completed, self.server_cpu_s)


_COMPLETED = re.compile(r"Queries completed:\s+(\d+)")
_SENT = re.compile(r"Queries sent:\s+(\d+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")


def split_dnsperf(port: int, mix: common.Mix, *, seconds: float, pid: int, edns: bool = False) -> Split:
    """Two dnsperf processes, one pinned to each CPU, started together; their sums."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(mix.path), "-l", f"{seconds:g}"]
    argv += ["-c", str(CLIENTS), "-q", str(OUTSTANDING), "-T", "1", "-t", "2", *(["-e"] if edns else [])]
    before = common.tree_cpu_seconds(pid)
    cores_before = common.cpu_times()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        outputs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(2)]
        children = [
            subprocess.Popen(
                common.pinned(argv, cpu), stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True
            )
            for cpu, out in enumerate(outputs)
        ]
        client_cpu = 0.0
        for child in children:
            _, _, usage = os.wait4(child.pid, 0)
            child.returncode = 0
            client_cpu += usage.ru_utime + usage.ru_stime
        wall = time.monotonic() - started
        used = common.tree_cpu_seconds(pid) - before
        cores_after = common.cpu_times()
        texts = []
        for out in outputs:
            out.seek(0)
            texts.append(out.read())
    totals = {"completed": 0, "sent": 0, "lost": 0}
    for text in texts:
        for key, pattern in (("completed", _COMPLETED), ("sent", _SENT), ("lost", _LOST)):
            found = pattern.search(text)
            if found is None:
                raise RuntimeError(f"dnsperf output without {key!r}:\n{text}")
            totals[key] += int(found.group(1))
    busy = [validity.busy_share(cores_before[c], cores_after[c]) for c in cores_before if c in cores_after]
    return Split(
        totals["completed"] / seconds,
        totals["completed"],
        totals["sent"],
        totals["lost"],
        used,
        client_cpu,
        wall,
        sum(busy) / len(busy) if busy else float("nan"),
        [],
    )


def worker_answers(process: NodeDns) -> list[float]:
    """node_dns_worker_responses_total per worker, from /metrics."""
    _, body = process.http_get("/metrics")
    found = re.findall(r'^node_dns_worker_responses_total\{worker="(\d+)"\} (\S+)$', body, re.MULTILINE)
    return [float(value) for _, value in sorted(found, key=lambda item: int(item[0]))]


def node_dns(plane: ControlPlane, workers: int) -> NodeDns:
    """node-dns with ``workers``, free to run on both CPUs."""
    process = common.node_dns(plane, f"--workers={workers}")
    process.argv = ["taskset", "-c", CPUS, *process.argv[3:]]  # common.node_dns pins to one CPU
    return process


@contextlib.contextmanager
def servers(
    plane: ControlPlane, opts: common.Options, areas: Sequence[str]
) -> Iterator[dict[str, tuple[int, int, NodeDns | None]]]:
    """name -> (port, pid, node-dns process or None) for every configuration measured."""
    found: dict[str, tuple[int, int, NodeDns | None]] = {}
    probe = common.query_bytes(f"{areas[0]}.{common.ZONE}", common.TYPE_A)
    with contextlib.ExitStack() as stack:
        for count in (0, 1, 2):
            process = stack.enter_context(node_dns(plane, count))
            common.wait_answering(process.dns_port, probe)
            label = "node-dns in-process" if count == 0 else f"node-dns --workers {count}"
            found[label] = (process.dns_port, process.pid or 0, process if count else None)
        zone_file = peers.write_zone(opts.workdir, plane.list_nodes(), next(iter(found.values()))[0])
        if shutil.which("nsd") is not None:
            for count in (1, 2):
                nsd = SpreadNsd(opts.workdir / f"nsd-{count}", zone_file, count)
                nsd.start()
                stack.callback(nsd.stop)
                found[nsd.name] = (nsd.port, nsd.pid, None)
        peers.settle()
        yield found


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    areas = [common.area_name(i) for i in range(SMALL_AREAS)]
    common.populate(plane, common.node_specs(SMALL_NODES, SMALL_AREAS))
    mix = common.write_mix(opts.workdir / "mix-workers.txt", areas)
    load = [common.load_note()]
    results: dict[str, list[Split]] = {}
    with servers(plane, opts, areas) as found:
        for _ in range(opts.rounds):
            for name, (port, pid, process) in found.items():
                before = worker_answers(process) if process is not None else []
                result = split_dnsperf(port, mix, seconds=opts.seconds, pid=pid)
                if process is not None:
                    time.sleep(1.5)  # workers report their counters every second
                    moved = [
                        after - then for after, then in zip(worker_answers(process), before, strict=False)
                    ]
                    total = sum(moved)
                    result.shares = [m / total for m in moved] if total else []
                results.setdefault(name, []).append(result)
        load.append(common.load_note())
    table = Table(
        f"UDP on both CPUs, two dnsperf at once (one per CPU, -c {CLIENTS} -q {OUTSTANDING} each)",
        [
            "server",
            "QPS",
            "answers per server CPU-s",
            "server CPUs used",
            "dnsperf CPUs used",
            "both CPUs busy",
            "lost",
            "worker split",
        ],
    )
    for name, runs in results.items():
        table.rows.append(
            [
                name,
                common.median([r.qps for r in runs]),
                common.median([r.per_cpu_second for r in runs]),
                f"{common.median([r.server_cpu_s / r.wall_s for r in runs]):.2f}",
                f"{common.median([r.client_cpu_s / r.wall_s for r in runs]):.2f}",
                f"{common.median([r.machine_busy for r in runs]):.0%}",
                f"{100 * sum(r.lost for r in runs) / max(1, sum(r.sent for r in runs)):.2f}%",
                " / ".join(f"{s:.0%}" for s in runs[-1].shares) if runs[-1].shares else "",
            ]
        )
        table.raw[name] = [r.__dict__ | {"per_cpu_second": r.per_cpu_second} for r in runs]

    def qps_of(name: str) -> float:
        return common.median([r.qps for r in results.get(name, [])])

    def per_cpu_of(name: str) -> float:
        return common.median([r.per_cpu_second for r in results.get(name, [])])

    ours0, ours1, ours2 = "node-dns in-process", "node-dns --workers 1", "node-dns --workers 2"
    nsd1, nsd2 = "NSD server-count 1", "NSD server-count 2"
    table.notes += [
        f"QPS 2 vs 1: node-dns {ratio(qps_of(ours2), qps_of(ours1))}, "
        f"NSD {ratio(qps_of(nsd2), qps_of(nsd1))}; "
        f"node-dns --workers 2 vs in-process: {ratio(qps_of(ours2), qps_of(ours0))}",
        f"per CPU-s 2 vs 1: node-dns {ratio(per_cpu_of(ours2), per_cpu_of(ours1))}, "
        f"NSD {ratio(per_cpu_of(nsd2), per_cpu_of(nsd1))}",
        f"per CPU-s node-dns / NSD: 1 process {ratio(per_cpu_of(ours1), per_cpu_of(nsd1))}, "
        f"2 processes {ratio(per_cpu_of(ours2), per_cpu_of(nsd2))}; QPS node-dns / NSD: "
        f"1 {ratio(qps_of(ours1), qps_of(nsd1))}, 2 {ratio(qps_of(ours2), qps_of(nsd2))}",
        "server CPUs used: the server's process tree CPU time over the run's wall time (2.00 = both "
        "cores all the time); the clients share the same two cores, so QPS is the machine's, not "
        "the server's alone",
        "both CPUs busy: share of the two CPUs' time used by anything during the run (/proc/stat): "
        "near 100% the machine, not the server, set the QPS",
        "worker split: each worker's share of the answers in the last round "
        "(node_dns_worker_responses_total)",
        f"medians of {opts.rounds} round(s) of {opts.seconds:g} s, servers interleaved per round",
        f"before: {load[0]}; after: {load[-1]}",
    ]
    return [table]
