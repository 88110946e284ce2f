"""The one prober: every target on one asyncio loop, at most ``concurrency`` probes in flight.

A scheduler coroutine pops due targets (:mod:`.schedule`) and starts them, up to
``concurrency`` at a time; the rest wait in line and start as earlier probes finish. TCP and
DNS probes are callbacks of one :class:`.reactor.Reactor` (no coroutine, task or timer per
probe: the prober shares the DNS answers' loop, so a probe's cost is query capacity); HTTP(S)
probes are one task each running :func:`.checks.check`. A target whose previous probe is still
waiting or running skips its turn instead of piling up, so a slow network degrades the probe
rate, never memory. Results go through :class:`.machine.Machine` (rise/fall and the self-fault
guard); the flips it returns are handed to listeners, which is how verdicts leave this module.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from node_dns import model
from node_dns.settings import probe_spec as spec_mod
from node_dns.sources.probes import checks
from node_dns.sources.probes.machine import Flip, Machine, Result
from node_dns.sources.probes.reactor import Reactor, family_of
from node_dns.sources.probes.schedule import Schedule

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
"""(node name, address text, probe key): the unit a verdict is about."""

Check = Callable[[model.IPAddress, spec_mod.Probe], Awaitable[Result]]
FlipListener = Callable[[list[Flip[Key]]], None]

BURST = 0.1
"""Probes due within this many seconds start together, up to this much early (never late).

The prober shares the answers' loop and CPU. Measured on a saturated node-dns (1,000 TCP
targets every 2 s, perf profiles of the loop): what a probe costs there is about twice what it
costs on an idle loop, and every answer got ~2% dearer too, because each wake-up of the prober
runs on caches the answer path has just filled, and leaves them cold for the next answers. So
probes run in bursts: ten wake-ups a second instead of a hundred, each starting dozens of probes
with warm code and data, and the answer path re-warms ten times a second instead of a hundred.
Capped at a tenth of the shortest interval, so a short interval still probes on time.
"""

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
    peak_in_flight: int = 0
    """The most probes ever in flight at once (bounded by the concurrency)."""


class Prober:
    """Runs the checks of a changing set of targets; see the module docstring."""

    def __init__(
        self,
        *,
        concurrency: int = 256,
        self_fault_share: float = 0.5,
        check: Check | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``check``: run every probe through this coroutine instead (default: TCP and DNS on
        the reactor, HTTP(S) through :func:`.checks.check`)."""
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
        """Targets waiting in line or in flight."""
        self._line: collections.deque[Key] = collections.deque()
        self._flying = 0
        self._starting = False
        self._failed_once = False
        self._reactor: Reactor | None = None
        self._tasks: dict[asyncio.Task[None], Key] = {}
        """HTTP(S) probes in flight (or every probe, with an injected ``check``)."""
        self._wake_at: float | None = None
        self._window = BURST
        """How early a due target may start (see :data:`BURST`)."""
        self._waiter: asyncio.Future[None] | None = None
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
                self._window = min(self._window, t.interval / 10)
                # After the first round a new target is probed soon: it is not served until then.
                self._schedule.add(key, now, t.interval, t.jitter, soon=target.probe.key in self._complete)
        self._poke()

    def reset(self) -> None:
        """Forget every result and verdict (a new term as leader starts from the published table)."""
        targets = list(self.targets.values())
        self.machine = Machine(self.machine.guard.share)
        self.targets = {}
        self._schedule = Schedule()
        self._busy.clear()
        self._line.clear()
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
        loop = asyncio.get_running_loop()
        # The loop's own clock unless one was injected: read several times per probe.
        self._reactor = Reactor(loop, self._finish, self._clock or loop.time)
        try:
            while True:
                now = self._now()
                self._reactor.expire(now)
                # Targets due within the burst window go now: one wake-up serves many of them.
                for key, _ in self._schedule.pop_due(now + self._window):
                    if key in self._busy:
                        self.stats.skipped += 1
                        continue
                    self._busy.add(key)
                    self._line.append(key)
                self._start_waiting()
                due = self._schedule.next_due()
                deadline = self._reactor.next_deadline()
                if due is None or (deadline is not None and deadline < due):
                    due = deadline
                self._wake_at = due
                await self._sleep(loop, due)
        finally:
            abandoned = self._reactor.close()
            self._reactor = None
            tasks = list(self._tasks)
            abandoned.extend(self._tasks.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._busy.difference_update(abandoned)
            self._busy.difference_update(self._line)
            self._line.clear()
            self._flying = 0
            self._wake_at = None

    async def _sleep(self, loop: asyncio.AbstractEventLoop, due: float | None) -> None:
        """Until ``due`` (in this prober's clock) or until :meth:`_poke`, whichever is first."""
        waiter = self._waiter = loop.create_future()
        timer = None if due is None else loop.call_later(max(due - self._now(), 0.0), _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _poke(self) -> None:
        """Wake the scheduler now (targets changed, or an earlier deadline)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _start_waiting(self) -> None:
        """Start targets from the line while fewer than ``concurrency`` are in flight.

        Not re-entered: a probe that fails at once (no route) finishes inside ``_start`` and
        calls back here; the outer loop carries on instead of recursing down the line.
        """
        if self._starting:
            return
        self._starting = True
        try:
            line = self._line
            while line and self._flying < self._concurrency:
                self._start(line.popleft())
        finally:
            self._starting = False

    def _start(self, key: Key) -> None:
        target = self.targets.get(key)
        reactor = self._reactor
        if target is None or reactor is None:
            self._busy.discard(key)  # removed while it waited
            return
        self._flying += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._flying)
        probe = target.probe
        if self._check is None and probe.kind == "tcp":
            reactor.tcp(key, family_of(target.ip.version), key[1], probe.port, probe.timing.timeout)
        elif self._check is None and probe.kind == "dns":
            reactor.dns(key, family_of(target.ip.version), key[1], probe.port, probe)
        else:
            task = asyncio.get_running_loop().create_task(self._run_check(key, target))
            self._tasks[task] = key
            task.add_done_callback(self._forget_task)
            return
        # A deadline earlier than the scheduler's next wake-up (a probe started as another
        # finished, between ticks): wake it so the timeout is not late.
        if self._wake_at is None or self._wake_at > self._now() + probe.timing.timeout:
            self._poke()

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _run_check(self, key: Key, target: Target) -> None:
        try:
            result = await (self._check or checks.check)(target.ip, target.probe)
        except Exception as error:  # a check never raises; if one did, its slot must not leak
            result = Result(False, type(error).__name__, 0.0, self._now())
        self._finish(key, result)

    def _finish(self, key: Key, result: Result) -> None:
        """One probe ended. Never raises: the reactor calls this for a batch of sockets it has
        already taken out of its set, and an exception would strand the rest of that batch."""
        self._flying -= 1
        self._busy.discard(key)
        try:
            self._record(key, result)
        except Exception:
            if not self._failed_once:
                self._failed_once = True
                log.exception("handling a probe result failed (logged once; results keep flowing)")
        self._start_waiting()

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


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _word(verdict: bool) -> str:
    return "reachable" if verdict else "unreachable"
