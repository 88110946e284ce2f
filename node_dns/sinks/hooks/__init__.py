"""Render hooks: files rendered from the live view of the zone, and a command run after each write.

- :mod:`~node_dns.sinks.hooks.spec`: the hooks file (YAML) and its validation.
- :mod:`~node_dns.sinks.hooks.template`: Jinja2's immutable sandbox with StrictUndefined.
- :mod:`~node_dns.sinks.hooks.context`: the documented template context.
- :mod:`~node_dns.sinks.hooks.files`: atomic writes that keep mode and owner.
- :mod:`~node_dns.sinks.hooks.command`: argv with a timeout that kills the process group.
- :mod:`~node_dns.sinks.hooks.runner`: debounce, coalescing, retries, the min_nodes guard.
- :mod:`~node_dns.sinks.hooks.metrics`: the ``node_dns_hook_*`` families.

Nothing here is on the DNS query path: the zone calls :meth:`Hooks.changed` after a publication
(a flag and an event per hook), and everything else happens in the hooks' own tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import Metric

from node_dns.sinks.hooks import metrics, runner, spec
from node_dns.sinks.hooks.spec import HookConfigError

__all__ = ["HookConfigError", "Hooks", "load"]


class Hooks:
    """Every configured hook, compiled and checked; the app wires :meth:`changed` and the tasks."""

    def __init__(self, specs: tuple[spec.HookSpec, ...], views: runner.Views) -> None:
        self.board = runner.Board(views)
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
        return metrics.families(self.hooks)


def load(path: str | Path, views: runner.Views) -> Hooks:
    """Read the hooks file, compile every template, check every output directory.

    Raises :class:`HookConfigError` with one line naming the hook (and template line).
    """
    return Hooks(spec.load(path), views)
