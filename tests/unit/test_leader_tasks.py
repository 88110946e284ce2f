"""Leader-only tasks: started on begin(), cancelled at once on end(), restarted after a failure.

Each test runs on a virtual clock (tests/unit/virtual_clock.py): "nothing started" is checked
after :func:`settle` (every task ran as far as it could), not after a guessed sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from node_dns.leader import LeaderTasks
from tests.unit import virtual_clock
from tests.unit.virtual_clock import settle, virtual_time


async def until(predicate: Callable[[], object], within: float = 1.0) -> None:
    await virtual_clock.until(predicate, within)


@asynccontextmanager
async def leader_tasks() -> AsyncIterator[LeaderTasks]:
    registry = LeaderTasks(restart_delay=0.05)
    try:
        yield registry
    finally:
        for runner in registry.start():
            runner.cancel()
        await asyncio.sleep(0)


@virtual_time
async def test_tasks_wait_for_leadership_and_stop_at_once() -> None:
    async with leader_tasks() as tasks:
        events: list[str] = []
        stops: list[asyncio.Event] = []

        async def forever(stop: asyncio.Event) -> None:
            stops.append(stop)
            events.append("start")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        tasks.register("forever", forever)
        tasks.start()
        await settle()
        assert events == []

        tasks.begin()
        await until(lambda: events == ["start"])
        assert tasks.running() == ["forever"]

        tasks.end()
        assert stops[0].is_set()  # set synchronously by end()
        assert await tasks.wait_stopped(0.5)
        assert events == ["start", "cancelled"]
        assert tasks.running() == []


@virtual_time
async def test_each_term_gets_a_fresh_start_and_stop_flag() -> None:
    async with leader_tasks() as tasks:
        stops: list[asyncio.Event] = []

        async def record(stop: asyncio.Event) -> None:
            stops.append(stop)
            await stop.wait()

        tasks.register("record", record)
        tasks.start()
        for term in range(3):
            tasks.begin()
            await until(lambda term=term: len(stops) == term + 1)
            tasks.end()
            assert await tasks.wait_stopped(0.5)
        assert len({id(s) for s in stops}) == 3
        assert all(s.is_set() for s in stops)


@virtual_time
async def test_a_failing_task_is_restarted_while_leading() -> None:
    async with leader_tasks() as tasks:
        runs: list[int] = []

        async def flaky(stop: asyncio.Event) -> None:
            runs.append(1)
            if len(runs) < 3:
                raise RuntimeError("boom")
            await stop.wait()

        tasks.register("flaky", flaky)
        tasks.start()
        tasks.begin()
        await until(lambda: len(runs) == 3)
        assert tasks.running() == ["flaky"]
        tasks.end()
        assert await tasks.wait_stopped(0.5)


@virtual_time
async def test_a_task_that_returns_is_done_for_the_term() -> None:
    async with leader_tasks() as tasks:
        runs: list[int] = []

        async def once(stop: asyncio.Event) -> None:
            runs.append(1)

        tasks.register("once", once)
        tasks.start()
        tasks.begin()
        await until(lambda: runs == [1])
        await asyncio.sleep(0.1)  # virtual: twice the restart delay passes, nothing restarts
        assert runs == [1]
        tasks.end()
        tasks.begin()
        await until(lambda: runs == [1, 1])


@virtual_time
async def test_begin_then_end_before_the_runner_wakes_runs_nothing() -> None:
    async with leader_tasks() as tasks:
        runs: list[int] = []

        async def work(stop: asyncio.Event) -> None:
            runs.append(1)

        tasks.register("work", work)
        tasks.start()
        await settle()
        tasks.begin()
        tasks.end()
        await settle()
        await asyncio.sleep(0.05)  # virtual: past the restart delay too
        assert runs == []


@virtual_time
async def test_several_tasks_run_side_by_side() -> None:
    async with leader_tasks() as tasks:

        async def wait(stop: asyncio.Event) -> None:
            await stop.wait()

        tasks.register("one", wait)
        tasks.register("two", wait)
        tasks.start()
        tasks.begin()
        await until(lambda: sorted(tasks.running()) == ["one", "two"])
        tasks.end()
        assert await tasks.wait_stopped(0.5)


def test_registering_after_start_is_refused() -> None:
    async def scenario() -> None:
        registry = LeaderTasks()

        async def noop(stop: asyncio.Event) -> None:
            return None

        registry.register("a", noop)
        runners = registry.start()
        with pytest.raises(RuntimeError):
            registry.register("b", noop)
        for runner in runners:
            runner.cancel()

    asyncio.run(scenario())
