"""Zone transfers (``--only xfr``): node-dns as primary at 5,000 nodes in 100 areas.

- AXFR: time and server CPU per transfer, node-dns beside NSD and Knot serving the same zone
  (written from node-dns' own snapshot), kdig as the client on the client CPU.
- IXFR of one change: bytes on the wire against the whole zone.
- NOTIFY-driven convergence: a Ready flip -> node-dns answers it -> NSD, Knot and BIND (TSIG
  secondaries pulling by IXFR) answer it; how far each secondary is behind node-dns.
- UDP queries while transfers run: dnsperf idle, then with kdig AXFRs back to back.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query

from bench import common, peers
from bench.report import Table, ratio, verdict
from tests.harness.controlplane import ControlPlane
from tests.harness.ports import free_dns_port
from tests.harness.secondaries import ALL as SECONDARIES
from tests.harness.secondaries import KEY_NAME, Secondary

SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PACE = 0.2
"""Seconds between AXFRs while dnsperf runs: five secondaries re-syncing every second."""
RECEIVED = re.compile(r"Received (\d+) B \((\d+) messages, (\d+) records\)")


class XfrNsd(peers.Nsd):
    name = "NSD"

    def argv(self) -> list[str]:
        argv = super().argv()
        conf = self.workdir / "nsd.conf"
        conf.write_text(conf.read_text() + "    provide-xfr: 127.0.0.0/8 NOKEY\n")
        return argv


class XfrKnot(peers.Knot):
    name = "Knot"

    def argv(self) -> list[str]:
        argv = super().argv()
        conf = self.workdir / "knot.conf"
        text = conf.read_text().replace(
            "zone:\n", "acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\nzone:\n", 1
        )
        conf.write_text(text + "    acl: xfr\n")
        return argv


def kdig_xfr(port: int, qtype: str = "AXFR") -> tuple[float, int, int, int]:
    """One transfer by kdig: (seconds, bytes, messages, records)."""
    started = time.monotonic()
    done = subprocess.run(
        common.pinned(
            ["kdig", "-p", str(port), "@127.0.0.1", common.ZONE, qtype, "+noall", "+stats"], common.CLIENT_CPU
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - started
    match = RECEIVED.search(done.stdout)
    if match is None:
        raise RuntimeError(f"kdig {qtype}: {done.stdout[-500:]} {done.stderr[-500:]}")
    return seconds, int(match[1]), int(match[2]), int(match[3])


def axfr_table(servers: dict[str, int], pids: dict[str, int], count: int) -> Table:
    table = Table(
        f"AXFR of 5,000 nodes in 100 areas ({count} transfers each, kdig on the client CPU)",
        ["server", "median ms", "server CPU ms / AXFR", "bytes", "messages", "records", "time vs NSD"],
    )
    results: dict[str, tuple[float, float, int, int, int]] = {}
    for name, port in servers.items():
        kdig_xfr(port)  # warm: node-dns packs the zone once per snapshot
        times = []
        before = common.tree_cpu_seconds(pids[name])
        for _ in range(count):
            seconds, size, messages, records = kdig_xfr(port)
            times.append(seconds)
        cpu = (common.tree_cpu_seconds(pids[name]) - before) / count
        results[name] = (common.median(times), cpu, size, messages, records)
    nsd = results["NSD"][0]
    for name, (median, cpu, size, messages, records) in results.items():
        table.rows.append([name, median * 1000, cpu * 1000, size, messages, records, ratio(median, nsd)])
    table.notes.append(
        "target: node-dns <= 2x NSD's time: "
        + verdict(results["node-dns"][0] <= 2 * nsd, ratio(results["node-dns"][0], nsd))
    )
    table.notes.append("time includes starting kdig (a few ms, the same for every server)")
    table.raw = {k: list(v) for k, v in results.items()}
    return table


def answer(port: int, name: str) -> list[str] | None:
    """The A records, or None when the server did not answer in time (a secondary reloading)."""
    try:
        query = dns.message.make_query(name, "A", use_edns=0, payload=1232)  # 50 addresses: > 512 B
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        if reply.flags & dns.flags.TC:
            return None
    except dns.exception.Timeout:
        return None
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def convergence_table(plane: ControlPlane, port: int, secondaries: list[Secondary], flips: int) -> Table:
    """Flip node-00000 (in area-000) ``flips`` times; per flip, when each server shows it."""
    name = f"{common.area_name(0)}.{common.ZONE}"
    ip = common.ipv4(0)
    lags: dict[str, list[float]] = {s.kind: [] for s in secondaries}
    first: list[float] = []
    ready = True
    for _ in range(flips):
        ready = not ready
        started = time.monotonic()
        plane.kube.set_ready("node-00000", ready)
        seen: dict[str, float] = {}
        deadline = started + 30
        while len(seen) < 1 + len(secondaries) and time.monotonic() < deadline:
            for label, target in [("node-dns", port), *((s.kind, s.port) for s in secondaries)]:
                if label in seen:
                    continue
                got = answer(target, name)
                if got is not None and (ip in got) == ready:
                    seen[label] = time.monotonic()
        if "node-dns" not in seen:
            continue
        first.append((seen["node-dns"] - started) * 1000)
        for s in secondaries:
            if s.kind in seen:
                lags[s.kind].append((seen[s.kind] - seen["node-dns"]) * 1000)
    table = Table(
        f"NOTIFY-driven convergence at 5,000 nodes ({flips} Ready flips), ms",
        ["server", "p50", "p99", "max", "flips seen"],
    )
    table.rows.append(
        [
            "node-dns (flip -> answer)",
            common.percentile(first, 50),
            common.percentile(first, 99),
            max(first),
            len(first),
        ]
    )
    for kind, values in lags.items():
        table.rows.append(
            [
                f"{kind}, behind node-dns",
                common.percentile(values, 50),
                common.percentile(values, 99),
                max(values),
                len(values),
            ]
        )
    worst = max(common.percentile(v, 50) for v in lags.values())
    table.notes.append(
        "target: secondary <= 50 ms behind node-dns (p50): " + verdict(worst <= 50, f"{worst:.1f} ms")
    )
    table.notes.append(
        "each secondary: NOTIFY (TSIG) -> SOA query -> IXFR (TSIG) -> its own reload; all four polled in turn"
    )
    table.raw = {"node-dns": first, **lags}
    return table


def ixfr_table(plane: ControlPlane, port: int) -> Table:
    old = peers.live_serial(port)
    plane.kube.set_ready("node-00001", False)
    deadline = time.monotonic() + 10
    while peers.live_serial(port) == old and time.monotonic() < deadline:
        time.sleep(0.01)
    _, axfr_bytes, axfr_messages, axfr_records = kdig_xfr(port)
    _, ixfr_bytes, messages, records = kdig_xfr(port, f"IXFR={old}")
    plane.kube.set_ready("node-00001", True)
    table = Table("IXFR of one change at 5,000 nodes", ["transfer", "bytes", "records", "messages"])
    table.rows.append(["AXFR (whole zone)", axfr_bytes, axfr_records, axfr_messages])
    table.rows.append(["IXFR (one node NotReady)", ixfr_bytes, records, messages])
    table.notes.append(
        "one node leaves its area: its A and AAAA at the area and the v4./v6. names, between 4 SOAs"
    )
    table.raw = {"axfr": axfr_bytes, "ixfr": ixfr_bytes}
    return table


def raw_axfr(port: int, size: int) -> None:
    """An AXFR read as bytes, not parsed (``size``: its bytes, from kdig), to spare the client CPU."""
    query = dns.message.make_query(common.ZONE, "AXFR").to_wire()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(len(query).to_bytes(2, "big") + query)
        received = 0
        while received < size:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("connection closed mid-transfer")
            received += len(chunk)


def qps_table(port: int, pid: int, mix: common.Mix, seconds: float) -> Table:
    _, size, messages, _ = kdig_xfr(port)
    size += 2 * messages  # each message has a 2-byte length on TCP
    idle = common.dnsperf(port, mix, seconds=seconds, pid=pid)
    stop = threading.Event()
    done = [0]

    def transfers() -> None:
        with common.on_cpu(common.CLIENT_CPU):
            while not stop.wait(PACE):
                raw_axfr(port, size)
                done[0] += 1

    worker = threading.Thread(target=transfers, daemon=True)
    worker.start()
    busy = common.dnsperf(port, mix, seconds=seconds, pid=pid)
    stop.set()
    worker.join(60)
    table = Table(
        f"UDP queries while transfers run (dnsperf {seconds:g} s; an AXFR every {PACE:g} s)",
        ["run", "QPS", "answers / server CPU s", "lost", "AXFRs during the run"],
    )
    table.rows.append(["idle", idle.qps, idle.per_cpu_second, idle.lost, 0])
    table.rows.append(["with transfers", busy.qps, busy.per_cpu_second, busy.lost, done[0]])
    table.notes.append(
        "target: no more than 10% below idle: "
        + verdict(busy.qps >= 0.9 * idle.qps, ratio(busy.qps, idle.qps))
    )
    table.notes.append("the transfers' reader (bytes counted, not parsed) shares the client CPU with dnsperf")
    table.raw = {"idle": idle.qps, "busy": busy.qps, "transfers": done[0]}
    return table


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    specs = common.node_specs(opts.scale_nodes, opts.scale_areas)
    common.populate(plane, specs)
    workdir = opts.workdir / "xfr"
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [free_dns_port() for _ in SECONDARIES]
    notify = ", ".join(f"127.0.0.1:{p}+key={KEY_NAME}" for p in ports)
    process = common.node_dns(
        plane,
        f"--tsig-key={KEY_NAME}:{SECRET}",
        f"--transfer-allow=127.0.0.0/8; key={KEY_NAME}",
        f"--notify={notify}",
    )
    tables: list[Table] = []
    with process:
        common.wait_replayed(process, opts.scale_nodes)
        items = plane.list_nodes()
        zone_file = peers.write_zone(workdir, items, process.dns_port)
        nsd, knot = XfrNsd(workdir / "nsd", zone_file), XfrKnot(workdir / "knot", zone_file)
        secondaries: list[Secondary] = []
        try:
            for server in (nsd, knot):
                server.start()
            peers.settle()
            servers = {"node-dns": process.dns_port, "NSD": nsd.port, "Knot": knot.port}
            pids = {"node-dns": process.pid or 0, "NSD": nsd.pid, "Knot": knot.pid}
            tables.append(axfr_table(servers, pids, 5 if opts.quick else 20))
            tables.append(ixfr_table(plane, process.dns_port))
            for cls, port in zip(SECONDARIES, ports, strict=True):
                secondaries.append(cls(common.ZONE, process.dns_address, SECRET, port=port).start())
            serial = peers.live_serial(process.dns_port)
            for secondary in secondaries:
                deadline = time.monotonic() + 60
                while secondary.serial() != serial and time.monotonic() < deadline:
                    time.sleep(0.05)
            tables.append(convergence_table(plane, process.dns_port, secondaries, 20 if opts.quick else 100))
            mix = common.write_mix(
                Path(workdir / "mix.txt"), [common.area_name(i) for i in range(opts.scale_areas)]
            )
            tables.append(qps_table(process.dns_port, process.pid or 0, mix, opts.seconds))
        finally:
            for secondary in secondaries:
                secondary.stop()
            nsd.stop()
            knot.stop()
    return tables
