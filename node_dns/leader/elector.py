"""The leader election loop: client-go's algorithm on a coordination.k8s.io/v1 Lease, repeated.

One attempt (client-go's ``tryAcquireOrRenew``) is: GET the Lease (create it on 404), note when
its record last changed by the local monotonic clock, let :func:`decide.decide` choose, and PUT
the object that was read with the new record -- a stale resourceVersion answers 409 and the
round is lost. A leader renews every retry period from the object it last wrote (client-go's
fast path; a 409 sends it back to a GET).

A leader must renew within the renew deadline, counted from the moment it *sent* its last
successful write (earlier than the apiserver stored it, so the leader always gives up before
any other replica can see the lease expire). Every wait and request of a leader is bounded by
that deadline; when it passes, leadership ends at once. A leader that reads a record naming
someone else also steps down at once (client-go keeps believing until its deadline).

Terms repeat for the life of the process: after losing, the replica competes again. On a clean
shutdown the leader releases the Lease (no holder, ``leaseDurationSeconds: 1``, transitions
kept) so another replica takes over on its next retry instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from node_dns.kube import Conflict
from node_dns.leader import decide
from node_dns.leader.client import LeaseApi
from node_dns.leader.tasks import LeaderTasks

log = logging.getLogger(__name__)

TASK_STOP_GRACE = 5.0


@dataclass(frozen=True)
class Config:
    """Lease coordinates and timings (seconds); validated as client-go's NewLeaderElector does."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")
        problem = decide.check_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        if problem:
            raise ValueError(problem)


@dataclass
class Status:
    """What health and metrics read: plain values, updated by the loop."""

    is_leader: bool = False
    holder: str | None = None
    """Holder named by the last record seen ("" = released, None = never read)."""
    gains: int = 0
    """Times this process became leader."""
    losses: int = 0
    leading_since: float | None = None
    last_error: str | None = None


