"""Giving freed heap memory back: present on glibc (this machine and the image), harmless as a task."""

from __future__ import annotations

import asyncio
import contextlib
import os

from node_dns import heap


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


async def test_the_periodic_trim_keeps_running_until_cancelled() -> None:
    task = asyncio.create_task(heap.trim_periodically(lambda: 0, interval=0.01, first=0.01))
    await asyncio.sleep(0.05)

    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
