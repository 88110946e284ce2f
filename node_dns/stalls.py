"""What held the event loop: a watchdog thread looks at the loop thread's stack while it is late.

The lag histogram (:mod:`node_dns.loop_lag`) says *that* the loop was late; this says *what it
was running*, and how much of the lateness was the loop's own work rather than the machine's.

- The lag monitor's timer is the heartbeat: each wake-up calls :meth:`StallWatch.beat`, which
  opens a new window. A watchdog thread sleeps until the window's timer is overdue by half the
  threshold; only then, and every half threshold while the loop stays late, does it take the
  loop thread's stack (``sys._current_frames``). A loop on time costs one thread wake-up per
  heartbeat (40 a second) and no sample.
- A sample is taken with the GIL held and tagged with its window, so it always shows what ran
  inside that stall. A long C call that holds the GIL (a JSON decode, a collection) is seen at
  its caller's next line, once it returns: the caller is still named.
- Wall-clock lag on a shared machine includes time the loop thread spent runnable but waiting
  for a CPU. The loop thread's run time and run-queue wait (its ``schedstat``) are read when the
  heartbeat falls due (by the watchdog, which wakes then) and again at the beat: over the late
  part alone, the lag less that wait is node-dns' *own* lag (its own histogram), the run time is
  the stall's CPU, and a stall whose own part stays within the threshold is blamed on the run
  queue, not on code. (When the watchdog could not read at the due time, the whole window since
  the previous beat is used: the wait taken out is then an upper bound.)
- The culprit of a stall: the run queue (as above); the garbage collector when collections took
  at least half of the stall's own part in CPU time; else the label seen most in its samples
  (``origin > innermost node-dns or kopf frame > innermost frame``: module:function, no line
  numbers, so a culprit is a stable metric label). Each culprit is counted, its first stall is
  logged once with its stack, and ``/debug/stalls`` lists them all.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node_dns.answer.stats import Histogram
from node_dns.loop_lag import LagMonitor
from node_dns.stall_stacks import GC, Sample, Stack, label, parse, shown, stack_text

log = logging.getLogger("node_dns")

THRESHOLD = 0.005
"""Stalls longer than this (seconds of lag) are attributed: the stall budget while the zone churns."""
MAX_CULPRITS = 48
"""Distinct culprits kept (metric label values); later ones are counted as :data:`OTHER`."""
MAX_SAMPLES = 64
"""Samples kept per stall (a stall of a second sampled every 2.5 ms would keep 400)."""
RECENT = 256
"""Stalls kept with their times for /debug/stalls (to line them up with other clocks' events)."""

RUN_QUEUE = "(run queue)"
"""The stall is (nearly) all time the loop thread waited for a CPU: other processes' doing."""
IDLE = "(loop idle)"
"""Samples found the loop running nothing: its thread was off the CPU (blocked or not woken)."""
UNSAMPLED = "(not sampled)"
"""The stall ended before the watchdog thread could look (it too waits for a CPU and the GIL)."""
OTHER = "(other)"


@dataclass
class Culprit:
    """Stalls blamed on one culprit: how many, how long in all, how much of it was run-queue wait."""

    name: str
    stalls: int = 0
    seconds: float = 0.0
    waited: float = 0.0
    """Of ``seconds``: the loop thread's run-queue wait during those stalls."""
    cpu: float = 0.0
    """The loop thread's CPU time during those stalls."""
    longest: float = 0.0
    stack: str = "-"
    """The stack of the first sample that named it (for the log line and /debug/stalls)."""


@dataclass(frozen=True, slots=True)
class Stall:
    lag: float
    waited: float
    cpu: float
    culprit: str
    stack: str
    ended: float
    """The watch's clock (CLOCK_MONOTONIC, shared by every process of the machine) at the beat
    that ended it: the loop was held from ``ended - lag`` to ``ended``."""

    @property
    def own(self) -> float:
        return max(0.0, self.lag - self.waited)


class ThreadTimes:
    """The calling thread's CPU time and run-queue wait, seconds; readable from any thread.

    CPU time comes from the thread's CPU clock (exact when read); the wait from its ``schedstat``,
    which the kernel adds to when a wait ends: a wait still going on when read counts at the
    next read. Construct it on the thread to be measured. None when either is not available.
    """

    def __init__(self, root: str = "/proc/self/task") -> None:
        self._fd: int | None = None
        self._clock: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._clock = time.pthread_getcpuclockid(threading.get_ident())
            self._fd = os.open(f"{root}/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        if self._fd is not None and self() is None:
            self.close()

    def __call__(self) -> tuple[float, float] | None:
        if self._fd is None or self._clock is None:
            return None
        try:
            wait = int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
            return time.clock_gettime(self._clock), wait
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class StallWatch:
    """Windows between heartbeats, the samples taken in late ones, and the culprits found.

    :meth:`beat` runs on the loop thread, :meth:`look` on the watchdog thread; both only swap or
    append whole objects, so the GIL is all the locking they need. Clocks, the loop thread's
    times, the GC's CPU time and the sampler are injected (tests drive them by hand).
    """

    def __init__(
        self,
        bounds: Sequence[float],
        *,
        threshold: float = THRESHOLD,
        interval: float = 0.025,
        clock: Callable[[], float] = time.monotonic,
        thread_times: Callable[[], tuple[float, float] | None] = lambda: None,
        gc_time: Callable[[], float] = lambda: 0.0,
        sampler: Callable[[], Sample | None] = lambda: None,
    ) -> None:
        self.threshold = threshold
        self.interval = interval
        self.period = threshold / 2
        """Seconds between two samples of a late loop (and the lateness of the first)."""
        self.own_lag = Histogram(bounds)
        """Lag less the loop thread's run-queue wait in the same window."""
        self.longest_own = 0.0
        self.culprits: dict[str, Culprit] = {}
        self.last: Stall | None = None
        self.recent: deque[Stall] = deque(maxlen=RECENT)
        """The last stalls, oldest first, with their times."""
        self._clock = clock
        self._thread_times = thread_times
        self._gc_time = gc_time
        self.sampler = sampler
        """Returns the loop thread's stack (set by :class:`Watchdog`)."""
        self.window = (0, clock())
        """(sequence number, start) of the current heartbeat window; replaced whole by beat()."""
        self._samples: list[tuple[int, Sample]] = []
        self._times = thread_times()
        self._due: tuple[int, tuple[float, float] | None] = (-1, None)
        """The loop thread's times read when window ``[0]``'s heartbeat fell due."""
        self._gc = gc_time()

    # -- the watchdog thread ------------------------------------------------------------------

    def overdue(self, now: float) -> bool:
        """Whether the current window's heartbeat is late by half the threshold or more."""
        return now - self.window[1] - self.interval >= self.period

    def mark(self, seq: int) -> None:
        """Window ``seq``'s heartbeat is due now: read the loop thread's times, if it is still open."""
        if self.window[0] == seq:
            self._due = (seq, self._thread_times())

    def look(self, seq: int) -> bool:
        """Sample the loop thread's stack if window ``seq`` is still open; returns whether it did."""
        if self.window[0] != seq or len(self._samples) >= MAX_SAMPLES:
            return False
        stack = self.sampler()
        if stack is None:
            return False
        self._samples.append((seq, stack))
        return True

    # -- the loop thread ----------------------------------------------------------------------

    def beat(self, lag: float) -> Stall | None:
        """Close the window with the lag the heartbeat saw; a stall over the threshold is blamed."""
        seq = self.window[0]
        samples, self._samples = self._samples, []
        now = self._clock()
        self.window = (seq + 1, now)
        start, self._times = self._times, self._thread_times()
        tag, due = self._due
        if tag == seq and due is not None:
            start = due  # read as the heartbeat fell due: the late part alone
        cpu = waited = 0.0
        if start is not None and self._times is not None:
            cpu = min(lag, self._times[0] - start[0])
            waited = min(lag, self._times[1] - start[1])
        gc_before, self._gc = self._gc, self._gc_time()
        own = max(0.0, lag - waited)
        self.own_lag.observe(own)
        self.longest_own = max(self.longest_own, own)
        if lag <= self.threshold:
            return None
        stacks = [parse(stack) for tag, stack in samples if tag == seq]
        name, stack = self._blame(own, self._gc - gc_before, stacks)
        stall = Stall(lag, waited, cpu, name, stack, now)
        self._count(stall)
        self.last = stall
        self.recent.append(stall)
        return stall

    def _blame(self, own: float, gc: float, stacks: list[Stack]) -> tuple[str, str]:
        if own <= self.threshold:
            return RUN_QUEUE, "-"
        if gc >= own / 2:
            return GC, "-"
        labels = [(label(stack), stack) for stack in stacks]
        work = Counter(name for name, _ in labels if name is not None)
        if work:
            name = work.most_common(1)[0][0]
            return name, shown(next(stack for found, stack in labels if found == name))
        if labels:
            return IDLE, shown(labels[0][1])
        return UNSAMPLED, "-"

    def _count(self, stall: Stall) -> None:
        name = stall.culprit
        if name not in self.culprits and len(self.culprits) >= MAX_CULPRITS:
            name = OTHER
        culprit = self.culprits.get(name)
        if culprit is None:
            culprit = self.culprits[name] = Culprit(name, stack=stall.stack)
            log.log(
                logging.INFO if name in (RUN_QUEUE, OTHER) else logging.WARNING,
                "event loop held %.1f ms (%.1f ms of it waiting for a CPU) by %s; first stall of this "
                "culprit, all are counted in node_dns_event_loop_stalls_total: %s",
                stall.lag * 1e3,
                stall.waited * 1e3,
                name,
                stall.stack,
            )
        culprit.stalls += 1
        culprit.seconds += stall.lag
        culprit.waited += stall.waited
        culprit.cpu += stall.cpu
        culprit.longest = max(culprit.longest, stall.lag)

    def render(self) -> str:
        """/debug/stalls: culprits by total stall time, with the stack first seen for each."""
        # Generation 2 is not counted: listing it (the whole long-lived heap) held the loop 7 ms
        # at 5,000 nodes, a stall of the page that reports stalls.
        tracked = ", ".join(f"{len(gc.get_objects(generation))}" for generation in (0, 1))
        lines = [
            f"# stalls longer than {self.threshold * 1e3:g} ms by culprit; longest own lag "
            f"(less run-queue wait) {self.longest_own * 1e3:.1f} ms",
            f"# garbage collector: {gc.get_freeze_count()} objects frozen; tracked by generation "
            f"0, 1: {tracked}",
            "# stalls\ttotal_ms\trun_queue_ms\tcpu_ms\tlongest_ms\tculprit\tstack",
        ]
        for c in sorted(self.culprits.values(), key=lambda c: -c.seconds):
            lines.append(
                f"{c.stalls}\t{c.seconds * 1e3:.1f}\t{c.waited * 1e3:.1f}\t{c.cpu * 1e3:.1f}"
                f"\t{c.longest * 1e3:.1f}\t{c.name}\t{c.stack}"
            )
        lines.append(
            f"# the last {RECENT} stalls: end (CLOCK_MONOTONIC s)\tlag_ms\trun_queue_ms\tcpu_ms\tculprit"
        )
        lines += [
            f"{s.ended:.6f}\t{s.lag * 1e3:.1f}\t{s.waited * 1e3:.1f}\t{s.cpu * 1e3:.1f}\t{s.culprit}"
            for s in self.recent
        ]
        return "\n".join(lines) + "\n"


class Watchdog:
    """The thread that samples the loop thread while it is late. Create it on the loop thread."""

    def __init__(self, watch: StallWatch, clock: Callable[[], float] = time.monotonic) -> None:
        self.watch = watch
        self._clock = clock
        self._stop = threading.Event()
        self._target = threading.get_ident()
        self._thread = threading.Thread(target=self._run, name="node-dns:stall-watch", daemon=True)

    def sample(self) -> str | None:
        frame = sys._current_frames().get(self._target)
        return stack_text(frame) if frame is not None else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        watch, clock, stop = self.watch, self._clock, self._stop
        while not stop.is_set():
            seq, started = watch.window
            due = started + watch.interval
            if stop.wait(max(0.0, due - clock())):
                return
            if watch.window[0] != seq:
                continue  # the heartbeat came on time: a new window
            watch.mark(seq)
            wake = due + watch.period
            while not stop.wait(max(0.0, wake - clock())):
                if watch.window[0] != seq:
                    break  # the heartbeat came
                watch.look(seq)
                wake = clock() + watch.period


@dataclass
class Running:
    """A stall watch of the loop thread with its watchdog thread; :meth:`stop` ends both."""

    watch: StallWatch
    watchdog: Watchdog
    times: ThreadTimes

    def stop(self) -> None:
        self.watchdog.stop()
        self.times.close()


def start(lag: LagMonitor, threshold: float, *, gc_time: Callable[[], float]) -> Running | None:
    """Watch the calling (loop) thread, fed by ``lag``'s heartbeat, its watchdog thread running;
    None when ``threshold`` is 0 (off)."""
    if threshold <= 0:
        return None
    times = ThreadTimes()
    watch = StallWatch(
        lag.histogram.bounds, threshold=threshold, interval=lag.interval, thread_times=times, gc_time=gc_time
    )
    watchdog = Watchdog(watch)
    watch.sampler = watchdog.sample
    lag.listeners.append(watch.beat)
    watchdog.start()
    return Running(watch, watchdog, times)
