"""Giving freed heap memory back: present on glibc (this machine and the image), harmless as a task."""

from __future__ import annotations

import asyncio
import contextlib

from node_dns import heap


def test_malloc_trim_is_found_and_callable_on_glibc() -> None:
    trim = heap.trimmer()

    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released, 0: there was nothing to release


async def test_the_periodic_trim_keeps_running_until_cancelled() -> None:
    task = asyncio.create_task(heap.trim_periodically(interval=0.01, first=0.01))
    await asyncio.sleep(0.05)

    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
