"""What /healthz (alive) and /readyz (authoritative) answer, from the running parts' state.

Alive: every background task that should run forever still runs. A task that ends -- by an
error or by returning -- is a process that no longer does its job, and a liveness-probe restart
is the right answer. So only tasks that run forever are registered here; work that does not
apply on this platform (no ``malloc_trim``) is never started rather than started and ended.

Ready: the first complete node list has landed (until then DNS answers SERVFAIL), with details
for humans: the serial, whether the apiserver answers, how stale the view is, who leads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from node_dns.leader import Leadership
from node_dns.sources.nodes import SourceStats


class Detail(Protocol):
    def ready_detail(self) -> Mapping[str, Any]: ...


class Gate(Detail, Protocol):
    def ready(self) -> bool: ...


@dataclass
class Health:
    """The two checks the HTTP sink serves; ``leadership`` is set once leader election starts."""

    synced: Callable[[], bool]
    serial: Callable[[], int]
    source: SourceStats
    tasks: Mapping[str, asyncio.Task[Any]] = field(default_factory=dict)
    leadership: Leadership | None = None
    probes: Detail | None = None
    """Reachability probes (whether their verdicts apply), once configured."""
    serial_agreed: Callable[[], bool] | None = None
    """With leader election: whether this replica has checked its serial against the Lease."""
    workers: Gate | None = None
    """UDP worker processes: ready once every one serves the current snapshot."""
    wall: Callable[[], float] = time.time

    def live(self) -> tuple[bool, Mapping[str, Any]]:
        dead = [name for name, task in self.tasks.items() if task.done()]
        return not dead, {"dead_tasks": dead}

    def ready(self) -> tuple[bool, Mapping[str, Any]]:
        stats = self.source
        synced = self.synced()
        staleness = round(self.wall() - stats.last_contact, 3) if stats.last_contact else None
        agreed = self.serial_agreed() if self.serial_agreed is not None else True
        workers = self.workers.ready() if self.workers is not None else True
        return synced and agreed and workers, {
            "synced": synced,
            **({"serial_agreed": agreed} if self.serial_agreed is not None else {}),
            "serial": self.serial(),
            "apiserver_reachable": stats.reachable,
            "staleness_seconds": staleness,
            **(self.leadership.ready_detail() if self.leadership is not None else {}),
            **(self.probes.ready_detail() if self.probes is not None else {}),
            **(self.workers.ready_detail() if self.workers is not None else {}),
        }
