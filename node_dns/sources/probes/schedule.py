"""When each target is due: a fixed interval per target, phases spread over the interval.

A target's phase is derived from a hash of its key, so probes of many targets spread evenly
over the interval (no burst every ``interval`` seconds) and the spread is the same on every
start. Due times advance by whole intervals from the phase, not from when a probe finished, so a
slow probe does not drift its target; a target whose previous probe is still running skips
that turn rather than piling up. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def phase(key: object, interval: float, jitter: float) -> float:
    """Stable offset in [0, jitter * interval) for ``key``."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval * jitter


class Schedule(Generic[K]):
    """A heap of due times; removed or re-added targets leave stale entries that are skipped.

    Entries are plain ``(due, seq, key, generation)`` tuples (``seq`` is unique, so the key is
    never compared): the heap is touched twice per probe, and tuples compare in C.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K, int]] = []
        self._intervals: dict[K, float] = {}
        self._generations: dict[K, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._intervals)

    def __contains__(self, key: object) -> bool:
        return key in self._intervals

    def add(self, key: K, now: float, interval: float, jitter: float, soon: bool = False) -> None:
        """Follow ``key``; first due at its phase, or within a short spread when ``soon``.

        ``soon`` is for targets that appear after the first round: a new node should get its
        first verdict quickly, yet a hundred nodes joining at once should not be probed in one
        burst, so they spread over a tenth of the interval.
        """
        if key in self._intervals:
            return
        self._intervals[key] = interval
        self._seq += 1
        generation = self._generations[key] = self._seq  # unique: stale entries never match
        offset = phase(key, interval, jitter)
        first = now + (offset / 10 if soon else offset)
        self._push(key, first, generation)

    def remove(self, key: K) -> None:
        self._intervals.pop(key, None)
        self._generations.pop(key, None)

    def _push(self, key: K, due: float, generation: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key, generation))

    def next_due(self) -> float | None:
        """The earliest due time of a live entry (dropping stale ones on the way)."""
        heap, generations = self._heap, self._generations
        while heap:
            due, _, key, generation = heap[0]
            if generations.get(key) == generation:
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[tuple[K, float]]:
        """Targets due at ``now`` with their due time; each is rescheduled one interval later.

        A target more than one interval late (the loop was starved) is rescheduled after ``now``
        rather than fired once per missed turn.
        """
        due: list[tuple[K, float]] = []
        heap, generations, intervals = self._heap, self._generations, self._intervals
        while heap and heap[0][0] <= now:
            at, _, key, generation = heapq.heappop(heap)
            if generations.get(key) != generation:
                continue  # removed, or re-added since
            due.append((key, at))
            interval = intervals[key]
            following = at + interval
            if following <= now:
                following += ((now - following) // interval + 1) * interval
            self._push(key, following, generation)
        return due
