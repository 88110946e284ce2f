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

from bench import common, peers, validity
from bench.report import Table, ratio
from node_dns.settings import Settings
from tests.harness.controlplane import ControlPlane
from tests.harness.nodedns import NodeDns

PEER_UDP = 0.62
PEER_UDP_EDNS = 0.63
PEER_TCP = 0.07
SMALL_NODES, SMALL_AREAS = 10, 2


CAPPED = peers.CappedNsd.name
OURS_CAPPED = "node-dns capped"
"""node-dns with --tcp-max-queries=1000, to compare with NSD's tcp-query-count: 1000."""
DEFAULT_CAP = int(Settings.model_fields["tcp_max_queries"].default)


@dataclass
class Fleet:
    """node-dns and the peers serving one population."""

    node_dns: NodeDns
    ports: dict[str, int]
    pids: dict[str, int]
    peers: list[peers.Server] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def only(self, *names: str) -> Fleet:
        keep = [n for n in self.ports if n in names]
        return Fleet(self.node_dns, {n: self.ports[n] for n in keep}, {n: self.pids[n] for n in keep})


def sample_queries(areas: Sequence[str]) -> list[tuple[str, str]]:
    """One of each kind in the mix (lower case; the mix itself is mixed case)."""
    zone = common.ZONE
    queries = [(zone, "SOA"), (zone, "NS"), (f"nowhere-1.{zone}", "A"), (f"ns1.{zone}", "A")]
    for area in areas[:3]:
        queries += [(f"{area}.{zone}", t) for t in ("A", "AAAA", "TXT")]
    return queries


@contextlib.contextmanager
def fleet(
    plane: ControlPlane,
    opts: common.Options,
    areas: Sequence[str],
    *,
    with_knot: bool = True,
    capped: bool = False,
) -> Iterator[Fleet]:
    """node-dns on the cluster's current nodes, plus NSD (and Knot) on a zone file written from them."""
    with contextlib.ExitStack() as stack:
        process = stack.enter_context(common.node_dns(plane))
        port = process.dns_port
        common.wait_answering(port, common.query_bytes(f"{areas[0]}.{common.ZONE}", common.TYPE_A))
        found = Fleet(process, {"node-dns": port}, {"node-dns": process.pid or 0})
        if capped:
            other = stack.enter_context(common.node_dns(plane, "--tcp-max-queries=1000"))
            common.wait_answering(other.dns_port, common.query_bytes(f"{areas[0]}.{common.ZONE}", 1))
            found.ports[OURS_CAPPED] = other.dns_port
            found.pids[OURS_CAPPED] = other.pid or 0
        zone_file = peers.write_zone(opts.workdir, plane.list_nodes(), port)
        kinds: list[type[peers.Server]] = [peers.Nsd]
        kinds += [peers.Knot] if with_knot else []
        kinds += [peers.CappedNsd] if capped else []
        for kind in kinds:
            if shutil.which("knotd" if kind is peers.Knot else "nsd") is None:
                continue
            server = kind(opts.workdir / kind.name.lower().replace(" ", "-"), zone_file)
            server.start()
            stack.callback(server.stop)
            found.peers.append(server)
            found.ports[kind.name] = server.port
            found.pids[kind.name] = server.pid
        peers.settle()
        found.differences = peers.compare(found.ports, sample_queries(areas))
        yield found


def measure(
    servers: Fleet,
    mix: common.Mix,
    opts: common.Options,
    *,
    tcp: bool = False,
    edns: bool = False,
    clients: int = 1,
) -> dict[str, list[common.PerfResult]]:
    """dnsperf against every server, ``opts.rounds`` times, interleaved."""
    results: dict[str, list[common.PerfResult]] = {name: [] for name in servers.ports}
    for _ in range(opts.rounds):
        for name, port in servers.ports.items():
            results[name].append(
                common.dnsperf(
                    port,
                    mix,
                    seconds=opts.seconds,
                    tcp=tcp,
                    edns=edns,
                    clients=clients,
                    pid=servers.pids.get(name),
                )
            )
    return results


def qps(results: list[common.PerfResult]) -> float:
    return common.median([r.qps for r in results])


