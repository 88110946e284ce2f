"""The serving process's side of the render process: start it, feed it, ask it, restart it.

Rendering hook templates at thousands of nodes costs tens of milliseconds of CPU per change.
On the serving event loop that time is taken from DNS answers (in slices or not), and in a
thread it holds the GIL against them; so it happens in a process of its own
(:mod:`node_dns.sinks.hooks.child`), started once as a clean interpreter, holding its own copy
of the served state. This side sends it what changed and asks for renders and command runs;
the hooks' timing, metrics and log lines stay here.

The child is started again when it exits (one error line per exit, counted in
``node_dns_hook_render_process_restarts_total``), after 1, 2, 4 ... 30 s when it keeps
failing. Requests open at that moment fail with :class:`RendererLost`, the commands it was
running are killed (nobody would enforce their timeout), and the new child gets a full copy of
the state before its first render.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

from node_dns import childproc
from node_dns.sinks.hooks.command import Outcome, kill_group
from node_dns.sinks.hooks.spec import HookSpec
from node_dns.sinks.hooks.view import Rendered

log = logging.getLogger("node_dns.hooks")

CHILD = "node_dns.sinks.hooks.child"
NICE = 10
"""Priority the render process lowers itself by: on a saturated CPU, DNS answers come first."""
STABLE = 30.0
"""Seconds a child must have run for its exit to count as a first failure again."""
SHUTDOWN_WAIT = 5.0
"""Seconds the child gets to kill its commands and exit before it is killed."""


class RendererLost(ConnectionError):
    """The render process went away (or was replaced) while a request was open."""


class RenderProcess:
    """The render process and the requests open to it; :meth:`run` is its supervising task."""

    def __init__(
        self,
        specs: Sequence[HookSpec],
        *,
        restart_base: float = 1.0,
        restart_max: float = 30.0,
        nice: int = NICE,
    ) -> None:
        self.specs = tuple(specs)
        self.epoch = 0
        """Counts children started: a copy of the state belongs to one epoch."""
        self.restarts = 0
        self.pid: int | None = None
        self._restart_base = restart_base
        self._restart_max = restart_max
        self._nice = nice
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.commands: dict[str, int] = {}
        """Pid of each hook's command running now (the child says when one starts and ends)."""
        self._ids = itertools.count(1)

    async def run(self) -> None:
        """Start the child and keep one running until cancelled (then it is stopped)."""
        failures = 0
        while True:
            child = await asyncio.to_thread(childproc.spawn, CHILD, str(self._nice))
            began = time.monotonic()
            try:
                await self._serve(child)
            except asyncio.CancelledError:
                self._lost("stopping")
                await _stop(child)
                raise
            except BaseException:
                self._lost("error")
                await _stop(child)
                raise
            self._lost("exited")
            code = await asyncio.to_thread(child.process.wait)
            child.sock.close()
            failures = 1 if time.monotonic() - began >= STABLE else failures + 1
            delay = min(self._restart_base * 2 ** (failures - 1), self._restart_max)
            self.restarts += 1
            log.error(
                "hook render process %d %s; starting another in %.0fs",
                child.pid,
                f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}",
                delay,
            )
            await asyncio.sleep(delay)

    async def _serve(self, child: childproc.Child) -> None:
        reader, writer = await asyncio.open_connection(sock=child.sock)
        writer.write(childproc.frame(("start", self.specs)))
        self._writer, self.pid = writer, child.pid
        self.epoch += 1
        self._ready.set()
        while True:
            try:
                message = await childproc.receive(reader)
            except childproc.ChannelClosed:
                return
            if message[0] == "reply":
                future = self._pending.pop(message[1], None)
                if future is not None and not future.done():
                    future.set_result(message[2])
            elif message[0] == "pid":
                self.commands[message[1]] = message[2]
            elif message[0] == "ended":
                self.commands.pop(message[1], None)

    def _lost(self, why: str) -> None:
        self._ready.clear()
        # Commands it was running: nobody would enforce their timeout now.
        for pid in self.commands.values():
            kill_group(pid)
        self.commands.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(RendererLost(f"hook render process {why}"))

    async def wait_ready(self) -> int:
        """Wait for a running child; its epoch."""
        await self._ready.wait()
        return self.epoch

    def send(self, message: object) -> None:
        """Send without waiting for an answer (state updates); RendererLost if no child runs."""
        if self._writer is None:
            raise RendererLost("no hook render process")
        self._writer.write(childproc.frame(message))

    async def render(self, hook: str, epoch: int, *, spawn: bool, rehash: bool) -> Rendered:
        """Render ``hook`` from the copy sent in ``epoch`` (RendererLost if that child is gone)."""
        reply: Rendered = await self._request("render", hook, epoch, spawn, rehash)
        return reply

    async def start_command(self, hook: str) -> int | Outcome:
        """Start the hook's command: its pid, or the Outcome of a command that cannot start."""
        reply: int | Outcome = await self._request("start_command", hook, None)
        return reply

    async def finish(self, hook: str) -> Outcome:
        """Wait for the hook's command started last (the child enforces its timeout)."""
        reply: Outcome = await self._request("finish", hook, None)
        return reply

    async def _request(self, kind: str, hook: str, epoch: int | None, *args: object) -> Any:
        await self._ready.wait()
        if epoch is not None and epoch != self.epoch:
            raise RendererLost("hook render process replaced")
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self.send((kind, ident, hook, *args))
            return await future
        except asyncio.CancelledError:
            self._pending.pop(ident, None)
            if self._writer is not None:  # leadership lost, shutdown: the command is killed
                self._writer.write(childproc.frame(("cancel", hook)))
            raise


async def _stop(child: childproc.Child) -> None:
    """End of file tells the child to kill its commands and exit; it is killed if it lingers."""
    child.sock.close()
    try:
        await asyncio.wait_for(asyncio.to_thread(child.process.wait), SHUTDOWN_WAIT)
    except TimeoutError:
        _kill(child)
    except asyncio.CancelledError:
        _kill(child)
        raise


def _kill(child: childproc.Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.process.kill()
