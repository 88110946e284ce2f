"""A complete node list is read into facts in slices, with the event loop running in between."""

from __future__ import annotations

import asyncio

from node_dns.sources import nodes
from tests.unit.test_parsing import KEYS, Sink, node
from tests.unit.virtual_clock import settle, virtual_time


@virtual_time
async def test_other_work_runs_between_slices_and_the_zone_gets_one_complete_list() -> None:
    sink = Sink()
    source = nodes.NodeSource(sink, KEYS)
    items = [node(f"n{i}", "home", f"192.0.2.{i + 1}", version=str(i + 1)) for i in range(250)]
    ticks: list[int] = []

    async def other_work() -> None:
        while True:
            ticks.append(len(sink.lists))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await source.on_list_sliced(items, "300", size=100)
    other.cancel()
    await settle()

    ((listed, version),) = sink.lists
    assert version == "300"
    assert [f.name for f, _ in listed] == [f"n{i}" for i in range(250)]
    assert ticks.count(0) >= 3  # ran between the slices, before the one replace