def per_cpu(results: list[common.PerfResult]) -> float:
    return common.median([r.per_cpu_second for r in results])


def lost(results: list[common.PerfResult]) -> str:
    sent = sum(r.sent for r in results)
    return f"{100 * sum(r.lost for r in results) / sent:.2f}%" if sent else "n/a"


def spreads(results: dict[str, list[common.PerfResult]]) -> str:
    return "; ".join(f"{n} {common.spread([r.qps for r in rs])}" for n, rs in results.items())


def invalid_runs(results: dict[str, list[common.PerfResult]], *only: str) -> list[str]:
    """One line per client-bound run (see :mod:`bench.validity`) of the servers named in ``only``
    (default: all); [] when every such run is valid."""
    return [
        f"{n} round {i + 1}: {r.invalid}"
        for n, rs in results.items()
        if not only or n in only
        for i, r in enumerate(rs)
        if r.invalid
    ]


def undriven_runs(results: dict[str, list[common.PerfResult]], *only: str) -> list[str]:
    """One line per run whose server was limited by neither itself nor the client."""
    return [
        f"{n} round {i + 1}: {r.caveat}"
        for n, rs in results.items()
        if not only or n in only
        for i, r in enumerate(rs)
        if r.caveat
    ]


def usage(results: dict[str, list[common.PerfResult]]) -> str:
    """CPU of client and server in each server's first round: shows who was the limit."""
    return "; ".join(f"{n}: {rs[0].usage()}" for n, rs in results.items() if rs)


def _headers(results: dict[str, list[common.PerfResult]], shown: Sequence[str]) -> list[str]:
    peers_ = [n for n in results if not n.startswith("node-dns")]
    return [
        "queries",
        *[f"per CPU-s / {p}" for p in peers_],
        *[f"{n} QPS" for n in shown],
        *[f"QPS / {p}" for p in peers_],
        "Go peer / NSD (QPS)",
        "node-dns lost",
        "valid runs",
    ]


def _rows(
    label: str, results: dict[str, list[common.PerfResult]], ours: str, shown: Sequence[str], peer: str
) -> tuple[list[object], float]:
    """Our answers per CPU-second over each peer's (the headline), then QPS and QPS ratios."""
    names = [n for n in results if not n.startswith("node-dns")]
    mine = qps(results[ours])
    headline = validity.headline({n: per_cpu(rs) for n, rs in results.items()}, ours, "NSD")
    row: list[object] = [label]
    row += [ratio(per_cpu(results[ours]), per_cpu(results[n])) for n in names]
    row += [qps(results[n]) for n in shown]
    row += [ratio(mine, qps(results[n])) for n in names]
    runs = [r for n in [ours, *names] for r in results[n]]
    row += [peer, lost(results[ours]), f"{sum(not r.invalid for r in runs)}/{len(runs)}"]
    return row, headline


def _raw(result: common.PerfResult) -> dict[str, object]:
    return {
        "qps": result.qps,
        "per_cpu_second": result.per_cpu_second,
        "server_cpu_s": result.server_cpu_s,
        "client_cpu_s": result.client_cpu_s,
        "wall_s": result.wall_s,
        "client_core_busy": result.client_core_busy,
        "server_core_busy": result.server_core_busy,
        "invalid": result.invalid,
        "caveat": result.caveat,
    }


