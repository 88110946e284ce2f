"""The one prober: every target on one asyncio loop, a fixed pool of workers, no thread per probe.

A scheduler coroutine pops due targets (:mod:`.schedule`) onto a queue; ``concurrency`` worker
coroutines take them off and run :func:`.checks.check`. A target whose previous probe is still
queued or running skips its turn instead of piling up, so a slow network degrades the probe rate,
never memory. Results go through :class:`.machine.Machine` (rise/fall and the self-fault guard);
the flips it returns are handed to listeners, which is how verdicts leave this module.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from node_dns import model
from node_dns.settings import probe_spec as spec_mod
from node_dns.sources.probes import checks
from node_dns.sources.probes.machine import Flip, Machine, Result
from node_dns.sources.probes.schedule import Schedule

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
"""(node name, address text, probe key): the unit a verdict is about."""

Check = Callable[[model.IPAddress, spec_mod.Probe], Awaitable[Result]]
FlipListener = Callable[[list[Flip[Key]]], None]

TICK = 0.01
"""Probes due within this many seconds of each other start together (fewer loop wake-ups)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class Target:
    """One address of one node under one probe; ``areas`` are the areas that use this probe."""

    node: str
    ip: model.IPAddress
    probe: spec_mod.Probe
    areas: frozenset[str]
    counts: bool = True
    """Whether the node is healthy, so its result counts towards the self-fault share. Addresses
    of NotReady nodes are still probed (their verdict is ready when the node returns) but a dead
    node failing its probe says nothing about our own network."""

    @property
    def key(self) -> Key:
        return (self.node, str(self.ip), self.probe.key)


@dataclass
class AreaStats:
    """Per-area counters: results by outcome and a latency histogram (cumulative at scrape)."""

    results: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def add(self, result: Result) -> None:
        self.results["success" if result.ok else "failure"] += 1
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, result.latency)] += 1
        self.latency_sum += result.latency


@dataclass
class ProberStats:
    areas: dict[str, AreaStats] = field(default_factory=dict)
    skipped: int = 0
    """Turns skipped because the target's previous probe had not finished."""
    probes: int = 0


