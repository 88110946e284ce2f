"""The prober against real loopback and namespace listeners: leave, return, flap, self-fault.

Nothing sleeps to synchronise: the tests wait for the prober's verdicts (polling a condition with
a generous deadline) and check timing from the prober's own result timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable

import pytest

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import prober as prober_mod
from node_dns.sources.probes.machine import Flip
from tests.harness import probe_targets as targets

INTERVAL = 0.4
TIMING = spec.Timing(interval=INTERVAL, timeout=0.2, rise=2, fall=2, jitter=1.0)


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Wait for ``condition`` (checked every 10 ms), bounded so no test hangs."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling state owned by the prober's tasks
            await asyncio.sleep(0.01)


def target(node: str, ip: str, probe: spec.Probe) -> prober_mod.Target:
    return prober_mod.Target(node, ipaddress.ip_address(ip), probe, frozenset({"home"}))


@contextlib.asynccontextmanager
async def running(p: prober_mod.Prober) -> AsyncIterator[list[Flip[prober_mod.Key]]]:
    flips: list[Flip[prober_mod.Key]] = []
    p.listeners.append(flips.extend)
    task = asyncio.create_task(p.run())
    try:
        yield flips
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def three() -> AsyncIterator[list[targets.TcpTarget]]:
    listeners = [targets.TcpTarget(f"127.0.0.{41 + n}") for n in range(3)]
    port = listeners[0].port
    for listener in listeners[1:]:
        listener.port = port
    for listener in listeners:
        await listener.start()
    yield listeners
    for listener in listeners:
        await listener.stop()


def tcp_targets(
    listeners: list[targets.TcpTarget], timing: spec.Timing = TIMING
) -> dict[prober_mod.Key, prober_mod.Target]:
    probe = spec.parse(f"tcp:{listeners[0].port}", timing=timing)
    found = [target(f"node-{n}", listener.host, probe) for n, listener in enumerate(listeners)]
    return {t.key: t for t in found}


async def test_first_round_gives_every_target_a_verdict_and_completes(three: list[targets.TcpTarget]) -> None:
    p = prober_mod.Prober(concurrency=8)
    wanted = tcp_targets(three)
    p.set_targets(wanted)
    assert p.complete == frozenset()
    async with running(p):
        await until(lambda: len(p.verdicts()) == 3)
        assert set(p.verdicts().values()) == {True}
        assert p.complete == {next(iter(wanted))[2]}


async def test_stopped_listener_leaves_within_fall_intervals_and_returns_after_rise(
    three: list[targets.TcpTarget],
) -> None:
    p = prober_mod.Prober(concurrency=8)
    wanted = tcp_targets(three)
    key = next(k for k in wanted if k[0] == "node-0")
    p.set_targets(wanted)
    async with running(p) as flips:
        await until(lambda: len(p.verdicts()) == 3)
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        await three[0].stop()
        await until(lambda: p.verdict(key) is False)
        down = next(f for f in flips if f.key == key and f.verdict is False)
        # fall probes at a fixed cadence: the last of them starts within fall x interval of the stop
        assert down.at - stopped <= TIMING.fall * INTERVAL + INTERVAL
        assert [f.verdict for f in flips if f.key != key] == [True, True]  # others: first verdicts only

        await three[0].start()
        started = loop.time()
        results_before = p.stats.areas["home"].results["success"]
        await until(lambda: p.verdict(key) is True)
        up = [f for f in flips if f.key == key][-1]
        assert up.verdict is True
        assert up.at - started <= TIMING.rise * INTERVAL + INTERVAL
        assert p.stats.areas["home"].results["success"] > results_before


async def test_flapping_faster_than_rise_and_fall_changes_no_verdict() -> None:
    timing = spec.Timing(interval=INTERVAL, timeout=0.1, rise=3, fall=3, jitter=0.0)
    listener = targets.TcpTarget("127.0.0.45")
    await listener.start()
    others = [targets.TcpTarget("127.0.0.46", listener.port), targets.TcpTarget("127.0.0.47", listener.port)]
    for other in others:
        await other.start()
    p = prober_mod.Prober(concurrency=8)
    wanted = tcp_targets([listener, *others], timing)
    key = next(k for k in wanted if k[0] == "node-0")
    loop = asyncio.get_running_loop()
    p.set_targets(wanted)  # jitter 0: every target is due at t0 + k x interval
    t0 = loop.time()
    try:
        async with running(p) as flips:
            await until(lambda: p.verdict(key) is True)
            first = len(flips)
            # Toggle half-way between probes: the probes see up, down, up, down ...
            for k in range(2, 14):
                await asyncio.sleep(max(t0 + (k + 0.5) * INTERVAL - loop.time(), 0))
                if k % 2:
                    await listener.start()
                else:
                    await listener.stop()
            seen = p.stats.areas["home"].results
            assert seen["failure"] >= 4  # it did flap
            assert [f for f in flips[first:] if f.key == key] == []
            assert p.verdict(key) is True
    finally:
        await listener.stop()
        for other in others:
            await other.stop()


async def test_a_target_removed_while_probed_is_forgotten(three: list[targets.TcpTarget]) -> None:
    p = prober_mod.Prober(concurrency=8)
    wanted = tcp_targets(three)
    p.set_targets(wanted)
    async with running(p):
        await until(lambda: len(p.verdicts()) == 3)
        keep = dict(list(wanted.items())[:1])
        p.set_targets(keep)
        assert set(p.verdicts()) == set(keep)
        assert p.machine.counts()[1] == 1


def test_cutting_our_own_path_to_every_target_keeps_the_verdicts() -> None:
    asyncio.run(_self_fault())


async def _self_fault() -> None:
    with targets.Namespace(extra=3) as ns, ns.tcp_listeners(8080):
        probe = spec.parse("tcp:8080", timing=TIMING)
        wanted = {t.key: t for t in (target(f"node-{n}", a, probe) for n, a in enumerate(ns.ns_ips))}
        p = prober_mod.Prober(concurrency=8)
        faults: list[bool] = []
        p.fault_listeners.append(faults.append)
        p.set_targets(wanted)
        async with running(p) as flips:
            await until(lambda: len(p.verdicts()) == 4 and all(p.verdicts().values()))
            first = len(flips)
            ns.cut()
            await until(lambda: p.fault)
            # Long enough for every target to fail fall times over: nothing leaves.
            failures = p.stats.areas["home"].results["failure"]
            await until(lambda: p.stats.areas["home"].results["failure"] >= failures + 4 * (TIMING.fall + 1))
            assert flips[first:] == []
            assert all(p.verdicts().values())
            ns.restore()
            await until(lambda: not p.fault)
            successes = p.stats.areas["home"].results["success"]
            await until(lambda: p.stats.areas["home"].results["success"] >= successes + 8)
            assert flips[first:] == []
            assert all(p.verdicts().values())
        assert faults == [True, False]
        assert p.machine.faults == 1
