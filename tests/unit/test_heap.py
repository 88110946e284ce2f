"""Giving freed heap memory back: present on glibc (this machine and the image), harmless as a task."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading

from node_dns import heap
from tests.unit.virtual_clock import until, virtual_time


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_malloc_trim_gives_freed_heap_pages_back_on_glibc() -> None:
    """Freed chunks between live ones stay resident until trimmed (free() only trims the top)."""
    trim = heap.trimmer()
    assert trim is not None
    chunks = [bytes(1500) for _ in range(40_000)]  # ~60 MB from malloc's heap, not pymalloc/mmap
    survivors = chunks[::16]  # one live chunk every ~24 KB keeps the heap from shrinking by itself
    del chunks
    before = _resident_bytes()

    released = trim()

    assert released == 1
    assert before - _resident_bytes() > 20 * 2**20
    assert len(survivors) == 2_500


@virtual_time
async def test_the_periodic_trim_keeps_running_until_cancelled() -> None:
    calls: list[float] = []

    def trim() -> int:
        calls.append(asyncio.get_running_loop().time())
        return 0

    task = asyncio.create_task(heap.trim_periodically(trim, interval=30.0, first=2.0, off_loop=False))
    await until(lambda: len(calls) >= 3, within=100.0)

    assert not task.done()
    assert [round(b - a, 6) for a, b in itertools.pairwise(calls)] == [30.0, 30.0]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _first_trim_thread() -> int:
    done = asyncio.Event()
    threads: list[int] = []

    def trim() -> int:
        threads.append(threading.get_ident())
        loop.call_soon_threadsafe(done.set)
        return 0

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(heap.trim_periodically(trim, interval=30.0, first=0.0))
    await done.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return threads[0]


def test_the_periodic_trim_runs_off_the_event_loop_thread() -> None:
    assert asyncio.run(_first_trim_thread()) != threading.get_ident()