class Prober:
    """Runs the checks of a changing set of targets; see the module docstring."""

    def __init__(
        self,
        *,
        concurrency: int = 256,
        self_fault_share: float = 0.5,
        check: Check = checks.check,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.machine: Machine[Key] = Machine(self_fault_share)
        self.targets: dict[Key, Target] = {}
        self.stats = ProberStats()
        self.listeners: list[FlipListener] = []
        self.fault_listeners: list[Callable[[bool], None]] = []
        self._concurrency = concurrency
        self._check = check
        self._clock = clock
        self._schedule: Schedule[Key] = Schedule()
        self._busy: set[Key] = set()
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._complete: set[str] = set()
        self._unknown: dict[str, int] = {}
        self._started = False
        self.changed = asyncio.Event()
        """Set on every flip and every newly completed probe round; publishers clear it."""

    # --- targets ------------------------------------------------------------------------------
    def set_targets(self, targets: Mapping[Key, Target]) -> None:
        """Follow exactly ``targets``: new ones are scheduled, gone ones forgotten."""
        self.update([k for k in self.targets if k not in targets], targets.values())

    def update(self, remove: Iterable[Key], add: Iterable[Target]) -> None:
        """Stop following ``remove``, follow (or update) ``add``; work in proportion to them."""
        now = self._now()
        for key in remove:
            if self.targets.pop(key, None) is not None:
                self._schedule.remove(key)
                if self.machine.verdict(key) is None:
                    left = self._unknown[key[2]] = self._unknown.get(key[2], 1) - 1
                    if left <= 0 and key[2] not in self._complete:
                        self._complete.add(key[2])  # the last unprobed target went away
                        self.changed.set()
                self.machine.remove(key)
        for target in add:
            key = target.key
            old = self.targets.get(key)
            self.targets[key] = target
            if old is None:
                self.machine.add(key)
                self._unknown[key[2]] = self._unknown.get(key[2], 0) + 1
                t = target.probe.timing
                # After the first round a new target is probed soon: it is not served until then.
                self._schedule.add(key, now, t.interval, t.jitter, soon=target.probe.key in self._complete)
        self._wake.set()

    def reset(self) -> None:
        """Forget every result and verdict (a new term as leader starts from the published table)."""
        targets = list(self.targets.values())
        self.machine = Machine(self.machine.guard.share)
        self.targets = {}
        self._schedule = Schedule()
        self._busy.clear()
        self._queue = asyncio.Queue()
        self._complete.clear()
        self._unknown.clear()
        self.update([], targets)

    def seed(self, verdicts: Iterable[tuple[Key, bool]], complete: Iterable[str]) -> None:
        """Continue from verdicts an earlier leader published (call after :meth:`set_targets`)."""
        self.machine.seed(verdicts)
        self._complete |= set(complete)
        self._note_complete()

    # --- reading ------------------------------------------------------------------------------
    def verdict(self, key: Key) -> bool | None:
        return self.machine.verdict(key)

    def verdicts(self) -> dict[Key, bool]:
        return {k: s.verdict for k, s in self.machine.states.items() if s.verdict is not None}

    @property
    def complete(self) -> frozenset[str]:
        """Probe keys whose first round has completed (every target has had a verdict once)."""
        return frozenset(self._complete)

    @property
    def fault(self) -> bool:
        return self.machine.fault

    # --- running ------------------------------------------------------------------------------
    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    async def run(self) -> None:
        """Probe until cancelled."""
        workers = [asyncio.create_task(self._work(), name="node-dns:probe") for _ in range(self._concurrency)]
        try:
            while True:
                now = self._now()
                # Targets due within the next tick go now: one wake-up serves many of them.
                for key, _ in self._schedule.pop_due(now + TICK):
                    if key in self._busy:
                        self.stats.skipped += 1
                        continue
                    self._busy.add(key)
                    self._queue.put_nowait(key)
                due = self._schedule.next_due()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if due is None else max(due - self._now(), 0.0)):
                        await self._wake.wait()
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                target = self.targets.get(key)
                if target is not None:
                    result = await self._check(target.ip, target.probe)
                    self._record(key, result)
            finally:
                self._busy.discard(key)

    def _record(self, key: Key, result: Result) -> None:
        target = self.targets.get(key)
        if target is None:
            return  # removed while it was probed
        self.stats.probes += 1
        for area in target.areas:
            stats = self.stats.areas.get(area)
            if stats is None:
                stats = self.stats.areas[area] = AreaStats()
            stats.add(result)
        t = target.probe.timing
        was_fault = self.machine.fault
        patient = key[2] not in self._complete  # first round: unprobed targets are being served
        flips = self.machine.record(key, result, t.rise, t.fall, counts=target.counts, patient=patient)
        if self.machine.fault != was_fault:
            self._log_fault()
            for fault_listener in self.fault_listeners:
                fault_listener(self.machine.fault)
            self.changed.set()
        newly = self._first_verdicts(flips)
        if flips:
            for flip in flips:
                self._log_flip(flip)
            for listener in self.listeners:
                listener(flips)
        if flips or newly:
            self.changed.set()

    def _note_complete(self) -> bool:
        """Recount targets without a verdict per probe key, latch the keys with none left."""
        self._unknown = {}
        for key in self.targets:
            self._unknown.setdefault(key[2], 0)
            if self.machine.verdict(key) is None:
                self._unknown[key[2]] += 1
        newly = {k for k, n in self._unknown.items() if n == 0} - self._complete
        self._complete |= newly
        return bool(newly)

    def _first_verdicts(self, flips: list[Flip[Key]]) -> bool:
        """The incremental form of :meth:`_note_complete` for one batch of flips."""
        newly = False
        for flip in flips:
            if flip.previous is None:
                probe = flip.key[2]
                left = self._unknown[probe] = self._unknown.get(probe, 1) - 1
                if left <= 0 and probe not in self._complete:
                    self._complete.add(probe)
                    newly = True
        return newly

    def _log_fault(self) -> None:
        failing, counted = self.machine.counts()
        if self.machine.fault:
            log.warning(
                "self-fault: %d of %d probe targets fail at once; assuming our own network is at "
                "fault and keeping the last verdicts until the share drops",
                failing,
                counted,
            )
        else:
            log.info(
                "self-fault over: %d of %d probe targets fail; verdicts follow probes again", failing, counted
            )

    def _log_flip(self, flip: Flip[Key]) -> None:
        node, ip, probe = flip.key
        short = self.targets[flip.key].probe.short if flip.key in self.targets else probe
        if flip.previous is None:
            log.info(
                "probe %s of %s (%s): first verdict %s (%s)",
                short,
                node,
                ip,
                _word(flip.verdict),
                flip.detail,
            )
        else:
            log.info("probe %s of %s (%s): %s (%s)", short, node, ip, _word(flip.verdict), flip.detail)


def _word(verdict: bool) -> str:
    return "reachable" if verdict else "unreachable"
