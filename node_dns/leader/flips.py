"""Probe verdict flips as Events on the Node, posted by the leader only.

The leader's prober hands each flip here (:meth:`FlipEvents.add`); the leader task posts them
in order. An Event is a record of one change ("tcp:443 of 192.0.2.7: unreachable (timeout after
1s)"), so each flip gets its own Event; its name derives from the node, the flip and its time,
so a retry after a lost answer gets 409 and counts as recorded rather than posting twice. Flips
wait in a bounded queue: when the apiserver is away for long, the oldest are dropped (and
counted) rather than memory growing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from node_dns import kube
from node_dns.kube import errors
from node_dns.leader.events import EVENT_NAMESPACE, EventStats, node_event

log = logging.getLogger(__name__)

MAX_PENDING = 1000
RETRY_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class Flip:
    node: str
    reachable: bool
    message: str
    wall: float


def event_body(flip: Flip, uid: str, instance: str) -> dict[str, object]:
    """A Normal (reachable again) or Warning (unreachable) Event about the node's verdict."""
    digest = hashlib.sha256(
        repr((flip.node, uid, flip.message, flip.reachable, flip.wall)).encode()
    ).hexdigest()[:16]
    return node_event(
        name=f"{flip.node[:200].rstrip('.-')}.{digest}",
        node=flip.node,
        uid=uid,
        reason="ProbeReachable" if flip.reachable else "ProbeUnreachable",
        message=flip.message,
        warning=not flip.reachable,
        instance=instance,
        wall=flip.wall,
    )


class FlipEvents:
    """Queues flips while leading; the leader task posts them."""

    def __init__(self, client: kube.Client, instance: str) -> None:
        self._client = client
        self._instance = instance
        self._pending: deque[Flip] = deque(maxlen=MAX_PENDING)
        self._changed = asyncio.Event()
        self.leading = False
        self.stats = EventStats()

    def add(self, node: str, reachable: bool, message: str) -> None:
        """Called for each flip the prober decides (it runs on the leader only)."""
        if not self.leading:
            return
        if len(self._pending) == MAX_PENDING:
            self.stats.count("dropped")
        self._pending.append(Flip(node, reachable, message, time.time()))
        self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        self.leading = True
        try:
            while not stop.is_set():
                self._changed.clear()
                while self._pending and not stop.is_set():
                    flip = self._pending[0]
                    try:
                        await self._post(flip)
                    except (errors.ApiError, errors.Unreachable) as error:
                        self.stats.count("error")
                        log.warning("could not record a probe event for node %s: %s", flip.node, error)
                        await asyncio.sleep(RETRY_DELAY)
                        continue
                    self._pending.popleft()
                await self._changed.wait()
        finally:
            self.leading = False
            self._pending.clear()

    async def _post(self, flip: Flip) -> None:
        try:
            node = await self._client.get(f"/api/v1/nodes/{flip.node}", request_timeout=10)
        except errors.NotFound:
            return
        uid = str((node.get("metadata") or {}).get("uid") or "")
        try:
            await self._client.post(
                f"/api/v1/namespaces/{EVENT_NAMESPACE}/events",
                event_body(flip, uid, self._instance),
                request_timeout=10,
            )
        except errors.Conflict:
            self.stats.count("exists")
        else:
            self.stats.count("created")
