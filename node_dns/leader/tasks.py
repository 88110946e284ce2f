"""Leader-only tasks: coroutines that run while this replica leads and stop the moment it does not.

A feature registers ``async def task(stop: asyncio.Event) -> None``. When leadership is gained
every registered task starts; when it is lost (renew deadline, another holder, shutdown) ``stop``
is set and the task is cancelled at once -- a leader that is no longer sure it leads must not
take one more step. A task that raises is logged and restarted after a pause while the term
lasts; a task that returns is done for the term.

Each task gets one long-lived runner ``asyncio.Task``, created by :meth:`LeaderTasks.start`
when the application starts, and is cancelled through an ``asyncio.timeout`` scope inside it,
so no task is created later. (kopf treats every task created after it started as its own and
holds its shutdown up to 5 s waiting for them; that would delay releasing the Lease.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LeaderTask = Callable[[asyncio.Event], Awaitable[None]]

RESTART_DELAY = 2.0


@dataclass
class _Slot:
    name: str
    fn: LeaderTask
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    scope: asyncio.Timeout | None = None
    running: bool = False
    failures: int = 0


class LeaderTasks:
    """The registry and runner of leader-only tasks; driven by the elector's begin()/end()."""

    def __init__(self, restart_delay: float = RESTART_DELAY) -> None:
        self._slots: list[_Slot] = []
        self._leading = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._restart_delay = restart_delay
        self._runners: list[asyncio.Task[None]] = []

    def register(self, name: str, fn: LeaderTask) -> None:
        """Add a task; register before :meth:`start`."""
        if self._runners:
            raise RuntimeError("register leader tasks before start()")
        self._slots.append(_Slot(name, fn))

    @property
    def names(self) -> list[str]:
        return [slot.name for slot in self._slots]

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def running(self) -> list[str]:
        """Names of the tasks running right now."""
        return [slot.name for slot in self._slots if slot.running]

    def start(self) -> list[asyncio.Task[None]]:
        """Create one runner task per registered task (idle until :meth:`begin`)."""
        if not self._runners:
            self._runners = [
                asyncio.create_task(self._run(slot), name=f"node-dns:leader:{slot.name}")
                for slot in self._slots
            ]
        return list(self._runners)

    def begin(self) -> None:
        """Leadership gained: start every task."""
        if self._leading.is_set():
            return
        for slot in self._slots:
            slot.stop = asyncio.Event()
        self._idle.clear()
        self._leading.set()

    def end(self) -> None:
        """Leadership lost: set every ``stop`` and cancel every running task, now."""
        if not self._leading.is_set():
            return
        self._leading.clear()
        self._idle.set()
        loop = asyncio.get_running_loop()
        for slot in self._slots:
            slot.stop.set()
            if slot.scope is not None and not slot.scope.expired():
                slot.scope.reschedule(loop.time())

    async def wait_stopped(self, grace: float) -> bool:
        """Wait until no task runs (after :meth:`end`); False if one still runs after ``grace`` s."""
        try:
            async with asyncio.timeout(grace):
                await self._quiet.wait()
        except TimeoutError:
            log.warning("leader tasks still running %.1fs after leadership ended: %s", grace, self.running())
            return False
        return True

    def _update_quiet(self) -> None:
        if any(slot.running for slot in self._slots):
            self._quiet.clear()
        else:
            self._quiet.set()

    async def _run(self, slot: _Slot) -> None:
        while True:
            await self._leading.wait()
            outcome = await self._run_once(slot)
            if outcome == "returned":
                await self._idle.wait()
            elif outcome == "failed":
                # Pause before a restart, unless leadership ends first.
                try:
                    async with asyncio.timeout(self._restart_delay):
                        await self._idle.wait()
                except TimeoutError:
                    pass

    async def _run_once(self, slot: _Slot) -> str:
        slot.running = True
        self._update_quiet()
        try:
            async with asyncio.timeout(None) as scope:
                slot.scope = scope
                if not self._leading.is_set():
                    return "cancelled"
                await slot.fn(slot.stop)
            return "returned"
        except TimeoutError:
            if scope.expired():
                return "cancelled"
            slot.failures += 1
            log.exception("leader task %s failed", slot.name)
            return "failed"
        except Exception:
            slot.failures += 1
            log.exception("leader task %s failed; restarting in %.0fs", slot.name, self._restart_delay)
            return "failed"
        finally:
            slot.scope = None
            slot.running = False
            self._update_quiet()
