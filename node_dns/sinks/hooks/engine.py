"""The render process's work: keep the state, render, write changed bytes, run commands.

The serving process decides *when* (debounce, retries, leadership, the metrics and the log);
this decides *what*: it holds the copy of the served state (:class:`context.State`), every
compiled template and, per hook, the digest of the file on disk and the command running now.

Rendering is synchronous here: this process answers no queries, so a 40 ms render delays
nobody but the other hooks' renders. Writing the file and starting the command happen in a
worker thread (system calls: fsync, vfork); waiting for a command happens in a thread of its
own pool (one per hook: a hook runs one command at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from node_dns.sinks.hooks import command, context, files
from node_dns.sinks.hooks import template as template_mod
from node_dns.sinks.hooks.spec import HookSpec
from node_dns.sinks.hooks.view import Rendered, Update


@dataclass
class Slot:
    """One hook as the render process holds it."""

    spec: HookSpec
    template: template_mod.Template
    output: Path
    digest: str | None = None
    hashed: bool = False
    """Whether ``digest`` is the file's (it is read again when the hook starts again)."""
    running: command.Running = field(default_factory=command.Running)
    started: command.Started | None = None


class Engine:
    """Every hook's templates and files; :meth:`prepare` renders, the rest writes and runs."""

    def __init__(self, specs: Sequence[HookSpec]) -> None:
        env = template_mod.environment()
        self.state = context.State()
        self.slots = {
            spec.name: Slot(
                spec, template_mod.compile_template(spec.name, spec.template or "", env), Path(spec.output)
            )
            for spec in specs
        }
        self._commands = ThreadPoolExecutor(
            max_workers=max(len(specs), 1), thread_name_prefix="node-dns-hook"
        )
        self.on_start: Callable[[str, int], None] = lambda name, pid: None
        """Called from the starting thread with each command's pid, before anything else."""

    def apply(self, update: Update) -> None:
        self.state.apply(update)

    def arm(self, name: str) -> Slot:
        """A new run begins: a cancel from now on reaches the command it starts."""
        slot = self.slots[name]
        slot.running = command.Running()
        return slot

    def prepare(self, name: str, rehash: bool) -> Rendered | bytes:
        """Render ``name`` from the state as it is now: its bytes, or why there are none."""
        slot = self.arm(name)
        if rehash:
            slot.hashed = False
        healthy = self.state.healthy_nodes
        if slot.spec.min_nodes and healthy < slot.spec.min_nodes:
            return Rendered("guarded", healthy=healthy)
        try:
            return slot.template.render(self.state.context())
        except template_mod.TemplateError as error:
            return Rendered("error", str(error), healthy=healthy)

    def write(self, name: str, data: bytes, spawn: bool) -> Rendered:
        """Worker thread: write the bytes if they changed, then start the command if ``spawn``."""
        slot = self.slots[name]
        healthy = self.state.healthy_nodes
        if not slot.hashed:
            slot.digest, slot.hashed = files.current_digest(slot.output), True
        new = files.digest(data)
        if new == slot.digest:
            return Rendered("unchanged", healthy=healthy)
        try:
            owner_lost = files.write_atomic(slot.output, data, sync_directory=False)
        except OSError as error:
            detail = f"cannot write {slot.output}: {error.strerror or error}"
            return Rendered("write_error", detail, healthy=healthy)
        slot.digest = new
        note = f"cannot keep the owner of {slot.output} (not root); it is now ours" if owner_lost else ""
        started = self._start(slot) if spawn and slot.spec.command and not slot.running.cancelled else None
        # The rename is visible already; its fsync need not delay the command.
        files.fsync_directory(slot.output.parent)
        return Rendered("written", note, started, healthy)

    def start(self, name: str) -> int | command.Outcome:
        """Worker thread, after :meth:`arm`: start the command (a retry, or the run a first
        render owes)."""
        return self._start(self.slots[name])

    def _start(self, slot: Slot) -> int | command.Outcome:
        assert slot.spec.command
        begun = command.start(slot.spec.command, slot.running)
        if isinstance(begun, command.Outcome):
            return begun
        slot.started = begun
        self.on_start(slot.spec.name, begun.process.pid)
        return begun.process.pid

    async def finish(self, name: str) -> command.Outcome:
        """Wait for the command started last (timeout: its process group is killed)."""
        slot = self.slots[name]
        started, slot.started = slot.started, None
        assert started is not None, f"hook {name}: no command to wait for"
        return await command.finish(started, slot.spec.timeout, executor=self._commands)

    def cancel(self, name: str) -> None:
        """The serving process stopped waiting (leadership lost, shutdown): kill the command."""
        self.slots[name].running.cancel()

    def close(self) -> None:
        """The serving process is gone: kill every command still running."""
        for slot in self.slots.values():
            slot.running.cancel()
        self._commands.shutdown(wait=False, cancel_futures=True)
