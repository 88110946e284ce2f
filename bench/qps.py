"""UDP and TCP queries per second: node-dns against NSD and Knot serving the same zone, in one run.

Each server runs alone on the server CPU while dnsperf runs on the client CPU. Runs are
interleaved (node-dns, NSD, Knot, node-dns, ...) so that load from anything else on the machine
hits every server alike; the tables give medians and the range over rounds.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from bench import common, peers
from bench.report import Table, ratio
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns

PEER_UDP = 0.62
PEER_UDP_EDNS = 0.63
PEER_TCP = 0.07
SMALL_NODES, SMALL_AREAS = 10, 2


@dataclass
class Fleet:
    """node-dns and the peers serving one population."""

    node_dns: NodeDns
    ports: dict[str, int]
    pids: dict[str, int]
    peers: list[peers.Server] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)


def sample_queries(areas: Sequence[str]) -> list[tuple[str, str]]:
    """One of each kind in the mix (lower case; the mix itself is mixed case)."""
    zone = common.ZONE
    queries = [(zone, "SOA"), (zone, "NS"), (f"nowhere-1.{zone}", "A"), (f"ns1.{zone}", "A")]
    for area in areas[:3]:
        queries += [(f"{area}.{zone}", t) for t in ("A", "AAAA", "TXT")]
    return queries


@contextlib.contextmanager
def fleet(
    plane: ControlPlane, opts: common.Options, areas: Sequence[str], *, with_knot: bool = True
) -> Iterator[Fleet]:
    """node-dns on the cluster's current nodes, plus NSD (and Knot) on a zone file written from them."""
    process = common.node_dns(plane)
    with process:
        port = process.dns_port
        common.wait_answering(port, common.query_bytes(f"{areas[0]}.{common.ZONE}", common.TYPE_A))
        zone_file = peers.write_zone(opts.workdir, plane.list_nodes(), port)
        found = Fleet(process, {"node-dns": port}, {"node-dns": process.pid or 0})
        kinds: list[type[peers.Server]] = [peers.Nsd] + ([peers.Knot] if with_knot else [])
        try:
            for kind in kinds:
                binary = "nsd" if kind is peers.Nsd else "knotd"
                if shutil.which(binary) is None:
                    continue
                server = kind(opts.workdir / kind.name.lower(), zone_file)
                server.start()
                found.peers.append(server)
                found.ports[kind.name] = server.port
                found.pids[kind.name] = server.pid
            peers.settle()
            found.differences = peers.compare(found.ports, sample_queries(areas))
            yield found
        finally:
            for server in found.peers:
                server.stop()


def measure(
    ports: dict[str, int],
    mix: common.Mix,
    opts: common.Options,
    *,
    tcp: bool = False,
    edns: bool = False,
    clients: int = 1,
) -> dict[str, list[common.PerfResult]]:
    results: dict[str, list[common.PerfResult]] = {name: [] for name in ports}
    for _ in range(opts.rounds):
        for name, port in ports.items():
            results[name].append(
                common.dnsperf(port, mix, seconds=opts.seconds, tcp=tcp, edns=edns, clients=clients)
            )
    return results


def qps(results: list[common.PerfResult]) -> float:
    return common.median([r.qps for r in results])


def lost(results: list[common.PerfResult]) -> str:
    sent = sum(r.sent for r in results)
    return f"{100 * sum(r.lost for r in results) / sent:.2f}%" if sent else "n/a"


def run(plane: ControlPlane, opts: common.Options, parts: set[str]) -> list[Table]:
    areas = [common.area_name(i) for i in range(SMALL_AREAS)]
    common.populate(plane, common.node_specs(SMALL_NODES, SMALL_AREAS))
    mix = common.write_mix(opts.workdir / "mix-small.txt", areas)
    tables: list[Table] = []
    with fleet(plane, opts, areas) as found:
        peer_names = [name for name in found.ports if name != "node-dns"]
        equivalence = (
            "all servers gave the same rcode, AA, TC, answer and authority on the sample queries"
            if not found.differences
            else "DIFFERENCES between servers:\n" + "\n".join(found.differences)
        )
        if "udp" in parts:
            table = Table(
                f"UDP, {SMALL_NODES} nodes in {SMALL_AREAS} areas (dnsperf -c 1 -q 100)",
                [
                    "queries",
                    *[f"{n} QPS" for n in found.ports],
                    *[f"node-dns / {p}" for p in peer_names],
                    "Go peer / NSD",
                    "node-dns lost",
                ],
            )
            for label, edns, peer in (("no EDNS", False, PEER_UDP), ("EDNS (-e)", True, PEER_UDP_EDNS)):
                results = measure(found.ports, mix, opts, edns=edns)
                ours = qps(results["node-dns"])
                table.rows.append(
                    [
                        label,
                        *[qps(results[n]) for n in found.ports],
                        *[ratio(ours, qps(results[p])) for p in peer_names],
                        f"{peer:.2f}x",
                        lost(results["node-dns"]),
                    ]
                )
                table.raw[label] = {n: [r.qps for r in rs] for n, rs in results.items()}
                if "NSD" in results:
                    share = ours / qps(results["NSD"])
                    table.raw.setdefault("summary", []).append(
                        (f"UDP QPS / NSD, {label}", f"{share:.2f}x", ">= 0.8x", share >= 0.8, f"{peer:.2f}x")
                    )
                spreads = ", ".join(f"{n} {common.spread([r.qps for r in rs])}" for n, rs in results.items())
                if opts.rounds > 1:
                    table.notes.append(f"{label}: range over {opts.rounds} rounds: {spreads}")
            table.notes += [
                "mix: positive A, positive AAAA, NXDOMAIN, NODATA (TXT), apex SOA in equal parts, "
                "every name in random case",
                equivalence,
                common.load_note(),
            ]
            tables.append(table)
        if "tcp" in parts:
            table = Table(
                "TCP, 8 connections (dnsperf -m tcp -c 8)",
                [
                    "queries",
                    *[f"{n} QPS" for n in found.ports],
                    *[f"node-dns / {p}" for p in peer_names],
                    "Go peer / NSD",
                ],
            )
            results = measure(found.ports, mix, opts, tcp=True, clients=8)
            ours = qps(results["node-dns"])
            table.rows.append(
                [
                    "mix",
                    *[qps(results[n]) for n in found.ports],
                    *[ratio(ours, qps(results[p])) for p in peer_names],
                    f"{PEER_TCP:.2f}x",
                ]
            )
            table.raw["tcp"] = {n: [r.qps for r in rs] for n, rs in results.items()}
            if "NSD" in results:
                share = ours / qps(results["NSD"])
                table.raw["summary"] = [
                    (
                        "TCP QPS / NSD, 8 connections",
                        f"{share:.2f}x",
                        ">= 0.5x",
                        share >= 0.5,
                        f"{PEER_TCP:.2f}x",
                    )
                ]
            if opts.rounds > 1:
                spreads = ", ".join(f"{n} {common.spread([r.qps for r in rs])}" for n, rs in results.items())
                table.notes.append(f"range over {opts.rounds} rounds: {spreads}")
            table.notes.append(
                "node-dns closes a connection after --tcp-max-queries (default 1000) answers; dnsperf "
                "reconnects, so the figure includes that reconnect cost"
            )
            table.notes.append(common.load_note())
            tables.append(table)
    return tables
