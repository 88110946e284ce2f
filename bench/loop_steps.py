"""The longest single step of node-dns' event loop while it serves a scrape or takes a re-list.

    python -m bench.loop_steps scrape [--path /metrics] [--scrapes 30]
    python -m bench.loop_steps relist [--nodes 5000] [--rounds 3]

In-process, no DNS load: a ticker task gives the loop back continuously (``asyncio.sleep(0)``),
so the longest gap between two of its turns is the longest step anything else took. Each gap is
also measured in the loop thread's CPU time, less the CPU of garbage collections that ran in it
(timed by a ``gc.callbacks`` hook): the step's own work, whatever else the machine was doing.

``scrape``: 5,000 nodes in 100 areas in a zone, node-dns' real registry and HTTP server (and
/debug/zone with ``--path``), scraped by curl from another process; the startup heap frozen as
node-dns freezes it. ``relist``: an apiserver (tests/harness) with 5,000 kubelet-shaped nodes
(bench/heavy_nodes.py); in a fresh process per run, node-dns' Lister takes the first list and
then ``--rounds`` resyncs; RSS after each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvloop

from node_dns import app, gcpolicy, kube, loop_lag
from node_dns.sinks import http, metrics, process_readings
from node_dns.sources import lister, nodes
from tests.unit import zonekit

KEPT = 0.0002
"""Gaps shorter than this (seconds, wall) are not kept."""


@dataclass
class Steps:
    """Gaps between the ticker's turns while recording: wall, loop-thread CPU, CPU less GC."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    own: list[float] = field(default_factory=list)
    recording: bool = False
    epoch: int = 0
    stop: bool = False
    gc_cpu: float = 0.0
    _gc_started: float = 0.0

    def on_gc(self, phase: str, _: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self.gc_cpu += time.thread_time() - self._gc_started

    async def tick(self) -> None:
        last, last_cpu, last_gc = time.perf_counter(), time.thread_time(), self.gc_cpu
        epoch = -1
        while not self.stop:
            await asyncio.sleep(0)
            now, now_cpu, now_gc = time.perf_counter(), time.thread_time(), self.gc_cpu
            # A gap counts if inside one recording, and only the long ones are kept: appending
            # every turn would grow lists of millions whose reallocation is itself a long step.
            if self.recording and epoch == self.epoch and now - last > KEPT:
                self.wall.append(now - last)
                self.cpu.append(now_cpu - last_cpu)
                self.own.append(now_cpu - last_cpu - (now_gc - last_gc))
            last, last_cpu, last_gc = now, now_cpu, now_gc
            epoch = self.epoch if self.recording else -1

    def report(self) -> str:
        def top(values: list[float]) -> str:
            ranked = sorted(values, reverse=True) or [0.0]
            return f"{ranked[0] * 1e3:.2f} ms (5th {ranked[min(4, len(ranked) - 1)] * 1e3:.2f})"

        text = f"longest step: wall {top(self.wall)}, CPU {top(self.cpu)}, CPU less GC {top(self.own)}"
        self.wall.clear(), self.cpu.clear(), self.own.clear()
        return text


async def recorded(steps: Steps, work: Callable[[], Any]) -> None:
    steps.recording = True
    steps.epoch += 1
    try:
        await work()
    finally:
        steps.recording = False


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- scrape ---------------------------------------------------------------------------------------


async def scrape(path: str, scrapes: int, nodes_: int = 5000, areas: int = 100) -> None:
    settings = zonekit.settings(debug_endpoints=True)
    zone = zonekit.new_zone(settings)
    zone.replace_all(
        [
            (zonekit.facts(f"node-{i:05d}", [f"area-{i % areas:03d}"], [f"10.{i // 250}.{i % 250}.1"]), "1")
            for i in range(nodes_)
        ],
        "1",
    )
    inputs = zonekit.metrics_inputs(
        zone,
        loop_lag=loop_lag.LagMonitor(metrics.LAG_BUCKETS),
        gc_pauses=gcpolicy.Pauses(metrics.LAG_BUCKETS).histograms,
        udp_kernel_drops=lambda: 0,
        udp_receive_buffer=lambda: 1 << 22,
        udp_path="c",
    )
    process = process_readings.ProcessReadings()
    runner, port = await http.start(
        "127.0.0.1",
        0,
        live=lambda: (True, {}),
        ready=lambda: (True, {}),
        registry=metrics.registry(inputs, process=process),
        extra_routes=app.debug_routes(settings, zone),
        before_metrics=process.refresh,
    )
    gcpolicy.tune()
    gcpolicy.freeze()
    steps = Steps()
    gc.callbacks.append(steps.on_gc)
    ticker = asyncio.create_task(steps.tick())
    url = f"http://127.0.0.1:{port}{path}"
    await _finished(_curl([url]))  # the first request: lazy imports, the worker thread started
    child = _curl([url] * scrapes)  # started before recording: its fork is not one of the steps
    await recorded(steps, lambda: _finished(child))
    print(f"{path}, {scrapes} scrapes at {nodes_} nodes in {areas} areas: {steps.report()}", flush=True)
    steps.stop = True
    await ticker
    await runner.cleanup()


def _curl(urls: list[str]) -> subprocess.Popen[bytes]:
    """curl in another process, one URL after the other."""
    script = "sleep 0.1; " + "; ".join(f"curl -s -o /dev/null {url}; sleep 0.05" for url in urls)
    return subprocess.Popen(["sh", "-c", script])


async def _finished(child: subprocess.Popen[bytes]) -> None:
    while child.poll() is None:  # noqa: ASYNC110 - a child process, not an asyncio event
        await asyncio.sleep(0.01)


# --- relist ---------------------------------------------------------------------------------------


async def relist_child(kubeconfig: str, rounds: int) -> None:
    gcpolicy.tune()
    client = kube.Client(kube.CredentialsLoader(kubeconfig))
    zone = zonekit.new_zone(zonekit.settings())
    source = nodes.NodeSource(zone, nodes.Keys(areas="example.net/node-areas", ips="example.net/node-ips"))
    node_lister = lister.Lister(source, client, resync_interval=300)
    started = time.perf_counter()
    await node_lister.list_once()
    took = time.perf_counter() - started
    print(f"first list: {len(zone.facts.nodes)} nodes in {took:.2f} s; RSS {rss_mb():.1f} MB", flush=True)
    gcpolicy.freeze()
    steps = Steps()
    gc.callbacks.append(steps.on_gc)
    ticker = asyncio.create_task(steps.tick())
    for number in range(rounds):
        started = time.perf_counter()
        await recorded(steps, node_lister.list_once)
        took = time.perf_counter() - started
        print(f"resync {number + 1}: {took:.2f} s; {steps.report()}; RSS {rss_mb():.1f} MB", flush=True)
    steps.stop = True
    await ticker
    await client.close()


def relist(nodes_: int, rounds: int) -> None:
    from bench import common, heavy_nodes
    from tests.harness.controlplane import ControlPlane

    with ControlPlane() as plane:
        heavy_nodes.populate(plane, common.node_specs(nodes_, 100))
        print(f"{nodes_} kubelet-shaped nodes in 100 areas; load average {os.getloadavg()}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "bench.loop_steps", "relist-child", str(plane.kubeconfig), str(rounds)],
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=("scrape", "relist", "relist-child"))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--path", default="/metrics")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    print(f"load average {os.getloadavg()}", flush=True)
    if opts.what == "scrape":
        uvloop.run(scrape(opts.path, opts.scrapes))
    elif opts.what == "relist":
        relist(opts.nodes, opts.rounds)
    else:
        uvloop.run(relist_child(opts.args[0], int(opts.args[1])))


if __name__ == "__main__":
    main()
