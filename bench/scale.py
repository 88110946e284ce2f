"""Scale: 5,000 nodes in 100 areas (and a 500-node area): cold start, memory, CPU per node update,
QPS against the 10-node case and NSD, UDP truncation and TCP cost of a large area.

Also measured in-process (no apiserver, no kopf): what one node update costs in node-dns' own
code (translation of the Node body, Zone, snapshot), to say where the process CPU goes.
"""

from __future__ import annotations

import ipaddress
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench import common, peers, qps
from bench.report import Table, ratio, verdict
from node_dns.sources import nodes
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube
from tests.harness.nodedns import NodeDns

TARGETS = {"cold_start_s": 10.0, "rss_5k_mb": 200.0, "rss_idle_mb": 60.0, "cpu_per_update_ms": 1.0}
PEER = {"cold_start_s": "0.6 s", "rss_5k_mb": "67 MB"}


def cold_start(plane: ControlPlane, probe_name: str) -> tuple[NodeDns, float, float]:
    """Start node-dns; seconds to the first answer of any kind and to the first non-SERVFAIL one."""
    process = common.node_dns(plane)
    question = common.query_bytes(probe_name, common.TYPE_A)
    started = time.monotonic()
    process.start()
    prober = common.Prober(process.dns_port, timeout=0.05)
    listening = authoritative = 0.0
    try:
        while time.monotonic() - started < 120:
            reply = prober.ask(question)
            if reply is not None:
                listening = listening or time.monotonic() - started
                if common.rcode(reply) != common.RCODE_SERVFAIL:
                    authoritative = time.monotonic() - started
                    break
            else:
                time.sleep(0.001)
    finally:
        prober.close()
    if not authoritative:
        process.kill()
        raise TimeoutError(f"node-dns not authoritative within 120s:\n{process.logs()[-3000:]}")
    return process, listening, authoritative


def present(port: int, index: int, areas: int) -> bool:
    prober = common.Prober(port, timeout=0.5)
    try:
        question = common.query_bytes(
            f"{common.area_name(index % areas)}.{common.ZONE}", common.TYPE_A, edns=1232
        )
        reply = prober.ask(question)
        address = ipaddress.IPv4Address(common.ipv4(index)).packed
        return reply is not None and address in common.answer_rdata(reply, common.TYPE_A)
    finally:
        prober.close()


