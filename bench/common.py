"""What every part needs: CPU pinning, node populations, node-dns under test, dnsperf, small DNS helpers."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import validity
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import NodeSpec
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns

SERVER_CPU = 0
"""The server under test (node-dns, NSD or Knot) runs here."""
CLIENT_CPU = 1
"""dnsperf and the bench's own query loops run here."""
ZONE = "lb.example.net"
NAMESERVERS = f"ns1.{ZONE}=127.0.0.1"
SOA_EMAIL = "hostmaster@example.net"

TYPE_A, TYPE_SOA, TYPE_TXT, TYPE_AAAA = 1, 6, 16, 28
RCODE_SERVFAIL = 2


@dataclass
class Options:
    quick: bool = False
    seconds: float = 10.0
    """Length of one dnsperf run."""
    rounds: int = 3
    """dnsperf runs per server and mode, interleaved across servers; medians are reported."""
    flips: int = 200
    updates: int = 200
    cold_starts: int = 3
    scale_nodes: int = 5000
    scale_areas: int = 100
    big_area: int = 500
    workdir: Path = field(default_factory=lambda: Path("/tmp"))

    @classmethod
    def make(cls, quick: bool, workdir: Path) -> Options:
        if quick:
            return cls(True, 3.0, 1, 50, 50, 1, 5000, 100, 500, workdir)
        return cls(workdir=workdir)


# --- CPU pinning -----------------------------------------------------------------------------


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:  # exited meanwhile
        return []


@contextlib.contextmanager
def on_client_cpu(pids: Iterable[int]) -> Iterator[None]:
    """Every thread of ``pids`` and of this bench process on the client's CPU while the block runs.

    In a cluster the apiserver and etcd run on other machines than node-dns; here they would share
    node-dns' CPU, and every Ready flip's patch and watch event would then be charged to node-dns
    as time its loop waited for that CPU. Threads started inside the block inherit the pinning;
    afterwards every thread gets its process's CPUs back (node-dns and NSD pin themselves with
    ``taskset`` and are not affected either way).
    """
    before: dict[int, set[int]] = {}
    for pid in [*pids, os.getpid()]:
        with contextlib.suppress(OSError):  # a process that has exited is left out
            before[pid] = os.sched_getaffinity(pid)
    for pid in before:
        for tid in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, {CLIENT_CPU})
    try:
        yield
    finally:
        for pid, cpus in before.items():
            for tid in _threads(pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, cpus)


def pinned(argv: Sequence[str], cpu: int) -> list[str]:
    """``argv`` run on one CPU only (taskset execs, so the pid is the program's own)."""
    return ["taskset", "-c", str(cpu), *argv]


@contextlib.contextmanager
def on_cpu(cpu: int) -> Iterator[None]:
    """Run this thread (and what it forks) on ``cpu`` for a while."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# --- node populations ------------------------------------------------------------------------


def area_name(index: int) -> str:
    return f"area-{index:03d}"


def ipv4(index: int) -> str:
    n = 0x0A000000 + index + 1  # 10.0.0.1, 10.0.0.2, ...
    return ".".join(str(n >> shift & 0xFF) for shift in (24, 16, 8, 0))


def ipv6(index: int) -> str:
    return f"fd00::{index + 1:x}"


def node_specs(count: int, areas: int, *, big: int = 0) -> list[NodeSpec]:
    """``count`` Ready nodes spread round-robin over ``areas`` areas, each with one IPv4 and one
    IPv6 address; the first ``big`` nodes are also in the area ``big``."""
    specs = []
    for i in range(count):
        member = area_name(i % areas) + (",big" if i < big else "")
        specs.append(
            NodeSpec(
                f"node-{i:05d}",
                annotations={AREAS_ANNOTATION: member, IPS_ANNOTATION: f"{ipv4(i)},{ipv6(i)}"},
                ready=True,
            )
        )
    return specs


def populate(plane: ControlPlane, specs: Sequence[NodeSpec]) -> float:
    """Replace every node in the cluster by ``specs``; returns the seconds creation took."""
    plane.delete_all_nodes()
    deadline = time.monotonic() + 60
    while plane.list_nodes() and time.monotonic() < deadline:
        time.sleep(0.2)
    started = time.monotonic()
    plane.create_nodes(specs, concurrency=8)
    return time.monotonic() - started


# --- node-dns under test ---------------------------------------------------------------------


def node_dns(plane: ControlPlane, *extra_args: str, env: Mapping[str, str] | None = None) -> NodeDns:
    """A node-dns process for the cluster, pinned to the server CPU, not yet started; ``env`` is
    added to its environment (the harness passes no NODE_DNS_* variable of ours through)."""
    process = NodeDns(
        plane.kubeconfig,
        zone=ZONE,
        nameservers=NAMESERVERS,
        soa_email=SOA_EMAIL,
        extra_args=["--log-level=warning", *extra_args],
        ready_timeout=120,
        env=env,
    )
    process.argv = pinned(process.argv, SERVER_CPU)
    return process


def wait_replayed(process: NodeDns, nodes: int, timeout: float = 120.0) -> float:
    """Wait until the node watch has replayed its initial listing (``nodes`` LISTED events in
    /metrics) and the process is idle again; returns the seconds waited. Until then node-dns
    answers from its own list, but its CPU and memory are not settled."""
    started = time.monotonic()
    pattern = re.compile(r'^node_dns_watch_events_total\{type="LISTED"\} ([\d.e+]+)$', re.M)
    while time.monotonic() - started < timeout:
        try:
            _, text = process.http_get("/metrics")
        except OSError:
            text = ""
        match = pattern.search(text)
        if match and float(match.group(1)) >= nodes:
            break
        time.sleep(0.2)
    quiet(process.pid or 0)
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (NSD answers from a forked child)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def quiet(pid: int, *, below: float = 0.03, window: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until the process used less than ``below`` of a CPU in each of six windows in a row;
    returns the seconds waited. A single quiet window can fall between the end of a list and the
    start of the watch's replay, and the reconcile list that a replay asks for runs at the
    lister's next 2 s tick: three quiet seconds are past both."""
    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < timeout and calm < 6:
        before = cpu_seconds(pid)
        time.sleep(window)
        calm = calm + 1 if cpu_seconds(pid) - before < below * window else 0
    return time.monotonic() - started


