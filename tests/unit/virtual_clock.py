"""An event loop on virtual time, for tests of code that waits and times out.

Time advances only when nothing can run: the loop jumps straight to its next timer instead of
waiting for it. A scenario that waits out a 15 s lease takes milliseconds, and no assertion about
durations depends on how busy the machine is -- what a test measures is the loop's own clock,
which the code under test reads too (inject ``loop.time`` as its clock).

``await settle()`` waits until every task has run as far as it can without time passing: the
condition "nothing else happens now" without guessing a sleep.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec

P = ParamSpec("P")


class _JumpingSelector:
    """Wraps the loop's selector: polls I/O without blocking, then moves the clock instead."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualClockLoop) -> None:
        self._inner = inner
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or timeout == 0:
            return events
        if self._loop.wake_idle():
            return events  # waiters of settle() run first; the clock stays
        if timeout is None:
            raise RuntimeError("virtual clock: nothing scheduled and nothing can run (a deadlock)")
        self._loop.advance(timeout)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 1000.0) -> None:
        super().__init__()
        self._now = start
        self._idle: list[asyncio.Future[None]] = []
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def idle(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.create_future()
        self._idle.append(future)
        return future

    def wake_idle(self) -> bool:
        waiting, self._idle = [f for f in self._idle if not f.done()], []
        for future in waiting:
            future.set_result(None)
        return bool(waiting)


async def settle() -> None:
    """Return once no task can make progress without the clock moving."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop), "settle() needs the virtual clock loop"
    await loop.idle()


async def until(predicate: Callable[[], object], within: float) -> None:
    """Wait (in virtual time) until ``predicate()`` holds; TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - state owned by other tasks
            await asyncio.sleep(0.001)


def run(main: Awaitable[Any]) -> Any:
    """Run ``main`` on a fresh virtual-clock loop; leftover tasks are cancelled, then it closes."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Decorator: the async test runs on its own virtual-clock loop (a plain test to pytest)."""

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        run(test(*args, **kwargs))

    return wrapper
