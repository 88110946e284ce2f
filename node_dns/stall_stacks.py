"""What a sample of the loop thread's stack names: the culprit label of a stall.

Kept apart from the watch (:mod:`node_dns.stalls`) because it is pure: stacks in, labels out.
A label is ``origin > innermost node-dns or kopf frame > innermost frame`` (module:function, no
line numbers), so a culprit is a stable metric label.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import FrameType

GC = "(garbage collection)"
"""The label of a sample taken inside a collection (the collection callback is on its stack)."""
STACK_SHOWN = 10
"""Innermost frames written in a culprit's log line and in /debug/stalls."""

LOOP_FRAMES = frozenset(
    {
        ("asyncio.runners", "run"),
        ("asyncio.runners", "run_until_complete"),
        ("asyncio.base_events", "run_forever"),
        ("asyncio.base_events", "run_until_complete"),
        ("asyncio.base_events", "_run_once"),
        ("asyncio.events", "_run"),
        ("selectors", "select"),
    }
)
"""The event loop's own frames: what runs above the last of them is the callback or task."""
FIRST_PARTY = ("node_dns.", "kopf.")
GC_FRAME = ("node_dns.gcpolicy", "__call__")
"""The collection callback: a sample that lands in it was taken during a collection."""


@dataclass(frozen=True, slots=True)
class Frame:
    module: str
    function: str
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.function}:{self.line}"

    @property
    def where(self) -> str:
        return f"{self.module}:{self.function}"


Stack = tuple[Frame, ...]
"""Outermost frame first."""
Sample = Stack | str
"""A stack, or its text as the watchdog takes it (:func:`stack_text`, read by :func:`parse`)."""


def stack_text(frame: FrameType | None) -> str:
    """A thread's Python stack as one string, innermost frame first (``module function line``
    per line).

    The watchdog keeps its samples until the stall ends, and objects it keeps count towards the
    collector's next run: a collection triggered by the watchdog's allocations would run in its
    thread, holding the GIL, and lengthen the very stall being sampled. Strings are not tracked
    by the collector, so a sample costs it one tuple.
    """
    text = ""
    while frame is not None:
        text += f"{frame.f_globals.get('__name__', '?')} {frame.f_code.co_name} {frame.f_lineno or 0}\n"
        frame = frame.f_back
    return text


def parse(sample: Sample) -> Stack:
    """The stack of a sample (on the loop thread, once the stall is over)."""
    if not isinstance(sample, str):
        return sample
    frames = []
    for line in sample.splitlines():
        module, function, number = line.rsplit(" ", 2)
        frames.append(Frame(module, function, int(number)))
    frames.reverse()
    return tuple(frames)


def stack_of(frame: FrameType | None) -> Stack:
    """A thread's Python stack as plain values (the frame objects are not kept)."""
    return parse(stack_text(frame))


def label(stack: Stack) -> str | None:
    """The culprit a sample names; None when the loop was running nothing (idle in its poll)."""
    if any((f.module, f.function) == GC_FRAME for f in stack):
        return GC
    start = 0
    for index, frame in enumerate(stack):
        if (frame.module, frame.function) in LOOP_FRAMES:
            start = index + 1
    work = stack[start:]
    if not work:
        return None
    parts = [work[0].where]
    ours = [f for f in work[1:] if f.module.startswith(FIRST_PARTY)]
    if ours and ours[-1] is not work[-1]:
        parts.append(ours[-1].where)
    if len(work) > 1:
        parts.append(work[-1].where)
    return " > ".join(dict.fromkeys(parts))


def shown(stack: Stack) -> str:
    """The innermost frames of a stack on one line, outermost of them first."""
    return " > ".join(str(f) for f in stack[-STACK_SHOWN:]) or "-"
