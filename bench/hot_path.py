"""CPU per cached UDP answer, in process: the responder alone, and the batched transport's loop.

    .venv/bin/python -m bench.hot_path [--rounds 200]

No apiserver, no dnsperf: the bench's query mix (10 nodes in 2 areas, five kinds of query,
names in random case) is answered from a warm cache. "respond" times ``Responder.respond`` per
query; "batch" sends 64 queries over loopback and times one call of the batched listener's
reader (recvmmsg, answer, sendmmsg: the kernel's part included), for the pure-Python batch and
for the compiled one (``_fastudp``, when built). Times are thread CPU time, so other
load on the machine changes them far less than wall-clock figures; each is the best of
``--rounds`` to keep the figure of the code rather than of the neighbours. This is the measure
used to choose between hot-path variants; dnsperf against NSD (``python -m bench --only udp``)
is the one that counts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import common, peers
from node_dns import model
from node_dns.answer import responder as responder_mod
from node_dns.transports import accel, batch
from node_dns.transports.state import TransportState
from node_dns.zone import snapshot
from node_dns.zone.config import zone_config
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone

TYPES = {"A": 1, "AAAA": 28, "TXT": 16, "SOA": 6}


def zone_snapshot(nodes: int = 10, areas: int = 2) -> snapshot.Snapshot:
    values = peers.settings()
    zone = Zone(zone_config(values), Policy())
    facts = [
        model.NodeFacts(
            name=f"node-{i:05d}",
            areas=frozenset({common.area_name(i % areas)}),
            ips=(ipaddress.ip_address(common.ipv4(i)), ipaddress.ip_address(common.ipv6(i))),
            ready=True,
        )
        for i in range(nodes)
    ]
    zone.replace_all([(f, "1") for f in facts], "1")
    return zone.snapshot


def packets(edns: bool, count: int = 2000) -> list[bytes]:
    """The bench's mix as wire queries with random IDs."""
    rng = random.Random(7)
    areas = [common.area_name(i) for i in range(2)]
    with tempfile.TemporaryDirectory(prefix="node-dns-hot-") as tmp:
        mix = common.write_mix(Path(tmp) / "mix.txt", areas, lines=count)
        lines = mix.path.read_text().splitlines()
    out = []
    for line in lines:
        name, qtype = line.split()
        out.append(
            common.query_bytes(name, TYPES[qtype], qid=rng.randrange(65536), edns=1232 if edns else None)
        )
    return out


def best_respond(responder: responder_mod.Responder, queries: Sequence[bytes], rounds: int) -> float:
    """Best CPU seconds per query of ``respond`` over the warm mix."""
    respond = responder.respond
    for data in queries:
        respond(data)
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        for data in queries:
            respond(data)
        best = min(best, (time.thread_time() - started) / len(queries))
    return best


def best_batch(
    responder: responder_mod.Responder, queries: Sequence[bytes], rounds: int, *, compiled: bool
) -> float:
    """Best CPU seconds per query of one reader call answering a full batch over loopback."""
    loop = asyncio.new_event_loop()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.setblocking(False)
    server.bind(("127.0.0.1", 0))
    forced = os.environ.pop(accel.OFF, None)
    if not compiled:
        os.environ[accel.OFF] = "1"
    try:
        transport = batch.BatchedUdp(server, responder, TransportState(), loop)
    finally:
        os.environ.pop(accel.OFF, None)
        if forced is not None:
            os.environ[accel.OFF] = forced
    if transport.path != ("c" if compiled else "python"):
        wanted = "compiled" if compiled else "Python"
        raise SystemExit(f"wanted the {wanted} batch: {transport.choice.reason}")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    client.connect(server.getsockname())
    best = float("inf")
    try:
        for n in range(rounds + 1):
            chunk = [queries[(n * batch.BATCH + i) % len(queries)] for i in range(batch.BATCH)]
            for data in chunk:
                client.send(data)
            started = time.thread_time()
            transport._on_readable()
            spent = time.thread_time() - started
            for _ in chunk:
                client.recv(4096)
            if n:  # the first batch warms the cache
                best = min(best, spent / batch.BATCH)
    finally:
        transport.close()
        client.close()
        loop.close()
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    snap = zone_snapshot()
    compiled = accel.choose().module is not None
    print("| queries | respond, us/query | batch of 64, Python, us/query | batch of 64, C, us/query |")
    print("|---|---|---|---|")
    for label, edns in (("no EDNS", False), ("EDNS", True)):
        queries = packets(edns)
        one = best_respond(responder_mod.Responder(snap), queries, args.rounds)
        py = best_batch(responder_mod.Responder(snap), queries, args.rounds, compiled=False)
        c = (
            f"{best_batch(responder_mod.Responder(snap), queries, args.rounds, compiled=True) * 1e6:.2f}"
            if compiled
            else "not built"
        )
        print(f"| {label} | {one * 1e6:.2f} | {py * 1e6:.2f} | {c} |")
    print(f"\n{common.load_note()}; best of {args.rounds} rounds, thread CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
