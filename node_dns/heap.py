"""Freed heap memory given back to the operating system, now and then.

A node list of 5,000 Nodes is tens of MB of JSON and dicts that live for a fraction of a second
(node-dns' own paged list at start and on every resync, kopf's unpaged listing of the watch).
glibc keeps most of that freed memory in its arenas, so RSS stays at the high-water mark of the
last list: ~30 MB above the live data at 5,000 nodes. ``malloc_trim(0)`` returns the free pages;
it walks the heap in a few milliseconds, so it runs on a timer, not after each event. Without
glibc (musl, macOS) there is nothing to call: :func:`trimmer` says so and the application does
not start the task at all (a task that ended would read as a dead process on /healthz).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

INTERVAL = 30.0
FIRST = 2.0
"""The first trim comes soon after start: what imports and the first node list left freed."""


def trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None where it does not exist."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


async def trim_periodically(
    trim: Callable[[], int], interval: float = INTERVAL, first: float = FIRST, *, off_loop: bool = True
) -> None:
    """Call ``trim`` (from :func:`trimmer`) now and then, forever.

    ``off_loop``: in a worker thread. ctypes lets go of the GIL for the call, so the walk of the
    heap (milliseconds after a large list) no longer holds the event loop and the queries behind it;
    the loop only waits if it needs the allocator's lock at that moment.
    """
    await asyncio.sleep(first)
    while True:
        if off_loop:
            await asyncio.to_thread(trim)
        else:
            trim()
        await asyncio.sleep(interval)