# --- DNS helpers -----------------------------------------------------------------------------


def wire_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p) + b"\x00"


def query_bytes(name: str, qtype: int, *, qid: int = 0x4242, edns: int | None = None) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    packet = header + wire_name(name) + struct.pack("!HH", qtype, 1)
    if edns:
        packet += b"\x00" + struct.pack("!HHIH", 41, edns, 0, 0)
    return packet


def rcode(reply: bytes) -> int:
    return reply[3] & 0x0F


def truncated(reply: bytes) -> bool:
    return bool(reply[2] & 0x02)


def answer_rdata(reply: bytes, qtype: int) -> list[bytes]:
    """The rdata of the answer records of ``qtype`` (owner names must be pointers or the qname)."""
    ancount = struct.unpack_from("!H", reply, 6)[0]
    offset = 12
    while reply[offset]:
        offset += reply[offset] + 1
    offset += 5
    found = []
    for _ in range(ancount):
        if reply[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            while reply[offset]:
                offset += reply[offset] + 1
            offset += 1
        rtype, _, _, length = struct.unpack_from("!HHIH", reply, offset)
        offset += 10
        if rtype == qtype:
            found.append(reply[offset : offset + length])
        offset += length
    return found


class Prober:
    """A UDP socket for tight query loops against one server."""

    def __init__(self, port: int, timeout: float = 0.2) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(timeout)
        self._id = random.randrange(0x10000)

    def ask(self, packet: bytes) -> bytes | None:
        """One query; None on timeout or when nothing listens yet (ICMP port unreachable)."""
        self._id = (self._id + 1) & 0xFFFF
        packet = struct.pack("!H", self._id) + packet[2:]
        try:
            self.sock.send(packet)
            while True:
                reply = self.sock.recv(65535)
                if reply[:2] == packet[:2]:
                    return reply
        except (TimeoutError, ConnectionRefusedError):
            return None

    def close(self) -> None:
        self.sock.close()


def wait_answering(port: int, packet: bytes, timeout: float = 30.0) -> bytes:
    """Ask until a non-SERVFAIL answer comes back."""
    prober = Prober(port, timeout=0.05)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            reply = prober.ask(packet)
            if reply is not None and rcode(reply) != RCODE_SERVFAIL:
                return reply
            time.sleep(0.001)
    finally:
        prober.close()
    raise TimeoutError(f"no authoritative answer on port {port} within {timeout:.0f}s")


# --- dnsperf ---------------------------------------------------------------------------------


@dataclass
class Mix:
    """A dnsperf query file: positive A and AAAA, NXDOMAIN, NODATA and apex SOA in equal parts,
    every name spelt in random case."""

    path: Path
    lines: int


def write_mix(path: Path, areas: Sequence[str], *, lines: int = 2000, seed: int = 6) -> Mix:
    rng = random.Random(seed)

    def spell(name: str) -> str:
        return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c for c in name)

    out = []
    for i in range(lines):
        area = areas[(i // 5) % len(areas)]
        kind = i % 5
        if kind == 0:
            out.append(f"{spell(f'{area}.{ZONE}')} A")
        elif kind == 1:
            out.append(f"{spell(f'{area}.{ZONE}')} AAAA")
        elif kind == 2:
            out.append(f"{spell(f'nowhere-{i % 7}.{ZONE}')} A")
        elif kind == 3:
            out.append(f"{spell(f'{area}.{ZONE}')} TXT")
        else:
            out.append(f"{spell(ZONE)} SOA")
    path.write_text("\n".join(out) + "\n")
    return Mix(path, lines)


def write_queries(path: Path, queries: Sequence[tuple[str, str]]) -> Mix:
    path.write_text("".join(f"{name} {qtype}\n" for name, qtype in queries))
    return Mix(path, len(queries))


@dataclass
class PerfResult:
    qps: float
    sent: int
    completed: int
    lost: int
    avg_latency_ms: float
    rcodes: dict[str, int]
    server_cpu_s: float = float("nan")
    """CPU the server process (and its children) used during the run."""
    wall_s: float = float("nan")
    client_cpu_s: float = float("nan")
    """CPU dnsperf itself used (user + system, from wait4)."""
    client_core_busy: float = float("nan")
    """Share of the run the client's CPU was busy, whatever ran on it (/proc/stat)."""
    server_core_busy: float = float("nan")
    """Share of the run the server's CPU was busy, whatever ran on it."""

    @property
    def per_cpu_second(self) -> float:
        """Answers per second of server CPU: less sensitive to other load than QPS."""
        return validity.per_cpu_second(self.completed, self.server_cpu_s)

    @property
    def invalid(self) -> str | None:
        """Why this run measured the client rather than the server, or None."""
        return validity.why_invalid(self.client_core_busy, self.server_core_busy)

    @property
    def caveat(self) -> str | None:
        """Why this run's answers per CPU-second understate the server, or None."""
        return validity.why_undriven(self.server_cpu_s / self.wall_s, self.client_core_busy)

    def usage(self) -> str:
        """Client and server CPU during the run, for the notes under a table."""
        return (
            f"dnsperf {self.client_cpu_s / self.wall_s:.0%} of a core "
            f"(client core {self.client_core_busy:.0%} busy), server {self.server_cpu_s / self.wall_s:.0%} "
            f"(server core {self.server_core_busy:.0%} busy)"
        )


_FIELDS = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "qps": re.compile(r"Queries per second:\s+([\d.]+)"),
    "latency": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
}


def dnsperf(
    port: int,
    mix: Mix,
    *,
    seconds: float,
    tcp: bool = False,
    edns: bool = False,
    clients: int = 1,
    outstanding: int = 100,
    pid: int | None = None,
    max_qps: int = 0,
) -> PerfResult:
    """``max_qps``: send at that fixed rate (dnsperf -Q) instead of as fast as answers come back."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(mix.path), "-l", f"{seconds:g}"]
    argv += ["-c", str(clients), "-q", str(outstanding), "-T", "1", "-t", "2"]
    if max_qps:
        argv += ["-Q", str(max_qps)]
    if tcp:
        argv += ["-m", "tcp"]
    if edns:
        argv += ["-e"]
    before = tree_cpu_seconds(pid) if pid else 0.0
    cores_before = cpu_times()
    started = time.monotonic()
    text, stderr, client_cpu = _run_measured(pinned(argv, CLIENT_CPU), timeout=seconds + 60)
    wall = time.monotonic() - started
    cores_after = cpu_times()
    used = tree_cpu_seconds(pid) - before if pid else float("nan")
    values = {}
    for key, pattern in _FIELDS.items():
        match = pattern.search(text)
        if match is None:
            raise RuntimeError(f"dnsperf output without {key!r}:\n{text}\n{stderr}")
        values[key] = float(match.group(1))
    codes = dict(
        (name, int(count))
        for name, count in re.findall(r"([A-Z]+) (\d+) \(", text.split("Response codes:")[1])
    )
    return PerfResult(
        values["qps"],
        int(values["sent"]),
        int(values["completed"]),
        int(values["lost"]),
        values["latency"] * 1000,
        codes,
        used,
        wall,
        client_cpu,
        _share(cores_before, cores_after, CLIENT_CPU),
        _share(cores_before, cores_after, SERVER_CPU),
    )


def cpu_times() -> dict[int, validity.CoreTimes]:
    with open("/proc/stat") as stat:
        return validity.parse_proc_stat(stat.read())


def _share(before: dict[int, validity.CoreTimes], after: dict[int, validity.CoreTimes], cpu: int) -> float:
    if cpu not in before or cpu not in after:
        return float("nan")
    return validity.busy_share(before[cpu], after[cpu])


def _run_measured(argv: Sequence[str], *, timeout: float) -> tuple[str, str, float]:
    """Run a program to its end; its stdout, stderr and the CPU seconds it used (its own rusage
    from wait4, so programs other threads run at the same time are not counted)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                raise subprocess.TimeoutExpired(list(argv), timeout)
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), usage.ru_utime + usage.ru_stime


# --- statistics ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f"{min(values):,.0f} to {max(values):,.0f}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"
