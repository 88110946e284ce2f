"""Garbage collection for a long-lived server that answers from one event loop.

CPython frees almost everything by reference counting; the cyclic collector exists for the
rest, and a full (generation 2) collection walks every tracked object while the loop waits.
With 5,000 nodes listed that is ~80,000 objects and 20-30 ms here (more with kopf and aiohttp
loaded) -- six times the 5 ms stall budget, and at 60,000 queries/s ~1,500 queries queued in the
socket. Two changes keep it off the receive path:

- After the first complete list the heap is collected once and frozen (``gc.freeze``): modules,
  kopf, aiohttp and the first zone move to the permanent generation, which no later collection
  walks. Objects frozen stay freed by reference counting when dropped (node facts, snapshots and
  listed JSON hold no cycles); only cyclic garbage frozen by mistake would stay, which is why
  the freeze happens right after a collection, at start-up only: after node-dns' first list and
  once more when the watch (kopf) has delivered every node (its per-object state is start-up
  heap too; collections of up to 50 ms were seen while flipping at 5,000 nodes on the loaded
  test machine, where run-queue waits inflate every wall-clock figure).
- Young collections stay small (:data:`THRESHOLDS`). Per-query objects die by reference
  counting and never reach the collector, but every watch event does not: kopf wraps each object
  in body and patch views that point back at their owners, so the whole decoded Node (~10 KB of
  JSON from a kubelet) is freed by the collector. A young collection's pause is therefore the
  garbage it frees: with a first generation of 10,000 it freed ~115 Node events at a time, 8-10 ms
  every ~2 s at 50 changes/s and 5,000 nodes (measured in-process with a ``gc.callbacks`` timer);
  at 1,000 it frees a tenth as much each time, under ~2-3 ms on the same run. kopf's per-object
  workers are let go after half a second (``sources/watch.py``), so fewer Nodes are still
  referenced when a collection promotes what survives to the older generations.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from node_dns.answer.stats import Histogram

log = logging.getLogger("node_dns")

THRESHOLDS = (1_000, 10, 10)
"""gen0 allocations, gen1 and gen2 collection ratios (CPython's default: 700, 10, 10): near the
default, since the first generation's size is what one pause frees."""


def tune() -> None:
    """Set the collection thresholds for serving: call once at start."""
    gc.set_threshold(*THRESHOLDS)


def freeze() -> float:
    """Collect once, then move every surviving object to the permanent generation; returns seconds.

    Call once, when the startup heap is in place (after the first complete list).
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    spent = time.perf_counter() - started
    log.info(
        "startup heap frozen for the garbage collector: %d objects, %.1f ms",
        gc.get_freeze_count(),
        spent * 1e3,
    )
    return spent


class Pauses:
    """CPU time each collection took, per generation (``gc.callbacks``: one call per collection).

    The thread's CPU clock, not the wall clock: this is the collector's own cost, which a busy
    machine does not inflate (the loop-lag histogram shows the wall-clock effect of everything).
    """

    def __init__(self, bounds: Sequence[float], clock: Callable[[], float] = time.thread_time) -> None:
        self.histograms = {generation: Histogram(bounds) for generation in (0, 1, 2)}
        self._clock = clock
        self._started = 0.0
        self.spent = 0.0
        """CPU seconds of every collection so far (the stall watch compares it across a stall)."""

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
        else:
            took = self._clock() - self._started
            self.spent += took
            self.histograms[info["generation"]].observe(took)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
