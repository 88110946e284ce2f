"""The agent's loop: kernel changes in, at most one patch out per change of the selected set.

Wakes on three things only: netlink events (coalesced for ``settle`` seconds, so a burst of
address changes is one read and at most one patch), the slow re-assert timer (read the node,
repair the annotation if someone overwrote it), and the retry timer after a failed call. It
never polls the kernel or the apiserver otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from node_dns.agent import addresses
from node_dns.agent.publish import Backoff, Fatal, Publisher

log = logging.getLogger("node_dns.agent")

Reader = Callable[[], Awaitable[list[addresses.InterfaceAddress]]]


@dataclass
class LoopState:
    """What the health check and metrics read."""

    selection: addresses.Selection = field(default_factory=lambda: addresses.Selection(()))
    wakeups: int = 0
    in_sync: bool = False
    last_change: float = 0.0
    """Unix time the published set last changed (0: not since start)."""


class AgentLoop:
    def __init__(
        self,
        read: Reader,
        publisher: Publisher,
        policy: addresses.Policy,
        *,
        reassert_interval: float,
        settle: float = 0.02,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._publisher = publisher
        self._policy = policy
        self._reassert = reassert_interval
        self._settle = settle
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._wall = wall
        self._changed = asyncio.Event()
        self.state = LoopState()

    def kernel_changed(self) -> None:
        """Called for every batch of netlink events (cheap: sets a flag)."""
        self._changed.set()

    async def _wait(self, seconds: float) -> bool:
        """Sleep until a kernel change or ``seconds`` pass; True if the kernel woke us."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Forever, or until :class:`Fatal` (raised to the caller)."""
        verify_at = self._clock()  # read the node first, whatever happens
        retry_at: float | None = None
        while True:
            now = self._clock()
            due = min(verify_at, retry_at) if retry_at is not None else verify_at
            if not self._changed.is_set() and now < due:
                woken = await self._wait(due - now)
                if woken and self._settle > 0:
                    await asyncio.sleep(self._settle)  # let a burst of events land first
            self._changed.clear()
            self.state.wakeups += 1
            now = self._clock()
            verify = now >= verify_at
            if retry_at is not None and now < retry_at:
                continue  # backing off: the next attempt reads the kernel afresh anyway
            try:
                await self._sync(verify)
            except Fatal:
                raise
            except Exception as error:
                delay = self._backoff.next_delay()
                retry_at = self._clock() + delay
                verify_at = min(verify_at, retry_at)  # did the failed patch land? read again
                self.state.in_sync = False
                log.warning(
                    "cannot update node %s (attempt %d, next in %.1fs): %s",
                    self._publisher.node,
                    self._backoff.failures,
                    delay,
                    _brief(error),
                )
                continue
            if self._backoff.failures:
                log.info(
                    "node %s updated again after %d failures", self._publisher.node, self._backoff.failures
                )
            self._backoff.reset()
            retry_at = None
            if verify:
                verify_at = self._clock() + self._reassert

    async def _sync(self, verify: bool) -> None:
        found = await self._read()
        selection = addresses.select(found, self._policy)
        value = selection.annotation() or None
        before = self._publisher.current
        patched = await self._publisher.ensure(value, verify=verify)
        if selection != self.state.selection:
            self.state.last_change = self._wall()
            for address in found:
                log.debug(
                    "%s %s: %s",
                    address.interface,
                    address.ip,
                    addresses.refusal(address, self._policy) or "published",
                )
            if selection.capped:
                log.warning(
                    "%d qualifying addresses left out by the cap of %d", selection.capped, self._policy.limit
                )
        self.state.selection = selection
        self.state.in_sync = True
        if patched:
            log.info(
                "node %s: %s %s -> %s",
                self._publisher.node,
                self._publisher.key,
                before if before is not None else "(absent)",
                value if value is not None else "(removed)",
            )


def _brief(error: BaseException) -> str:
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
