"""Render hooks, an optional part: loaded when a hooks file is set.

The hooks package (and jinja2 with it) is imported inside :func:`load_hooks`, only when hooks
are configured: importing :mod:`node_dns.app` must not load it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from node_dns.settings import Settings
from node_dns.zone import writer

if TYPE_CHECKING:  # jinja2 is loaded only when hooks are configured
    from node_dns.app.server import Server
    from node_dns.sinks.hooks import Hooks

log = logging.getLogger("node_dns")


def load_hooks(settings: Settings, zone: writer.Zone) -> Hooks | None:
    """Render hooks when a hooks file is set; jinja2 is imported only then."""
    if not settings.hooks_file:
        return None
    from node_dns.sinks import hooks
    from node_dns.sinks.hooks import feed

    # Publications and fact changes that publish nothing (labels, cordons) both re-render.
    changes = feed.ZoneFeed(zone)
    loaded = hooks.load(settings.hooks_file, changes)
    changes.listen(loaded.changed)
    return loaded


def start_hooks(server: Server, hooks: Hooks) -> None:
    """One task per hook, created before kopf starts; leader-only hooks run as leader tasks.

    Without leader election every replica is its own leader, so leader-only hooks run here.
    The render process runs in every replica (it holds the state; leader-only hooks use it too).
    """
    server.tasks["hooks:render"] = asyncio.create_task(hooks.process.run(), name="node-dns:hooks:render")
    for hook in hooks.everywhere:
        server.tasks[f"hook:{hook.name}"] = asyncio.create_task(hook.run(), name=f"node-dns:hook:{hook.name}")
    for hook in hooks.leader_only:
        if server.leadership is not None:
            server.leadership.register(f"hook:{hook.name}", hook.run)
        else:
            server.tasks[f"hook:{hook.name}"] = asyncio.create_task(
                hook.run(), name=f"node-dns:hook:{hook.name}"
            )
    log.info(
        "render hooks: %s",
        ", ".join(f"{h.name}{' (leader only)' if h.spec.leader_only else ''}" for h in hooks.hooks),
    )
