"""The election loop against an in-memory Lease store that behaves like the apiserver.

The store keeps resourceVersions (a PUT of a stale object answers 409, a second create too) and
can be taken down or made slow. Every scenario runs on a virtual clock (tests/unit/virtual_clock.py)
that the electors read as their monotonic clock and the store as its timestamps: the durations
asserted below are exact, whatever the load on the machine. Timings are scaled down (lease 0.6 s,
deadline 0.4 s, retry 0.1 s); the real apiserver scenarios are in
tests/integration/test_leader_election.py.
"""

from __future__ import annotations

import asyncio
import copy
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from node_dns.kube import ApiError, Conflict
from node_dns.leader import Config, Elector, LeaderTasks
from node_dns.leader.decide import Record, micro_time
from tests.unit import virtual_clock
from tests.unit.virtual_clock import settle, virtual_time

EPOCH = 1_767_225_600.0
"""Wall time at virtual time 0 (the Lease's acquire/renew times are wall-clock texts)."""

DURATION, DEADLINE, RETRY = 0.6, 0.4, 0.1
MICRO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class FakeLeases:
    """One Lease with apiserver semantics: resourceVersion checks, 404, 409, outages, latency."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.latency = 0.0
        self.hang = False
        self.history: list[tuple[float, Record]] = []
        self.calls: list[str] = []

    async def _enter(self, what: str) -> None:
        self.calls.append(what)
        if self.hang:
            await asyncio.Event().wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.down:
            raise OSError("connection refused")

    def _store(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(dict(body))
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.lease = stored
        self.history.append((now(), Record.from_spec(stored.get("spec"))))
        return copy.deepcopy(stored)

    async def get(self, request_timeout: float) -> dict[str, Any] | None:
        await self._enter("get")
        return copy.deepcopy(self.lease) if self.lease is not None else None

    async def create(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        await self._enter("create")
        if self.lease is not None:
            raise Conflict(409, {"reason": "AlreadyExists"}, "create")
        return self._store(body)

    async def replace(self, body: Mapping[str, Any], request_timeout: float) -> dict[str, Any]:
        await self._enter("replace")
        if self.lease is None:
            raise ApiError(404, {"reason": "NotFound"}, "replace")
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise Conflict(409, {"reason": "Conflict"}, "replace")
        return self._store(body)

    def force(self, record: Record) -> None:
        """Write a record as somebody else would (a stale replica, an admin)."""
        base = self.lease or {"metadata": {"name": "l", "namespace": "ns"}}
        self._store({**base, "spec": record.to_spec()})

    @property
    def record(self) -> Record | None:
        return Record.from_spec(self.lease.get("spec")) if self.lease else None


def now() -> float:
    """The virtual clock: what the electors read as their monotonic clock."""
    return asyncio.get_running_loop().time()


def wall() -> float:
    return EPOCH + now()


async def until(predicate: Callable[[], object], within: float) -> None:
    """Wait until ``predicate()`` is true; TimeoutError after ``within`` (virtual) seconds."""
    await virtual_clock.until(predicate, within)


def make_elector(
    store: FakeLeases, identity: str, tasks: LeaderTasks | None = None, seed: int = 0
) -> Elector:
    """An elector on the virtual clock, with its own seeded jitter."""
    return Elector(
        store, config(identity), tasks, clock=now, wall=wall, rand=random.Random(f"{identity}{seed}").random
    )


def config(identity: str, **overrides: float) -> Config:
    timings = {"lease_duration": DURATION, "renew_deadline": DEADLINE, "retry_period": RETRY, **overrides}
    return Config(name="l", namespace="ns", identity=identity, **timings)


class Replicas:
    """Several electors on one store, a sampler that checks at most one believes it leads."""

    def __init__(self, store: FakeLeases, names: list[str]) -> None:
        self.store = store
        self.electors = {name: make_elector(store, name) for name in names}
        self.overlaps: list[tuple[float, list[str]]] = []
        self._sampler: asyncio.Task[None] | None = None

    def start(self) -> None:
        for elector in self.electors.values():
            elector.start()
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            leaders = self.leaders()
            if len(leaders) > 1:
                self.overlaps.append((now(), leaders))
            await asyncio.sleep(0.005)

    def leaders(self) -> list[str]:
        return [name for name, e in self.electors.items() if e.is_leader]

    async def wait_leader(self, within: float, exclude: tuple[str, ...] = ()) -> str:
        def other() -> list[str]:
            return [name for name in self.leaders() if name not in exclude]

        await until(other, within)
        return other()[0]

    def crash(self, name: str) -> None:
        """Like kill -9: the loop stops, nothing is released."""
        task = self.electors[name]._task
        assert task is not None
        task.cancel()

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        for elector in self.electors.values():
            if elector._task is not None:
                elector._task.cancel()
        await asyncio.sleep(0)


@asynccontextmanager
async def three_replicas() -> AsyncIterator[Replicas]:
    group = Replicas(FakeLeases(), ["a", "b", "c"])
    group.start()
    try:
        yield group
    finally:
        await group.close()
    assert group.overlaps == [], "two replicas believed they led at once"


@virtual_time
async def test_first_replica_creates_the_lease_with_micro_times() -> None:
    async with three_replicas() as replicas:
        leader = await replicas.wait_leader(1.0)
        await asyncio.sleep(3 * RETRY)

        assert replicas.leaders() == [leader]
        record = replicas.store.record
        assert record is not None
        assert record.holder == leader
        assert record.lease_duration_seconds == 1  # 0.6 s rounded up: never shorter than ours
        assert record.transitions == 0
        assert MICRO.fullmatch(record.acquire_time or "")
        assert MICRO.fullmatch(record.renew_time or "")
        assert replicas.store.calls.count("create") >= 1


@virtual_time
async def test_renewal_keeps_acquire_time_and_only_changes_renew_time() -> None:
    async with three_replicas() as replicas:
        leader = await replicas.wait_leader(1.0)
        await asyncio.sleep(5 * RETRY)

        mine = [record for _, record in replicas.store.history if record.holder == leader]
        assert len(mine) >= 3
        assert {r.acquire_time for r in mine} == {mine[0].acquire_time}
        assert len({r.renew_time for r in mine}) == len(mine)
        assert {r.transitions for r in mine} == {0}
        assert replicas.electors[leader].status.gains == 1


@virtual_time
async def test_crashed_leader_is_replaced_only_after_its_lease_expires() -> None:
    async with three_replicas() as replicas:
        first = await replicas.wait_leader(1.0)
        await asyncio.sleep(2 * RETRY)
        last_renewal = replicas.store.history[-1][0]
        replicas.crash(first)

        second = await replicas.wait_leader(DURATION + 4 * RETRY + 0.5, exclude=(first,))
        took_over = now()

        assert took_over - last_renewal >= DURATION
        record = replicas.store.record
        assert record is not None
        assert record.holder == second
        assert record.transitions == 1
        assert record.acquire_time == record.renew_time


@virtual_time
async def test_graceful_shutdown_releases_and_another_takes_over_within_a_retry() -> None:
    async with three_replicas() as replicas:
        first = await replicas.wait_leader(1.0)
        await asyncio.sleep(2 * RETRY)
        before = replicas.store.record
        assert before is not None

        await replicas.electors[first].shutdown()
        released = replicas.store.history[-1][1]
        stopped = now()
        second = await replicas.wait_leader(3 * RETRY + 0.2, exclude=(first,))

        assert released.holder == ""
        assert released.lease_duration_seconds == 1
        assert released.transitions == before.transitions
        assert now() - stopped < 2.2 * RETRY + 0.1
        record = replicas.store.record
        assert record is not None
        assert (record.holder, record.transitions) == (second, before.transitions + 1)


@virtual_time
async def test_leader_steps_down_within_the_renew_deadline_when_the_apiserver_is_gone() -> None:
    async with three_replicas() as replicas:
        leader = await replicas.wait_leader(1.0)
        await asyncio.sleep(2 * RETRY)
        replicas.store.down = True
        last_renewal = replicas.store.history[-1][0]

        await until(lambda: not replicas.electors[leader].is_leader, DEADLINE + 0.3)
        stepped_down = now() - last_renewal

        assert stepped_down <= DEADLINE + 0.05
        assert replicas.leaders() == []
        assert replicas.electors[leader].status.last_error
        replicas.store.down = False
        await replicas.wait_leader(DURATION + 4 * RETRY + 0.5)


@virtual_time
async def test_a_hanging_request_does_not_hold_leadership_past_the_deadline() -> None:
    async with three_replicas() as replicas:
        leader = await replicas.wait_leader(1.0)
        await asyncio.sleep(2 * RETRY)
        replicas.store.hang = True
        last_renewal = replicas.store.history[-1][0]

        await until(lambda: not replicas.electors[leader].is_leader, DEADLINE + 0.3)

        assert now() - last_renewal <= DEADLINE + 0.05
        replicas.store.hang = False


@virtual_time
async def test_leader_that_reads_another_holder_steps_down_at_once() -> None:
    store = FakeLeases()
    elector = make_elector(store, "a")
    elector.start()
    try:
        await until(lambda: elector.is_leader, 1)
        store.force(Record("intruder", 1, micro_time(wall()), micro_time(wall()), 5))
        await until(lambda: not elector.is_leader, 3 * RETRY)
        assert elector.status.holder == "intruder"
    finally:
        await elector.shutdown()
    assert store.record is not None
    assert store.record.holder == "intruder"  # not ours: nothing released


@virtual_time
async def test_a_stale_lease_is_waited_out_by_local_time_whatever_its_renew_time_says() -> None:
    store = FakeLeases()
    store.force(Record("ghost", 1, "2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z", 2))
    elector = make_elector(store, "a")
    started = now()
    elector.start()
    try:
        await until(lambda: elector.is_leader, 1 + 4 * RETRY)
        waited = now() - started
    finally:
        await elector.shutdown()
    assert 1.0 <= waited <= 1.0 + 2.2 * RETRY + 0.1
    assert next(r.transitions for _, r in store.history if r.holder == "a") == 3


@virtual_time
async def test_racing_replicas_on_a_free_lease_get_one_winner_through_409() -> None:
    store = FakeLeases()
    store.force(Record("", 1, None, None, 0))
    store.latency = 0.02  # both read the same version before either writes
    electors = [make_elector(store, name) for name in ("a", "b", "c")]
    for e in electors:
        e.start()
    try:
        await asyncio.sleep(0.2)
        assert sum(e.is_leader for e in electors) == 1
    finally:
        for e in electors:
            await e.shutdown()
    holders = [r.holder for _, r in store.history]
    assert len([h for h in holders if h]) >= 1
    assert holders[1] != "" and all(h in ("", holders[1]) for h in holders[1:])


@virtual_time
async def test_terms_repeat_after_losing() -> None:
    store = FakeLeases()
    elector = make_elector(store, "a")
    elector.start()
    try:
        for _ in range(2):
            await until(lambda: elector.is_leader, DURATION + 1)
            store.down = True
            await until(lambda: not elector.is_leader, DEADLINE + 0.3)
            store.down = False
        await until(lambda: elector.is_leader, DURATION + 1)
    finally:
        await elector.shutdown()
    assert elector.status.gains == 3
    assert elector.status.losses == 3  # two deadlines, one shutdown


@virtual_time
async def test_leader_tasks_run_only_while_leading() -> None:
    store = FakeLeases()
    tasks = LeaderTasks()
    log: list[str] = []

    async def work(stop: asyncio.Event) -> None:
        log.append("start")
        try:
            await asyncio.Event().wait()
        finally:
            log.append("stop" if stop.is_set() else "stop-without-flag")

    tasks.register("work", work)
    elector = make_elector(store, "a", tasks)
    elector.start()
    try:
        await until(lambda: tasks.running() == ["work"], 1)
        store.down = True
        await until(lambda: not elector.is_leader, DEADLINE + 0.3)
        await settle()
        assert tasks.running() == []
        assert log == ["start", "stop"]
    finally:
        store.down = False
        await elector.shutdown()


def test_config_is_validated_like_client_go() -> None:
    with pytest.raises(ValueError, match="leader_renew_deadline"):
        Config(name="l", namespace="ns", identity="a", lease_duration=15, renew_deadline=2, retry_period=2)
    with pytest.raises(ValueError, match="identity"):
        Config(name="l", namespace="ns", identity="")


# --- annotations: the zone serial the leader records -----------------------------------------


@virtual_time
async def test_the_leader_writes_its_annotations_and_every_replica_reads_them() -> None:
    store = FakeLeases()
    leader, follower = make_elector(store, "a"), make_elector(store, "b", seed=1)
    record = {"node-dns.io/serial": "100 abc"}
    leader.annotate = lambda: dict(record)
    seen: list[Mapping[str, str]] = []
    follower.observe = lambda annotations: seen.append(dict(annotations))
    leader.start()
    try:
        await until(lambda: leader.is_leader, 1)
        follower.start()
        await until(lambda: {"node-dns.io/serial": "100 abc"} in seen, 5 * RETRY)
        record["node-dns.io/serial"] = "101 def"  # the leader's next renewal carries the new one
        await until(lambda: {"node-dns.io/serial": "101 def"} in seen, 5 * RETRY)
        assert not follower.is_leader
    finally:
        await follower.shutdown()
        await leader.shutdown()
    assert store.lease is not None
    assert store.lease["metadata"]["annotations"] == {"node-dns.io/serial": "101 def"}
