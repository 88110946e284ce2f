"""One task per hook: gather changes, render, write changed bytes, run the command.

A change only marks the hook dirty. The hook waits ``debounce`` seconds from the first change
(a window that more changes do not extend, so steady churn cannot starve it), renders the state
as it is then, and writes the file only if its bytes differ. So a burst of changes costs one
render and at most one run, and a hook never runs its command twice at once. A failing command
is retried after 1, 2, 4 ... seconds (up to ``retry_max``), even while more changes come in; so
is a file that could not be written (a full disk, a directory made read-only), with no change
needed to try again.

Rendering runs on the event loop in slices of 2 ms (a query waits at most one slice): in a
thread it would hold the GIL against the loop that answers queries. Writing the file and
starting the command run in worker threads, where the time goes to system calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node_dns.sinks.hooks import command as command_mod
from node_dns.sinks.hooks import context as context_mod
from node_dns.sinks.hooks import files
from node_dns.sinks.hooks import template as template_mod
from node_dns.sinks.hooks.spec import HookSpec

log = logging.getLogger("node_dns.hooks")

Views = Callable[[float], context_mod.View | None]
"""Gives the view of the served state (the argument is the time of the last change), or None
while nothing may be rendered yet (before the first complete list of nodes)."""

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Board:
    """What every hook reads: change notices and one context per state, built once and shared."""

    def __init__(self, views: Views, clock: Callable[[], float] = time.time) -> None:
        self._views = views
        self._clock = clock
        self._hooks: list[Hook] = []
        self.generation = 0
        self.changed_at = clock()
        self._view: tuple[int, context_mod.View | None] | None = None
        self._context: tuple[context_mod.View, dict[str, Any]] | None = None
        self._entries = context_mod.NodeEntries()
        self._lock = asyncio.Lock()

    def attach(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def changed(self) -> None:
        """Something served (or a node fact) changed: every hook will render again."""
        self.generation += 1
        self.changed_at = self._clock()
        for hook in self._hooks:
            hook.notify()

    def view(self) -> context_mod.View | None:
        """The view of the current state; taken once per change (call on the event loop)."""
        if self._view is None or self._view[0] != self.generation:
            self._view = (self.generation, self._views(self.changed_at))
        return self._view[1]

    def context(self, view: context_mod.View) -> dict[str, Any]:
        """The template context of ``view``, built at once (benchmarks, tests)."""
        if self._context is None or self._context[0] is not view:
            self._context = (view, context_mod.build(view, self._entries))
        return self._context[1]

    async def context_sliced(self, view: context_mod.View) -> dict[str, Any]:
        """The template context of ``view``, built on the event loop in slices; one per view."""
        async with self._lock:
            if self._context is None or self._context[0] is not view:
                steps = context_mod.stepping(view, self._entries)
                deadline = time.perf_counter() + template_mod.SLICE
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        self._context = (view, done.value)
                        break
                    if time.perf_counter() >= deadline:
                        await asyncio.sleep(0)
                        deadline = time.perf_counter() + template_mod.SLICE
            return self._context[1]


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


@dataclass(frozen=True, slots=True)
class Rendered:
    result: str
    """written, unchanged, guarded, error (the template failed), write_error."""
    detail: str = ""
    started: command_mod.Started | command_mod.Outcome | None = None
    """The command, started right after the write (or why it could not start)."""


class Hook:
    """One configured hook and its loop; :meth:`run` is the task (everywhere, or leader-only)."""

    def __init__(
        self,
        spec: HookSpec,
        template: template_mod.Template,
        board: Board,
        *,
        backoff_base: float = 1.0,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.output = Path(spec.output)
        self.template = template
        self.stats = HookStats()
        self._board = board
        self._backoff_base = backoff_base
        self._clock = clock
        self._executor = executor
        self._dirty = asyncio.Event()
        self._progress = asyncio.Event()
        self._digest: str | None = None
        self._logged: set[str] = set()
        self._owner_warned = False
        board.attach(self)

    def notify(self) -> None:
        self._dirty.set()

    async def wait_progress(self) -> None:
        """Return after the next render or command run (for tests and benchmarks)."""
        self._progress.clear()
        await self._progress.wait()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Render and run until cancelled; ``stop`` is the leader-task signature (cancel is used)."""
        self._digest = await asyncio.to_thread(files.current_digest, self.output)
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
            if self._dirty.is_set():
                if self.spec.debounce:
                    await asyncio.sleep(self.spec.debounce)
                self._dirty.clear()
                # A write starts the command from the writing thread at once (unless in backoff).
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
                    if isinstance(rendered.started, command_mod.Outcome):
                        outcome = rendered.started
                    else:
                        outcome = await command_mod.finish(
                            rendered.started, self.spec.timeout, executor=self._executor
                        )
                    pending, failures, next_try = self._ran(outcome, failures)
                    continue
            if pending and not first and self.spec.command and time.monotonic() >= next_try:
                outcome = await command_mod.run(self.spec.command, self.spec.timeout, executor=self._executor)
                pending, failures, next_try = self._ran(outcome, failures)

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
        """Render on the event loop in slices; write (and start the command) in a thread."""
        view = self._board.view()
        if view is None:
            return None
        if self._guarded(view):
            self.stats.render("guarded")
            return Rendered("guarded")
        try:
            context = await self._board.context_sliced(view)
            data = await self.template.render_sliced(context)
        except template_mod.TemplateError as error:
            rendered = Rendered("error", str(error))
        else:
            new = files.digest(data)
            if new == self._digest:
                rendered = Rendered("unchanged")
            else:
                running = command_mod.Running()
                try:
                    rendered = await asyncio.to_thread(self._write, data, new, running if spawn else None)
                except asyncio.CancelledError:
                    running.cancel()  # a command the thread starts anyway is killed
                    raise
        if rendered.result == "written":
            # The rename is visible already; its fsync need not delay the command.
            asyncio.get_running_loop().run_in_executor(None, files.fsync_directory, self.output.parent)
        self.stats.render(rendered.result)
        if rendered.result in ("error", "write_error"):
            if rendered.detail not in self._logged:
                self._logged.add(rendered.detail)
                log.error("hook %s: %s; keeping the last good %s", self.name, rendered.detail, self.output)
        else:
            if self._logged:
                log.info("hook %s: rendering again", self.name)
            self._logged.clear()
            if rendered.detail and not self._owner_warned:
                self._owner_warned = True
                log.warning("hook %s: %s", self.name, rendered.detail)
        return rendered

    def _guarded(self, view: context_mod.View) -> bool:
        """The min_nodes guard: True (logged when it starts holding) while too few are healthy."""
        if not self.spec.min_nodes:
            return False
        healthy = view.healthy_nodes
        if healthy < self.spec.min_nodes:
            if not self.stats.guarded:
                self.stats.guarded = True
                log.warning(
                    "hook %s: only %d nodes healthy, fewer than min_nodes %d: keeping %s as it is",
                    self.name,
                    healthy,
                    self.spec.min_nodes,
                    self.output,
                )
            return True
        if self.stats.guarded:
            self.stats.guarded = False
            log.info(
                "hook %s: %d nodes healthy again (min_nodes %d)", self.name, healthy, self.spec.min_nodes
            )
        return False

    def _write(self, data: bytes, digest: str, spawn: command_mod.Running | None) -> Rendered:
        """Worker thread: write the file; then start the command if ``spawn``."""
        try:
            owner_lost = files.write_atomic(self.output, data, sync_directory=False)
        except OSError as error:
            return Rendered("write_error", f"cannot write {self.output}: {error.strerror or error}")
        self._digest = digest
        note = f"cannot keep the owner of {self.output} (not root); it is now ours" if owner_lost else ""
        started = None
        if spawn is not None and self.spec.command and not spawn.cancelled:
            started = command_mod.start(self.spec.command, spawn)
        return Rendered("written", note, started)


def build(specs: Sequence[HookSpec], board: Board) -> list[Hook]:
    """Compile every template and check every output directory; raise HookConfigError if any fails.

    Commands wait in threads of their own pool (one per hook, as a hook runs one command at a
    time), so a hanging command never holds a thread that renders or resolves names.
    """
    from node_dns.sinks.hooks.spec import HookConfigError

    env = template_mod.environment()
    executor = ThreadPoolExecutor(max_workers=max(len(specs), 1), thread_name_prefix="node-dns-hook")
    hooks = []
    for spec in specs:
        try:
            compiled = template_mod.compile_template(spec.name, spec.template or "", env)
        except template_mod.TemplateError as error:
            source = f" ({spec.template_file})" if spec.template_file else ""
            raise HookConfigError(f"hook {spec.name!r}: {error}{source}") from None
        problem = files.check_directory(Path(spec.output))
        if problem:
            raise HookConfigError(f"hook {spec.name!r}: {problem}")
        hooks.append(Hook(spec, compiled, board, executor=executor))
    return hooks
