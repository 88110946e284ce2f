"""Leader election on a coordination.k8s.io/v1 Lease, and the leader-only tasks it gates.

Every replica serves DNS all the time; the leader alone performs side effects that must happen
once per cluster (today: recording invalid node annotations as Events). :class:`Leadership`
bundles what the application wires: the elector, the leader-only task registry, the Event
recorder and health details (its metric families are declared in :mod:`node_dns.sinks.metrics`).

- :mod:`~node_dns.leader.decide`: client-go's rules as pure functions (unit tested).
- :mod:`~node_dns.leader.elector`: the I/O loop (acquire, renew, step down, release, repeat).
- :mod:`~node_dns.leader.tasks`: ``async def task(stop)`` coroutines run while leading.
- :mod:`~node_dns.leader.events`: the first leader-only task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from node_dns import kube
from node_dns.leader.client import KubeEvents, KubeLeases
from node_dns.leader.elector import Config, Elector, Status
from node_dns.leader.events import InvalidAnnotationEvents
from node_dns.leader.tasks import LeaderTask, LeaderTasks

__all__ = [
    "Config",
    "Elector",
    "InvalidAnnotationEvents",
    "LeaderTask",
    "LeaderTasks",
    "Leadership",
    "Status",
]


class Leadership:
    """Leader election for one process, through the process's Kubernetes client."""

    def __init__(self, client: kube.Client, config: Config, *, record_events: bool) -> None:
        self.tasks = LeaderTasks()
        self.elector = Elector(KubeLeases(client, config.namespace, config.name), config, self.tasks)
        self.events: InvalidAnnotationEvents | None = None
        if record_events:
            self.events = InvalidAnnotationEvents(KubeEvents(client), config.identity)
            self.tasks.register("invalid-annotation-events", self.events.run)

    def register(self, name: str, task: LeaderTask) -> None:
        """Add a leader-only task (before :meth:`start`); render hooks use it."""
        self.tasks.register(name, task)

    def start(self) -> dict[str, asyncio.Task[None]]:
        """Create the election loop and the task runners; call before kopf starts."""
        return {task.get_name(): task for task in self.elector.start()}

    async def shutdown(self) -> None:
        """Stop leader tasks and release the Lease if held (the client is closed by its owner)."""
        await self.elector.shutdown()

    def ready_detail(self) -> Mapping[str, Any]:
        status = self.elector.status
        return {"leader_holder": status.holder, "leader_is_leader": status.is_leader}