class Elector:
    """Runs the election forever (:meth:`run`) and releases on :meth:`shutdown`."""

    def __init__(
        self,
        leases: LeaseApi,
        config: Config,
        tasks: LeaderTasks | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._leases = leases
        self.config = config
        self.tasks = tasks if tasks is not None else LeaderTasks()
        self._clock = clock
        self._wall = wall
        self._rand = rand
        self.status = Status()
        self._observed: decide.Observed | None = None
        self._lease: dict[str, Any] | None = None
        """The object last read or written; a leader renews by PUT of it."""
        self._renewed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._writing = False
        """A create/PUT was sent and its answer not yet seen (it may have been stored)."""
        self.annotate: Callable[[], Mapping[str, str]] | None = None
        """Annotations the leader writes with each create and renewal (the agreed zone serial)."""
        self.observe: Callable[[Mapping[str, str]], None] | None = None
        """Called with the Lease's annotations each time it is read (every replica, every poll)."""

    # --- public ---------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.status.is_leader

    def start(self) -> list[asyncio.Task[None]]:
        """Create the loop task and the leader tasks' runners (call before kopf starts)."""
        runners = self.tasks.start()
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="node-dns:leader-election")
        return [self._task, *runners]

    async def run(self) -> None:
        """Compete, lead, lose, compete again -- until cancelled."""
        cfg = self.config
        log.info(
            "leader election: lease %s/%s as %r (duration %gs, renew deadline %gs, retry %gs)",
            cfg.namespace,
            cfg.name,
            cfg.identity,
            cfg.lease_duration,
            cfg.renew_deadline,
            cfg.retry_period,
        )
        try:
            while True:
                if await self._attempt(self._clock() + cfg.renew_deadline):
                    await self._lead()
                else:
                    now = self._clock()
                    delay = decide.acquire_delay(self._observed, now, cfg.retry_period, self._rand())
                    await asyncio.sleep(delay)
        finally:
            self._lose("leader election stopped")

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop competing, stop the leader tasks, and release the Lease if it names us."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._lose("shutting down")
        await self.tasks.wait_stopped(TASK_STOP_GRACE)
        if self.status.holder != self.config.identity and not self._writing:
            return  # the Lease did not name us when last seen, and no write of ours was in flight
        budget = grace if grace is not None else min(self.config.renew_deadline, 5.0)
        try:
            async with asyncio.timeout(budget):
                await self._release(self._clock() + budget)
        except TimeoutError:
            log.warning("could not release the lease within %.1fs", budget)
        except Exception as error:
            log.warning("could not release the lease: %s", error)

    # --- one attempt ------------------------------------------------------------------------------

    async def _attempt(self, deadline: float) -> bool:
        """client-go's tryAcquireOrRenew, bounded by ``deadline``; True when we hold the lease."""
        try:
            async with asyncio.timeout_at(self._loop_time(deadline)):
                ok = await self._try(deadline)
        except Conflict:
            self._lease = None
            self._writing = False
            return False
        except TimeoutError:
            self._note_error("no answer from the apiserver in time")
            self._lease = None
            return False
        except Exception as error:  # any API or connection failure loses this round only
            self._note_error(str(error) or type(error).__name__)
            self._lease = None
            return False
        if ok:
            self._failures = 0
            self.status.last_error = None
        return ok

    async def _try(self, deadline: float) -> bool:
        cfg = self.config
        started = self._clock()
        if self.status.is_leader and self._lease is not None:
            # Fast path: renew from the object last written. A 409 means it changed since (our
            # own write that timed out, or somebody else's): read it and decide below.
            current = decide.Record.from_spec(self._lease.get("spec"))
            record = decide.next_record(
                decide.Action.RENEW, current, cfg.identity, cfg.lease_duration, self._wall()
            )
            try:
                await self._write(self._lease, record, deadline, started)
                return True
            except Conflict:
                self._lease = None
                self._writing = False

        lease = await self._leases.get(self._remaining(deadline))
        self._writing = False
        if lease is not None and self.observe is not None:
            self.observe(lease.get("metadata", {}).get("annotations") or {})
        if lease is None:
            record = decide.next_record(
                decide.Action.CREATE, None, cfg.identity, cfg.lease_duration, self._wall()
            )
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": self._annotated({"name": cfg.name, "namespace": cfg.namespace}),
                "spec": record.to_spec(),
            }
            self._writing = True
            created = await self._leases.create(body, self._remaining(deadline))
            self._writing = False
            self._written(created, record, started)
            return True

        current = decide.Record.from_spec(lease.get("spec"))
        now = self._clock()
        self._observed = decide.observe(self._observed, current, now)
        self.status.holder = current.holder
        if self.status.is_leader and current.holder != cfg.identity:
            self._lose(f"the lease names {current.holder or 'nobody'}")
            return False
        action = decide.decide(self._observed, now, cfg.identity)
        if action is decide.Action.WAIT:
            return False
        record = decide.next_record(action, current, cfg.identity, cfg.lease_duration, self._wall())
        await self._write(lease, record, deadline, started)
        return True

    async def _write(
        self, lease: Mapping[str, Any], record: decide.Record, deadline: float, started: float
    ) -> None:
        body = dict(lease)
        body["spec"] = record.to_spec(lease.get("spec"))
        if record.holder == self.config.identity:
            body["metadata"] = self._annotated(lease.get("metadata", {}))
        self._writing = True
        written = await self._leases.replace(body, self._remaining(deadline))
        self._writing = False
        self._written(written, record, started)

    def _annotated(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """``metadata`` with the leader's annotations set (others kept)."""
        extra = self.annotate() if self.annotate is not None else {}
        if not extra:
            return dict(metadata)
        return {**metadata, "annotations": {**(metadata.get("annotations") or {}), **extra}}

    def _written(self, lease: dict[str, Any], record: decide.Record, started: float) -> None:
        """After a successful write: we hold it; the renew deadline counts from ``started``."""
        self._lease = lease
        stored = decide.Record.from_spec(lease.get("spec")) if lease.get("spec") else record
        self._observed = decide.Observed(stored, self._clock())
        self.status.holder = stored.holder
        self._renewed_at = started

    # --- leading ----------------------------------------------------------------------------------

    async def _lead(self) -> None:
        """One term: renew every retry period until the renew deadline passes without success."""
        cfg = self.config
        self._gain()
        while self.status.is_leader:
            deadline = self._renewed_at + cfg.renew_deadline
            pause = min(cfg.retry_period, deadline - self._clock())
            if pause > 0:
                await asyncio.sleep(pause)
            if self._clock() >= deadline:
                self._lose(f"not renewed within the renew deadline ({cfg.renew_deadline:g}s)")
                break
            if not await self._attempt(deadline) and self.status.is_leader and self._clock() >= deadline:
                self._lose(f"not renewed within the renew deadline ({cfg.renew_deadline:g}s)")
        await self.tasks.wait_stopped(TASK_STOP_GRACE)

    def _gain(self) -> None:
        if self.status.is_leader:
            return
        self.status.is_leader = True
        self.status.gains += 1
        self.status.leading_since = self._wall()
        record = self._observed.record if self._observed else None
        log.info(
            "became leader (lease %s/%s, transitions %s)",
            self.config.namespace,
            self.config.name,
            record.transitions if record else "?",
        )
        self.tasks.begin()

    def _lose(self, reason: str) -> None:
        if not self.status.is_leader:
            return
        self.status.is_leader = False
        self.status.losses += 1
        self.status.leading_since = None
        self._lease = None
        self.tasks.end()
        log.warning("stopped leading: %s", reason)

    # --- release ----------------------------------------------------------------------------------

    async def _release(self, deadline: float) -> None:
        """Write an empty holder if the Lease still names us (GET first: rv and holder fresh)."""
        cfg = self.config
        for _ in range(2):
            lease = await self._leases.get(self._remaining(deadline))
            if lease is None:
                return
            current = decide.Record.from_spec(lease.get("spec"))
            if current.holder != cfg.identity:
                return
            record = decide.released(current, self._wall())
            body = dict(lease)
            body["spec"] = record.to_spec(lease.get("spec"))
            try:
                await self._leases.replace(body, self._remaining(deadline))
            except Conflict:
                continue
            self.status.holder = ""
            log.info("released the lease %s/%s", cfg.namespace, cfg.name)
            return

    # --- helpers ----------------------------------------------------------------------------------

    def _remaining(self, deadline: float) -> float:
        return max(deadline - self._clock(), 0.001)

    def _loop_time(self, deadline: float) -> float:
        """``deadline`` on our clock as the event loop's time (they may differ in tests)."""
        return asyncio.get_running_loop().time() + (deadline - self._clock())

    def _note_error(self, message: str) -> None:
        self._failures += 1
        self.status.last_error = message
        # One line when trouble starts, then one in 30: an outage must not flood the log.
        if self._failures == 1 or self._failures % 30 == 0:
            log.warning("leader election: %s (attempt %d failing)", message, self._failures)
