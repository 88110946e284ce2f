"""/metrics written in slices: the same bytes as prometheus_client's ``generate_latest``, with the
event loop running between the slices; the process metrics read in a worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from node_dns import gcpolicy, loop_lag
from node_dns.answer import stats as answer_stats
from node_dns.sinks import exposition, http, metrics, process_readings
from node_dns.sources import nodes
from tests.unit.zonekit import facts, metrics_inputs, synced_zone

AREAS = 300
"""More areas than samples in one piece: the per-area families are written in pieces."""


class FixedProcess:
    """Process metrics that do not move between two scrapes (CPU time would)."""

    def collect(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("process_resident_memory_bytes", "Resident memory in bytes.", value=1e8)]


def node_dns_registry() -> CollectorRegistry:
    zone = synced_zone(
        facts(f"n{i:04d}", [f"area-{i % AREAS:03d}"], [f"10.0.{i // 250}.{i % 250 + 1}"], ready=i % 7 != 0)
        for i in range(1200)
    )
    queries = answer_stats.QueryStats(metrics.DURATION_BUCKETS)
    queries.responses[("udp", "A", "NOERROR")] = 12
    source = nodes.SourceStats(events={"LISTED": 1200, "MODIFIED": 3}, lists={"ok": 2})
    inputs = metrics_inputs(
        zone,
        queries=queries,
        source=source,
        tcp_connections=lambda: 2,
        loop_lag=loop_lag.LagMonitor(metrics.LAG_BUCKETS),
        gc_pauses=gcpolicy.Pauses(metrics.LAG_BUCKETS).histograms,
        udp_kernel_drops=lambda: 5,
        udp_receive_buffer=lambda: 4 << 20,
        udp_path="c",
    )
    registry = metrics.registry(inputs, process=FixedProcess())
    # prometheus_client's own metrics carry _created samples, which the formatter moves.
    Counter("example_things", "Things.", ["kind"], registry=registry).labels("a").inc(3)
    Histogram("example_seconds", "Durations.", registry=registry).observe(0.2)
    return registry


async def test_the_text_written_in_slices_is_the_text_of_generate_latest() -> None:
    registry = node_dns_registry()

    sliced = await exposition.render(registry)

    assert sliced == generate_latest(registry)
    assert sliced.count(b"# HELP node_dns_area_nodes ") == 1
    assert sliced.count(b"node_dns_area_nodes{") == AREAS


async def test_the_loop_runs_between_the_slices() -> None:
    registry = node_dns_registry()
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    ticks = iter(range(10**6))  # each reading of the clock is a second later: every piece ends a slice
    await exposition.render(registry, budget=1, clock=lambda: float(next(ticks)))
    other.cancel()

    pieces = sum(1 for family in registry.collect() for _ in exposition.pieces(family))
    assert turns - before >= pieces - 1


def test_a_family_with_many_samples_is_written_in_pieces_with_one_header() -> None:
    family = GaugeMetricFamily("example_per_area", "One per area.", labels=["area"])
    for i in range(450):
        family.add_metric([f"a{i}"], i)

    written = list(exposition.pieces(family, size=200))

    assert len(written) == 3
    assert written[0].startswith(b"# HELP example_per_area One per area.\n# TYPE example_per_area gauge\n")
    assert not written[1].startswith(b"#") and not written[2].startswith(b"#")
    assert b"".join(written) == generate_latest(OneFamily(family))


class OneFamily:
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family


class ThreadNoted(process_readings.ProcessReadings):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def _read(self) -> list[Metric]:
        self.threads.append(threading.get_ident())
        return super()._read()


def names(families: Iterable[Metric]) -> list[str]:
    return [family.name for family in families]


async def test_process_metrics_are_read_in_a_worker_thread_before_the_scrape() -> None:
    readings = ThreadNoted()

    await readings.refresh()
    served = list(readings.collect())

    assert readings.threads and readings.threads[0] != threading.get_ident()
    assert names(served) == names(ProcessCollector(registry=None).collect())
    assert "process_resident_memory_bytes" in names(served)


async def test_a_reading_is_served_once_and_a_scrape_without_one_reads_in_place() -> None:
    readings = ThreadNoted()
    await readings.refresh()

    first, second = list(readings.collect()), list(readings.collect())

    assert names(first) == names(second)
    assert readings.threads[1] == threading.get_ident()


async def test_the_http_server_answers_metrics_and_pages_written_in_slices() -> None:
    registry = node_dns_registry()
    page = [f"line {i}\n" for i in range(5000)]
    runner, port = await http.start(
        "127.0.0.1",
        0,
        live=lambda: (True, {}),
        ready=lambda: (True, {}),
        registry=registry,
        extra_routes={"/debug/lines": lambda: iter(page)},
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                scraped = await response.read()
            async with session.get(f"http://127.0.0.1:{port}/debug/lines") as response:
                text = await response.text()
                kind = response.headers["Content-Type"]
    finally:
        await runner.cleanup()

    assert scraped == generate_latest(registry)
    assert text == "".join(page)
    assert kind == "text/plain; charset=utf-8"
