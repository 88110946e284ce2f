"""One task per hook: gather changes, then have the render process render, write and run.

A change only marks the hook dirty. The hook waits ``debounce`` seconds from the first change
(a window that more changes do not extend, so steady churn cannot starve it), brings the render
process's copy of the state up to date and asks it to render; the render process writes the
file only if its bytes differ and starts the command right after the write. So a burst of
changes costs one render and at most one run, and a hook never runs its command twice at once.
A failing command is retried after 1, 2, 4 ... seconds (up to ``retry_max``), even while more
changes come in; so is a file that could not be written (a full disk, a directory made
read-only), with no change needed to try again.

Nothing here renders: templates run in the render process
(:mod:`~node_dns.sinks.hooks.process`), so the event loop that answers queries spends a few
microseconds per change and a few per changed node per render. The counters, the log lines
and the timing live here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from node_dns.sinks.hooks import command as command_mod
from node_dns.sinks.hooks import files
from node_dns.sinks.hooks import template as template_mod
from node_dns.sinks.hooks.process import RendererLost, RenderProcess
from node_dns.sinks.hooks.spec import HookConfigError, HookSpec
from node_dns.sinks.hooks.view import Rendered, Update

log = logging.getLogger("node_dns.hooks")

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Source(Protocol):
    """The served state, as updates (:class:`node_dns.sinks.hooks.feed.ZoneFeed` for a zone)."""

    def ready(self) -> bool:
        """False while nothing may be rendered yet (before the first complete list of nodes)."""
        ...

    def updates(self, timestamp: float, full: bool) -> Iterator[Update]:
        """What changed since the last call, or everything if ``full``."""
        ...


class Board:
    """What every hook shares: change notices and the render process's copy of the state."""

    def __init__(
        self, source: Source, renderer: RenderProcess, clock: Callable[[], float] = time.time
    ) -> None:
        self._source = source
        self.renderer = renderer
        self._clock = clock
        self._hooks: list[Hook] = []
        self.generation = 0
        self.changed_at = clock()
        self._synced: tuple[int, int] | None = None
        """(epoch, generation) of the copy the render process holds."""
        self._lock = asyncio.Lock()

    def attach(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def changed(self) -> None:
        """Something served (or a node fact) changed: every hook will render again."""
        self.generation += 1
        self.changed_at = self._clock()
        for hook in self._hooks:
            hook.notify()

    async def sync(self) -> int | None:
        """Bring the render process's copy up to date; its epoch, or None while nothing may be
        rendered yet. A new render process gets everything, the others what changed."""
        if not self._source.ready():
            return None
        async with self._lock:
            epoch = await self.renderer.wait_ready()
            generation = self.generation
            if self._synced != (epoch, generation):
                full = self._synced is None or self._synced[0] != epoch
                for update in self._source.updates(self.changed_at, full):
                    self.renderer.send(("update", update))
                    if full:
                        await asyncio.sleep(0)  # a full copy goes in parts: queries in between
                if self.renderer.epoch != epoch:
                    raise RendererLost("hook render process replaced")
                self._synced = (epoch, generation)
            return epoch


@dataclass
class HookStats:
    """Plain counters, read by the metrics collector at scrape time."""

    renders: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None
    guarded: bool = False
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_count: int = 0
    duration_sum: float = 0.0

    def render(self, result: str) -> None:
        self.renders[result] = self.renders.get(result, 0) + 1

    def run(self, outcome: command_mod.Outcome) -> None:
        self.runs[outcome.result] = self.runs.get(outcome.result, 0) + 1
        if outcome.result == "missing":
            return  # nothing ran
        self.duration_count += 1
        self.duration_sum += outcome.duration
        for index, bound in enumerate(DURATION_BUCKETS):
            if outcome.duration <= bound:
                self.duration_buckets[index] += 1


class Hook:
    """One configured hook and its loop; :meth:`run` is the task (everywhere, or leader-only)."""

    def __init__(
        self,
        spec: HookSpec,
        board: Board,
        *,
        backoff_base: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.output = Path(spec.output)
        self.stats = HookStats()
        self._board = board
        self._backoff_base = backoff_base
        self._clock = clock
        self._dirty = asyncio.Event()
        self._progress = asyncio.Event()
        self._logged: set[str] = set()
        self._owner_warned = False
        self._rehash = True
        board.attach(self)

    def notify(self) -> None:
        self._dirty.set()

    async def wait_progress(self) -> None:
        """Return after the next render or command run (for tests and benchmarks)."""
        self._progress.clear()
        await self._progress.wait()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Render and run until cancelled; ``stop`` is the leader-task signature (cancel is used)."""
        self._rehash = True  # the file may have changed while this hook did not run
        pending = bool(self.spec.command)  # the first good render runs the command: the
        first = True  # consumer may have started with an older file than ours
        failures = 0
        next_try = 0.0
        write_failures = 0
        rewrite_at: float | None = None  # a failed write is tried again, even with no change
        self._dirty.set()
        while True:
            deadlines = [next_try] if pending and not first and self.spec.command else []
            deadlines += [rewrite_at] if rewrite_at is not None else []
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            if wait is None or wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._dirty.wait()
                except TimeoutError:
                    pass
            if rewrite_at is not None and time.monotonic() >= rewrite_at:
                rewrite_at = None
                self._dirty.set()
            try:
                if self._dirty.is_set():
                    if self.spec.debounce:
                        await asyncio.sleep(self.spec.debounce)
                    self._dirty.clear()
                    # A write starts the command in the render process at once (unless in backoff).
                    spawn = bool(self.spec.command) and time.monotonic() >= next_try
                    rendered = await self._render_once(spawn)
                    if rendered is None:
                        continue  # nothing to render yet
                    if rendered.result == "write_error":
                        write_failures += 1
                        rewrite_at = time.monotonic() + self._backoff(write_failures)
                    else:
                        write_failures, rewrite_at = 0, None
                    if rendered.result == "written" or (first and rendered.result == "unchanged"):
                        pending = bool(self.spec.command)
                    if rendered.result in ("written", "unchanged"):
                        first = False
                        if not pending:
                            self.stats.last_success = self._clock()
                    self._progress.set()
                    if rendered.started is not None:
                        outcome = await self._finish(rendered.started)
                        pending, failures, next_try = self._ran(outcome, failures)
                        continue
                if pending and not first and self.spec.command and time.monotonic() >= next_try:
                    started = await self._board.renderer.start_command(self.name)
                    outcome = await self._finish(started)
                    pending, failures, next_try = self._ran(outcome, failures)
            except RendererLost:
                # A new render process is starting. As at start: render from a full copy and
                # run the command after the first good render, since the lost process may have
                # written the file without starting (or finishing) the command, which the
                # render process's supervisor killed.
                pending, first = bool(self.spec.command), True
                self._rehash = True
                self._dirty.set()

    async def _finish(self, started: int | command_mod.Outcome) -> command_mod.Outcome:
        if isinstance(started, command_mod.Outcome):
            return started
        return await self._board.renderer.finish(self.name)

    def _backoff(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` in a row: 1, 2, 4 ... up to retry_max."""
        return float(min(self._backoff_base * 2 ** (failures - 1), self.spec.retry_max))

    def _ran(self, outcome: command_mod.Outcome, failures: int) -> tuple[bool, int, float]:
        """Count and log one run; (still pending, failures in a row, earliest next try)."""
        assert self.spec.command
        self.stats.run(outcome)
        self._progress.set()
        if outcome.result == "success":
            self.stats.last_success = self._clock()
            log.info("hook %s: %s ran in %.2fs", self.name, self.spec.command[0], outcome.duration)
            return False, 0, 0.0
        failures += 1
        delay = self._backoff(failures)
        log.warning(
            "hook %s: command %s failed (%s); retry %d in %.0fs",
            self.name,
            self.spec.command[0],
            outcome.describe(),
            failures,
            delay,
        )
        return True, failures, time.monotonic() + delay

    async def _render_once(self, spawn: bool = False) -> Rendered | None:
        """Bring the render process up to date and have it render (and write, and start)."""
        epoch = await self._board.sync()
        if epoch is None:
            return None
        rendered = await self._board.renderer.render(self.name, epoch, spawn=spawn, rehash=self._rehash)
        self._rehash = False
        self._guard(rendered)
        self.stats.render(rendered.result)
        if rendered.result in ("error", "write_error"):
            if rendered.detail not in self._logged:
                self._logged.add(rendered.detail)
                log.error("hook %s: %s; keeping the last good %s", self.name, rendered.detail, self.output)
        elif rendered.result != "guarded":
            if self._logged:
                log.info("hook %s: rendering again", self.name)
            self._logged.clear()
            if rendered.detail and not self._owner_warned:
                self._owner_warned = True
                log.warning("hook %s: %s", self.name, rendered.detail)
        return rendered

    def _guard(self, rendered: Rendered) -> None:
        """The min_nodes guard's log lines: when it starts holding, and when it lets go."""
        if rendered.result == "guarded":
            if not self.stats.guarded:
                self.stats.guarded = True
                log.warning(
                    "hook %s: only %d nodes healthy, fewer than min_nodes %d: keeping %s as it is",
                    self.name,
                    rendered.healthy,
                    self.spec.min_nodes,
                    self.output,
                )
        elif self.stats.guarded:
            self.stats.guarded = False
            log.info(
                "hook %s: %d nodes healthy again (min_nodes %d)",
                self.name,
                rendered.healthy,
                self.spec.min_nodes,
            )


def check(specs: Sequence[HookSpec]) -> None:
    """Compile every template and check every output directory; raise HookConfigError if any fails.

    The render process compiles them again; this is the check before serving, with the line.
    """
    env = template_mod.environment()
    for spec in specs:
        try:
            template_mod.compile_template(spec.name, spec.template or "", env)
        except template_mod.TemplateError as error:
            source = f" ({spec.template_file})" if spec.template_file else ""
            raise HookConfigError(f"hook {spec.name!r}: {error}{source}") from None
        problem = files.check_directory(Path(spec.output))
        if problem:
            raise HookConfigError(f"hook {spec.name!r}: {problem}")


def build(specs: Sequence[HookSpec], board: Board) -> list[Hook]:
    """Check every hook (:func:`check`), then one :class:`Hook` each."""
    check(specs)
    return [Hook(spec, board) for spec in specs]
