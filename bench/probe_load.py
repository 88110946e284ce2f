"""Helpers run as their own processes by bench.probes: a listener for many loopback addresses,
and the prober alone against them (its CPU is what the bench measures).

``python -m bench.probe_load listen --base 127.1.0.0 --count N --port P [--kind dns]``
``python -m bench.probe_load probe --base 127.1.0.0 --count N --port P --seconds 20 [--kind dns]``

``--kind dns``: the listener answers every question NOERROR from one UDP socket per address,
the prober asks ``probe.test``/A (``dns:P:probe.test``) instead of connecting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import selectors
import socket
import struct
import sys
import time

import psutil

from node_dns.settings import probe_spec
from node_dns.sources.probes.prober import Prober, Target


def addresses(base: str, count: int) -> list[str]:
    """``count`` loopback addresses from ``base`` on, skipping .0 and .255 of each /24."""
    start = int(ipaddress.IPv4Address(base))
    found: list[str] = []
    n = 0
    while len(found) < count:
        ip = ipaddress.IPv4Address(start + n)
        n += 1
        if ip.packed[3] in (0, 255):
            continue
        assert ip.is_loopback, f"{ip} is not a loopback address"
        found.append(str(ip))
    return found


def listen_dns(base: str, count: int, port: int) -> None:
    selector = selectors.DefaultSelector()
    for address in addresses(base, count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            with_socket: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                data, client = with_socket.recvfrom(512)
            except BlockingIOError:
                continue
            if len(data) >= 12:
                (query_id,) = struct.unpack_from("!H", data)
                answer = struct.pack("!HHHHHH", query_id, 0x8400, 1, 0, 0, 0) + data[12:]
                with_socket.sendto(answer, client)


def listen(base: str, count: int, port: int, sweep: float = 0.0) -> None:
    """Accept (and close) every connection to ``port`` on ``count`` addresses.

    ``sweep`` > 0: nobody waits on the listening sockets; every ``sweep`` seconds one pass
    accepts whatever the kernel has queued. The kernel completes each handshake either way (all
    a TCP probe needs), but no connection wakes this process, which matters when it shares a CPU
    with the load generator: a remote target's wake-ups happen on its own machine.
    """
    sockets = []
    for address in addresses(base, count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(1024)
        sock.setblocking(False)
        sockets.append(sock)
    print("ready", flush=True)
    if sweep > 0:
        while True:
            time.sleep(sweep)
            for sock in sockets:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        conn, _ = sock.accept()
                        conn.close()
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            with_socket: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                conn, _ = with_socket.accept()
                conn.close()
            except BlockingIOError:
                pass


async def probe(
    base: str, count: int, port: int, interval: float, seconds: float, warmup: float, kind: str = "tcp"
) -> dict[str, float]:
    timing = probe_spec.Timing(interval=interval, timeout=min(1.0, interval), rise=2, fall=2, jitter=1.0)
    spec = probe_spec.parse(f"dns:{port}:probe.test" if kind == "dns" else f"tcp:{port}", timing=timing)
    prober = Prober(concurrency=256)
    targets = [
        Target(f"node-{i:05d}", ipaddress.ip_address(a), spec, frozenset({"bench"}))
        for i, a in enumerate(addresses(base, count))
    ]
    prober.update([], targets)
    task = asyncio.create_task(prober.run())
    me = psutil.Process()
    await asyncio.sleep(warmup)  # the first round, then steady state
    times0, probes0, wall0 = me.cpu_times(), prober.stats.probes, time.monotonic()
    failures0 = prober.stats.areas["bench"].results["failure"]
    await asyncio.sleep(seconds)
    times1, probes1, wall1 = me.cpu_times(), prober.stats.probes, time.monotonic()
    task.cancel()
    stats = prober.stats.areas["bench"]
    return {
        "targets": count,
        "cpu_seconds": (times1.user + times1.system) - (times0.user + times0.system),
        "system_seconds": times1.system - times0.system,
        "wall_seconds": wall1 - wall0,
        "probes": probes1 - probes0,
        "failures": stats.results["failure"] - failures0,
        "skipped": prober.stats.skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["listen", "probe"])
    parser.add_argument("--base", default="127.1.0.1")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--kind", choices=["tcp", "dns"], default="tcp")
    parser.add_argument("--sweep", type=float, default=0.0, help="tcp listen: accept in passes")
    args = parser.parse_args()
    if args.mode == "listen":
        if args.kind == "dns":
            listen_dns(args.base, args.count, args.port)
        else:
            listen(args.base, args.count, args.port, args.sweep)
        return
    import uvloop

    result = uvloop.run(
        probe(args.base, args.count, args.port, args.interval, args.seconds, args.warmup, args.kind)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