def run(plane: ControlPlane, opts: common.Options, parts: set[str]) -> list[Table]:
    areas = [common.area_name(i) for i in range(SMALL_AREAS)]
    common.populate(plane, common.node_specs(SMALL_NODES, SMALL_AREAS))
    mix = common.write_mix(opts.workdir / "mix-small.txt", areas)
    tables: list[Table] = []
    with fleet(plane, opts, areas, capped="tcp" in parts) as found:
        equivalence = (
            "all servers gave the same rcode, AA, TC, answer and authority on the sample queries"
            if not found.differences
            else "DIFFERENCES between servers:\n" + "\n".join(found.differences)
        )
        if "udp" in parts:
            udp_servers = found.only("node-dns", "NSD", "Knot")
            shown = list(udp_servers.ports)
            table = Table(f"UDP, {SMALL_NODES} nodes in {SMALL_AREAS} areas (dnsperf -c 1 -q 100)", [])
            for label, edns, peer in (("no EDNS", False, PEER_UDP), ("EDNS (-e)", True, PEER_UDP_EDNS)):
                results = measure(udp_servers, mix, opts, edns=edns)
                table.headers = _headers(results, shown)
                row, share = _rows(label, results, "node-dns", shown, f"{peer:.2f}x")
                table.rows.append(row)
                table.raw[label] = {n: [_raw(r) for r in rs] for n, rs in results.items()}
                value, met = validity.judged(  # from the runs the headline is made of
                    share,
                    0.9,
                    ours_bound=len(invalid_runs(results, "node-dns")),
                    reference_bound=len(invalid_runs(results, "NSD")),
                )
                if undriven_runs(results, "NSD"):
                    value += " (NSD not driven to its limit: likely optimistic)"
                table.raw.setdefault("summary", []).append(
                    (f"UDP answers per CPU-s / NSD, {label}", value, ">= 0.9x", met, f"{peer:.2f}x (QPS)")
                )
                table.notes.append(f"{label}: CPU in round 1: {usage(results)}")
                table.notes += [f"{label}: {line}" for line in invalid_runs(results)]
                table.notes += [f"{label}: {line}" for line in undriven_runs(results)]
                if opts.rounds > 1:
                    table.notes.append(f"{label}: QPS range over {opts.rounds} rounds: {spreads(results)}")
            table.notes += [
                "mix: positive A, positive AAAA, NXDOMAIN, NODATA (TXT), apex SOA in equal parts, "
                "every name in random case",
                "per CPU-s (the headline): answers per second of the server's own CPU time (user + "
                "system of its whole process tree), with the share of CPU 0 that other processes "
                "took out; a run is INVALID (client-bound) when the client's core was >= "
                f"{validity.SATURATED:.0%} busy while the server's core was >= {validity.SPARE:.0%} idle; "
                "the ratio is INVALID when NSD's runs were, a lower bound when only node-dns' were "
                "(a server below its limit spends more CPU per answer)",
                equivalence,
                common.load_note(),
            ]
            tables.append(table)
        if "tcp" in parts:
            results = measure(found, mix, opts, tcp=True, clients=8)
            shown = list(found.ports)
            table = Table("TCP, 8 connections (dnsperf -m tcp -c 8)", _headers(results, shown))
            for ours, label in (("node-dns", "defaults"), (OURS_CAPPED, "1,000 queries per connection")):
                row, share = _rows(label, results, ours, shown, f"{PEER_TCP:.2f}x")
                if ours == "node-dns":
                    value, met = validity.judged(
                        share,
                        1.0,
                        ours_bound=len(invalid_runs(results, "node-dns")),
                        reference_bound=len(invalid_runs(results, "NSD")),
                    )
                    table.raw["summary"] = [
                        (
                            "TCP answers per CPU-s / NSD, 8 connections",
                            value,
                            ">= 1.0x",
                            met,
                            f"{PEER_TCP:.2f}x (QPS)",
                        )
                    ]
                table.rows.append(row)
            table.raw["tcp"] = {n: [_raw(r) for r in rs] for n, rs in results.items()}
            table.notes.append(f"CPU in round 1: {usage(results)}")
            table.notes += invalid_runs(results)
            if opts.rounds > 1:
                table.notes.append(f"QPS range over {opts.rounds} rounds: {spreads(results)}")
            cap = f"closes a connection after {DEFAULT_CAP} answers" if DEFAULT_CAP else "has no cap"
            table.notes += [
                f"defaults: node-dns {cap} on queries per connection; NSD and Knot have none. "
                f"'{OURS_CAPPED}' (--tcp-max-queries=1000) and '{CAPPED}' (tcp-query-count: 1000) "
                "close each connection after 1,000 answers and drop the queries pipelined behind "
                "it; dnsperf reconnects but waits out its 2 s timeout for each dropped query, so "
                "capped figures vary from run to run",
                common.load_note(),
            ]
            tables.append(table)
    return tables