def cpu_per_update(
    plane: ControlPlane, process: NodeDns, count: int, areas: int, updates: int, others: Mapping[str, int]
) -> tuple[dict[str, list[float]], float]:
    """Process CPU per Ready flip (ms), measured twice (to NotReady, back to Ready), idle rate removed,
    for node-dns and for ``others`` (name -> pid) watching the same flips."""
    pids = {"node-dns": process.pid or 0, **others}
    rng = random.Random(5)
    chosen = rng.sample(range(count), updates)
    before = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(2.0)
    idle = {name: (common.cpu_seconds(pid) - before[name]) / 2.0 for name, pid in pids.items()}
    per_update: dict[str, list[float]] = {name: [] for name in pids}
    for state in (False, True):
        before, started = {name: common.cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
        for index in chosen:
            plane.set_ready(f"node-{index:05d}", state)
        deadline = time.monotonic() + 30
        while present(process.dns_port, chosen[-1], areas) != state and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in pids.values():
            common.quiet(pid, timeout=10)
        for name, pid in pids.items():
            spent = common.cpu_seconds(pid) - before[name] - idle[name] * (time.monotonic() - started)
            per_update[name].append(spent / updates * 1000)
    return per_update, idle["node-dns"]


def kopf_floor(plane: ControlPlane, count: int) -> subprocess.Popen[str]:
    """bench.kopf_floor on the server CPU: kopf with node-dns' settings and a handler doing nothing,
    returned once it has been handed every node of its initial listing."""
    argv = [sys.executable, "-m", "bench.kopf_floor", str(plane.kubeconfig), str(count)]
    floor = subprocess.Popen(
        common.pinned(argv, common.SERVER_CPU), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert floor.stdout is not None
    if floor.stdout.readline().strip() != "listed":  # blocks until listed, or '' if it died
        floor.kill()
        raise RuntimeError("bench.kopf_floor ended before listing the nodes")
    return floor


def in_process_costs(kube: Kube, count: int, updates: int) -> dict[str, float]:
    """Milliseconds of node-dns code per event, without kopf: Node body -> facts, and Zone.apply."""
    items = kube.list_nodes()
    config = peers.settings()
    keys = nodes.Keys(areas=config.areas_annotation, ips=config.ips_annotation)
    started = time.process_time()
    facts = [nodes.facts_from_node(item, keys)[0] for item in items]
    translate = (time.process_time() - started) / len(items) * 1000
    state = Zone(zone_config(config), Policy(cordoned_healthy=config.cordoned_healthy))
    started = time.process_time()
    state.replace_all([(f, None) for f in facts], None)
    full_list = time.process_time() - started
    rng = random.Random(3)
    chosen = rng.sample(facts, min(updates, len(facts)))
    started = time.process_time()
    version = 10**9
    for f in chosen:
        version += 1
        state.apply(f.name, f.model_copy(update={"ready": not f.ready}), str(version))
    for f in chosen:
        version += 1
        state.apply(f.name, f, str(version))
    apply = (time.process_time() - started) / (2 * len(chosen)) * 1000
    return {"facts_from_node_ms": translate, "zone_apply_ms": apply, "replace_all_s": full_list}


def truncation(port: int, queries: Sequence[tuple[str, int]], edns: int | None) -> float:
    prober = common.Prober(port, timeout=1.0)
    try:
        replies = [prober.ask(common.query_bytes(name, qtype, edns=edns)) for name, qtype in queries]
    finally:
        prober.close()
    answered = [r for r in replies if r is not None]
    return 100.0 * sum(common.truncated(r) for r in answered) / max(1, len(answered))


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    tables: list[Table] = []
    raw: dict[str, Any] = {}
    summary: list[tuple[str, str, str, bool, str]] = []

    # --- idle and the 10-node baseline ------------------------------------------------------
    small_areas = [common.area_name(i) for i in range(qps.SMALL_AREAS)]
    common.populate(plane, common.node_specs(qps.SMALL_NODES, qps.SMALL_AREAS))
    small_mix = common.write_mix(opts.workdir / "mix-small.txt", small_areas)
    with common.node_dns(plane) as idle:
        common.wait_answering(idle.dns_port, common.query_bytes(f"{small_areas[0]}.{common.ZONE}", 1))
        common.wait_replayed(idle, qps.SMALL_NODES)
        raw["rss_idle_mb"] = common.rss_mb(idle.pid or 0)
        alone = qps.Fleet(idle, {"node-dns": idle.dns_port}, {"node-dns": idle.pid or 0})
        small = qps.measure(alone, small_mix, opts)["node-dns"]
        small_edns = qps.measure(alone, small_mix, opts, edns=True)["node-dns"]

    # --- 5,000 nodes ------------------------------------------------------------------------
    count, areas, big = opts.scale_nodes, opts.scale_areas, opts.big_area
    raw["create_s"] = common.populate(plane, common.node_specs(count, areas, big=big))
    probe_name = f"{common.area_name(areas - 1)}.{common.ZONE}"
    starts: list[tuple[float, float]] = []
    process: NodeDns | None = None
    for attempt in range(opts.cold_starts):
        process, listening, authoritative = cold_start(plane, probe_name)
        starts.append((listening, authoritative))
        if attempt < opts.cold_starts - 1:
            process.stop()
    assert process is not None
    try:
        pid = process.pid or 0
        raw["settle_s"] = common.wait_replayed(process, count)
        raw["rss_5k_mb"] = common.rss_mb(pid)
        floor = kopf_floor(plane, count)
        try:
            # kopf retires each object's worker after queueing.idle_timeout (5 s) without events:
            # for 5,000 listed objects that is a burst 5 s after the listing, not idle time.
            time.sleep(6.0)
            common.quiet(floor.pid, timeout=120)
            raw["rss_kopf_floor_mb"] = common.rss_mb(floor.pid)
            updates, idle_rate = cpu_per_update(
                plane, process, count, areas, opts.updates, {"kopf alone": floor.pid}
            )
        finally:
            floor.terminate()
            floor.wait(timeout=10)
        per_update, per_update_floor = updates["node-dns"], updates["kopf alone"]
        raw["cpu_per_update_ms"] = per_update
        raw["cpu_per_update_kopf_alone_ms"] = per_update_floor
        raw["idle_cpu_rate"] = idle_rate
        zone_file = peers.write_zone(opts.workdir, plane.list_nodes(), process.dns_port)
        ports = {"node-dns": process.dns_port}
        servers = qps.Fleet(process, ports, {"node-dns": pid})
        nsd: peers.Server | None = None
        if shutil.which("nsd"):
            nsd = peers.Nsd(opts.workdir / "nsd-scale", zone_file)
            nsd.start()
            ports["NSD"] = nsd.port
            servers.pids["NSD"] = nsd.pid
        try:
            area_names = [common.area_name(i) for i in range(areas)]
            differences = peers.compare(ports, [*qps.sample_queries(area_names), (f"big.{common.ZONE}", "A")])
            mix = common.write_mix(opts.workdir / "mix-scale.txt", area_names)
            plain = qps.measure(servers, mix, opts)
            edns = qps.measure(servers, mix, opts, edns=True)
            mix_queries = [
                (line.split()[0], {"A": 1, "AAAA": 28, "TXT": 16, "SOA": 6}[line.split()[1]])
                for line in mix.path.read_text().splitlines()[:500]
            ]
            big_queries = [(f"big.{common.ZONE}", 1), (f"BiG.{common.ZONE}", 28)]
            trunc = {
                name: {
                    "mix": truncation(port, mix_queries, None),
                    "mix EDNS": truncation(port, mix_queries, 1232),
                    "big": truncation(port, big_queries, None),
                    "big EDNS": truncation(port, big_queries, 1232),
                }
                for name, port in ports.items()
            }
            big_mix = common.write_queries(
                opts.workdir / "mix-big.txt", [(f"big.{common.ZONE}", "A"), (f"Big.{common.ZONE}", "AAAA")]
            )
            raw["rss_after_udp_mb"] = common.rss_mb(pid)
            big_tcp = qps.measure(servers, big_mix, opts, tcp=True, clients=8)
            mix_tcp = qps.measure(servers, mix, opts, tcp=True, clients=8)
        finally:
            if nsd is not None:
                nsd.stop()
        raw["rss_after_load_mb"] = common.rss_mb(pid)
    finally:
        process.stop()
    costs = in_process_costs(plane.kube, count, opts.updates)
    raw.update(costs)

    # --- tables -----------------------------------------------------------------------------
    cold = common.median([a for _, a in starts])
    listen = common.median([lst for lst, _ in starts])
    update_ms = common.median(per_update)
    rss5k, rss_idle = raw["rss_5k_mb"], raw["rss_idle_mb"]
    table = Table(
        f"Scale: {count:,} nodes in {areas} areas (+ one area of {big})",
        ["measure", "node-dns", "target", "result", "Go peer"],
    )
    table.rows += [
        [
            "cold start -> first authoritative answer",
            f"{cold:.2f} s (listening after {listen:.2f} s)",
            "< 10 s",
            verdict(cold < TARGETS["cold_start_s"]),
            PEER["cold_start_s"],
        ],
        ["RSS idle (10 nodes, synced)", f"{rss_idle:.0f} MB", "< 60 MB", verdict(rss_idle < 60), ""],
        [
            f"RSS at {count:,} nodes (settled)",
            f"{rss5k:.0f} MB",
            "< 200 MB",
            verdict(rss5k < 200),
            PEER["rss_5k_mb"],
        ],
        ["RSS after the UDP QPS runs", f"{raw['rss_after_udp_mb']:.0f} MB", "", "", ""],
        ["RSS after the TCP QPS runs", f"{raw['rss_after_load_mb']:.0f} MB", "", "", ""],
        [
            "process CPU per node update (Ready flip)",
            f"{update_ms:.2f} ms ({', '.join(f'{v:.2f}' for v in per_update)})",
            "< 1 ms",
            verdict(update_ms < TARGETS["cpu_per_update_ms"]),
            "",
        ],
        [
            "  kopf alone, same settings, a handler doing nothing (same flips)",
            f"{common.median(per_update_floor):.2f} ms ({', '.join(f'{v:.2f}' for v in per_update_floor)})",
            "",
            f"{common.median(per_update_floor) / update_ms:.0%} of node-dns'",
            "",
        ],
        ["  of which Node body -> facts (in-process)", f"{costs['facts_from_node_ms']:.3f} ms", "", "", ""],
        [
            "  of which Zone.apply + snapshot (in-process)",
            f"{costs['zone_apply_ms']:.3f} ms",
            "",
            "",
            "",
        ],
        ["full list -> zone (replace_all, in-process)", f"{costs['replace_all_s']:.2f} s", "", "", ""],
    ]
    table.notes += [
        f"cold starts: {', '.join(f'{a:.2f}' for _, a in starts)} s (process start, Python imports "
        "included, to the first non-SERVFAIL answer to a UDP query loop)",
        f"creating the nodes took {raw['create_s']:.0f} s; after authoritative, node-dns was busy "
        f"another {raw['settle_s']:.1f} s (kopf replaying the initial listing, then retiring its "
        "per-object workers) before RSS was read",
        f"CPU per update = process CPU over {opts.updates} Ready flips sent one after another through "
        f"the apiserver, minus the idle rate ({idle_rate * 1000:.1f} ms/s)",
        common.load_note(),
    ]
    tables.append(table)

    q = Table(
        f"QPS at {count:,} nodes against 10 nodes and NSD (UDP, dnsperf -c 1 -q 100)",
        ["queries", "node-dns 10 nodes", f"node-dns {count:,}", "NSD", f"{count:,} / 10", "node-dns / NSD"],
    )
    for label, ten, at_scale in (("no EDNS", small, plain), ("EDNS (-e)", small_edns, edns)):
        ours = qps.qps(at_scale["node-dns"])
        theirs = qps.qps(at_scale["NSD"]) if "NSD" in at_scale else float("nan")
        q.rows.append([label, qps.qps(ten), ours, theirs, ratio(ours, qps.qps(ten)), ratio(ours, theirs)])
    for label, results in (("TCP -c 8, mix", mix_tcp), (f"TCP -c 8, area of {big} (A, AAAA)", big_tcp)):
        theirs = qps.qps(results["NSD"]) if "NSD" in results else float("nan")
        ours = qps.qps(results["node-dns"])
        q.rows.append([label, "", ours, theirs, "", ratio(ours, theirs)])
    q.notes += [
        "the mix at scale covers all 100 areas; each area A answer has 50 records (842 bytes), so "
        "without EDNS it is truncated (TC) by both servers",
        "TCP: both servers with default settings (see the TCP table for per-connection caps)",
        (
            "all servers gave the same answers on the sample queries"
            if not differences
            else "DIFFERENCES:\n" + "\n".join(differences)
        ),
    ]
    tables.append(q)

    t = Table(
        "UDP truncation rate (share of answers with TC)",
        ["queries", *[f"{name}" for name in trunc]],
        [
            [kind, *[f"{trunc[name][kind]:.0f}%" for name in trunc]]
            for kind in ("mix", "mix EDNS", "big", "big EDNS")
        ],
        notes=[
            f"'big': A and AAAA of the {big}-node area ({big * 16 + 40} / {big * 28 + 40} bytes): "
            "never fits in UDP, so resolvers retry over TCP; its TCP QPS is in the table above",
            "EDNS: 1232-byte buffer (node-dns' and NSD's default)",
        ],
    )
    tables.append(t)

    summary += [
        (f"cold start at {count:,} nodes", f"{cold:.2f} s", "< 10 s", cold < 10, PEER["cold_start_s"]),
        ("RSS idle", f"{rss_idle:.0f} MB", "< 60 MB", rss_idle < 60, ""),
        (f"RSS at {count:,} nodes", f"{rss5k:.0f} MB", "< 200 MB", rss5k < 200, PEER["rss_5k_mb"]),
        ("CPU per node update", f"{update_ms:.2f} ms", "< 1 ms", update_ms < 1, ""),
    ]
    raw["summary"] = summary
    raw["starts"] = starts
    raw["qps_plain"] = {n: [r.qps for r in rs] for n, rs in plain.items()}
    raw["qps_edns"] = {n: [r.qps for r in rs] for n, rs in edns.items()}
    raw["truncation"] = trunc
    table.raw = raw
    return tables
