"""A machine canary: what this machine does to any process on node-dns' CPU, in the same run.

A loop stall of node-dns is node-dns' doing only if a process doing nothing would not have been
held at the same moment. The canary is that process: pinned to node-dns' CPU, real-time
(``SCHED_FIFO``, so node-dns itself never delays it), it sleeps 2 ms at a time and records every
wake-up that came late. Late wake-ups are the machine's: interrupts, kernel threads, and a VM's
CPU not being run by its host. Its cost on node-dns' CPU: 500 short wake-ups a second.

Both sides time with CLOCK_MONOTONIC, which every process of the machine shares, so node-dns'
stalls (``/debug/stalls``, with their end times) line up with the canary's late windows: the
part of a stall the canary was late too is the machine's, the rest is node-dns'.

``python -m bench.canary CPU [WAKEUPS]`` runs it until SIGTERM (or that many wake-ups), then
prints its late windows as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PERIOD = 0.002
"""Seconds slept between two wake-ups."""
RECORDED = 0.001
"""A wake-up later than this is recorded (seconds past its due time)."""
READY = "ready\n"
"""The canary's first line: it is pinned and catches SIGTERM."""


@dataclass
class Record:
    """What the canary saw: wake-ups, and the late ones as (due, woke) CLOCK_MONOTONIC windows."""

    realtime: bool = False
    wakeups: int = 0
    late: list[tuple[float, float]] = field(default_factory=list)

    def over(self, budget: float) -> list[float]:
        """Lateness of each late wake-up over ``budget`` seconds."""
        return [woke - due for due, woke in self.late if woke - due > budget]


@dataclass(frozen=True)
class Stall:
    """One node-dns loop stall: the loop was held from ``ended - lag`` to ``ended``, ``waited`` of
    it runnable but not running (its thread's run-queue wait: other work on its CPU)."""

    ended: float
    lag: float
    culprit: str
    waited: float = 0.0


def covered(start: float, end: float, windows: Sequence[tuple[float, float]]) -> float:
    """Seconds of [start, end] inside ``windows`` (the canary's windows never overlap)."""
    return sum(max(0.0, min(end, woke) - max(start, due)) for due, woke in windows)


def beyond(stalls: Sequence[Stall], record: Record) -> list[float]:
    """For each stall, node-dns' own share: the stall less the part the canary was late for too,
    or less the loop thread's run-queue wait, whichever is longer.

    The canary, being real-time, is not held by ordinary work on the CPU (kernel threads such
    as ksoftirqd, or node-dns' own other threads), which the run-queue wait measures; the two can
    overlap, so only the longer one is taken out: what is left is never less than node-dns' own.
    """
    return [
        stall.lag - max(stall.waited, covered(stall.ended - stall.lag, stall.ended, record.late))
        for stall in stalls
    ]


def parse_stalls(text: str, since: float, until: float) -> list[Stall]:
    """The stalls of /debug/stalls' last section that ended in [since, until]."""
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith("# the last ")]
    found = []
    for line in lines[marks[-1] + 1 :] if marks else []:
        ended, lag, waited, _, culprit = line.split("\t", 4)
        if since <= float(ended) <= until:
            found.append(Stall(float(ended), float(lag) / 1e3, culprit, float(waited) / 1e3))
    return found


@contextlib.contextmanager
def watching(cpu: int) -> Iterator[Record]:
    """Run the canary on ``cpu`` for the ``with`` block; the yielded record is filled on exit."""
    record = Record()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.canary", str(cpu)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline() != READY:  # its SIGTERM handler is in place from here on
        process.kill()
        raise RuntimeError(f"the canary did not start (exit {process.wait()})")
    try:
        yield record
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        found = json.loads(out)
        record.realtime, record.wakeups = found["realtime"], found["wakeups"]
        record.late = [(due, woke) for due, woke in found["late"]]


def _run(cpu: int, limit: int | None = None) -> Record:
    """Sleep and record until SIGTERM (or ``limit`` wake-ups)."""
    os.sched_setaffinity(0, {cpu})
    record = Record()
    with contextlib.suppress(PermissionError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        record.realtime = True
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(READY)
    sys.stdout.flush()
    late, clock, sleep = record.late, time.monotonic, time.sleep
    while not stopped and record.wakeups != limit:
        due = clock() + PERIOD
        sleep(PERIOD)
        woke = clock()
        record.wakeups += 1
        if woke - due > RECORDED:
            late.append((due, woke))
    return record


if __name__ == "__main__":
    done = _run(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
    json.dump({"realtime": done.realtime, "wakeups": done.wakeups, "late": done.late}, sys.stdout)
