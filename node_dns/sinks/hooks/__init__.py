"""Render hooks: files rendered from the live view of the zone, and a command run after each write.

- :mod:`~node_dns.sinks.hooks.spec`: the hooks file (YAML) and its validation.
- :mod:`~node_dns.sinks.hooks.template`: Jinja2's immutable sandbox with StrictUndefined.
- :mod:`~node_dns.sinks.hooks.view`, :mod:`~node_dns.sinks.hooks.feed`: the served state as
  records, and what changed of it, for the render process.
- :mod:`~node_dns.sinks.hooks.context`: the documented template context, kept up to date.
- :mod:`~node_dns.sinks.hooks.process`, :mod:`~node_dns.sinks.hooks.child`,
  :mod:`~node_dns.sinks.hooks.engine`: the render process and its work.
- :mod:`~node_dns.sinks.hooks.files`: atomic writes that keep mode and owner.
- :mod:`~node_dns.sinks.hooks.command`: argv with a timeout that kills the process group.
- :mod:`~node_dns.sinks.hooks.runner`: debounce, coalescing, retries, the min_nodes guard.
- :mod:`~node_dns.sinks.hooks.metrics`: the ``node_dns_hook_*`` families.

Nothing here is on the DNS query path: the zone tells the feed which names a change touched (a
set insert) and :meth:`Hooks.changed` sets a flag and an event per hook; rendering, writing and
commands happen in the render process, a child started once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import Metric

from node_dns.sinks.hooks import metrics, runner, spec
from node_dns.sinks.hooks.process import RenderProcess
from node_dns.sinks.hooks.spec import HookConfigError

__all__ = ["HookConfigError", "Hooks", "check", "load"]


class Hooks:
    """Every configured hook, checked; the app wires :meth:`changed`, :attr:`process` and the tasks."""

    def __init__(self, specs: tuple[spec.HookSpec, ...], source: runner.Source) -> None:
        self.process = RenderProcess(specs)
        self.board = runner.Board(source, self.process)
        self.hooks = runner.build(specs, self.board)

    def changed(self) -> None:
        self.board.changed()

    @property
    def everywhere(self) -> list[runner.Hook]:
        return [hook for hook in self.hooks if not hook.spec.leader_only]

    @property
    def leader_only(self) -> list[runner.Hook]:
        return [hook for hook in self.hooks if hook.spec.leader_only]

    def metrics(self) -> Iterator[Metric]:
        return metrics.families(self.hooks, self.process)


def check(path: str | Path) -> None:
    """Read the hooks file, compile every template, check every output directory.

    Raises :class:`HookConfigError` with one line naming the hook (and template line).
    """
    runner.check(spec.load(path))


def load(path: str | Path, source: runner.Source) -> Hooks:
    """:func:`check`, then the hooks (their render process is started by its task)."""
    return Hooks(spec.load(path), source)
