"""The process metrics (CPU, memory, open files), read in a worker thread before each scrape.

``prometheus_client``'s process collector opens and reads /proc/self/stat and /proc/self/limits
and lists /proc/self/fd: system calls, during which the event loop thread gives up the GIL and
then waits to take it back. On the loaded test machine a scrape was seen holding the loop 8-21 ms
there. The same collector runs in a thread here (its Python part is a few tens of µs, the rest
releases the GIL), and the scrape serves the families it returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from prometheus_client import ProcessCollector
from prometheus_client.core import Metric


class ProcessReadings(ProcessCollector):
    """``ProcessCollector`` whose readings are taken by :meth:`refresh` (await it before a
    scrape); each reading is served once, and a scrape without one reads in place."""

    def __init__(self) -> None:
        super().__init__(registry=None)
        self._taken: list[Metric] | None = None

    async def refresh(self) -> None:
        self._taken = await asyncio.to_thread(self._read)

    def _read(self) -> list[Metric]:
        return list(super().collect())

    def collect(self) -> Iterable[Metric]:
        taken, self._taken = self._taken, None
        return taken if taken is not None else self._read()
