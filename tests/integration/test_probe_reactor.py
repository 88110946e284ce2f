"""The prober's reactor against real sockets: shared DNS socket, the concurrency bound, timeouts
without a timer per probe, and a long line of probes that fail at once."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable

from node_dns.settings import probe_spec as spec
from node_dns.sources.probes import prober as prober_mod
from node_dns.sources.probes.machine import Result
from tests.harness import probe_targets as targets

TIMING = spec.Timing(interval=0.4, timeout=0.2, rise=2, fall=2, jitter=1.0)


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Wait for ``condition`` (checked every 10 ms), bounded so no test hangs."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling state owned by the prober's tasks
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(p: prober_mod.Prober) -> AsyncIterator[None]:
    task = asyncio.create_task(p.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def targets_for(
    probe: spec.Probe, ips: list[str], counts: bool = True
) -> dict[prober_mod.Key, prober_mod.Target]:
    """``counts=False``: failures of these do not trip the self-fault guard (as for NotReady
    nodes), so a test where every target fails still sees verdicts."""
    found = [
        prober_mod.Target(f"node-{n}", ipaddress.ip_address(ip), probe, frozenset({"home"}), counts=counts)
        for n, ip in enumerate(ips)
    ]
    return {t.key: t for t in found}


async def test_dns_probes_of_every_target_share_one_socket() -> None:
    servers = [targets.DnsTarget(f"127.0.0.{51 + n}") for n in range(3)]
    for server in servers[1:]:
        server.port = servers[0].port
    for server in servers:
        await server.start()
    try:
        probe = spec.parse(f"dns:{servers[0].port}:probe.test", timing=TIMING)
        p = prober_mod.Prober(concurrency=8)
        p.set_targets(targets_for(probe, [s.host for s in servers]))
        async with running(p):
            await until(lambda: p.stats.probes >= 9)  # three rounds
            assert set(p.verdicts().values()) == {True}
        assert {port for s in servers for _, port in s.clients} == {next(iter(servers[0].clients))[1]}
    finally:
        for server in servers:
            await server.stop()


async def test_probes_in_flight_never_exceed_the_concurrency_and_time_out() -> None:
    # A UDP socket that never answers: every DNS probe waits for its whole timeout.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.55", 0))
    try:
        probe = spec.parse(f"dns:{silent.getsockname()[1]}:probe.test", timing=TIMING)
        p = prober_mod.Prober(concurrency=3)
        wanted = targets_for(probe, ["127.0.0.55"] * 12, counts=False)
        p.set_targets(wanted)
        async with running(p):
            await until(lambda: len(p.verdicts()) == 12)
        assert p.stats.peak_in_flight == 3
        assert set(p.verdicts().values()) == {False}
        details = {state.last.detail for state in p.machine.states.values() if state.last is not None}
        assert details == {"timeout after 0.2s"}
    finally:
        silent.close()


async def test_a_long_line_of_probes_failing_at_once_is_worked_through_without_recursion() -> None:
    # Port 0 makes every send fail inside the call (EINVAL): each probe finishes as it starts.
    probe = spec.Probe("dns", 0, name="probe.test", timing=spec.Timing(interval=1.0, timeout=0.5, jitter=0.0))
    p = prober_mod.Prober(concurrency=4)
    wanted = targets_for(probe, ["127.0.0.56"] * 3000, counts=False)
    p.set_targets(wanted)
    async with running(p):
        await until(lambda: len(p.verdicts()) == 3000)
    assert set(p.verdicts().values()) == {False}
    assert p.complete == {probe.key}
    assert {state.last.detail for state in p.machine.states.values() if state.last} == {"invalid argument"}


async def test_a_refused_dns_probe_fails_at_once_with_the_icmp_error() -> None:
    closed = targets.DnsTarget("127.0.0.57")  # port picked, nothing listening
    probe = spec.parse(
        f"dns:{closed.port}:probe.test", timing=spec.Timing(interval=10.0, timeout=5.0, fall=1, jitter=0.0)
    )
    p = prober_mod.Prober(concurrency=2)
    wanted = targets_for(probe, [closed.host], counts=False)
    key = next(iter(wanted))
    p.set_targets(wanted)
    async with running(p):
        await until(lambda: p.verdict(key) is not None)
    last = p.machine.states[key].last
    assert last is not None
    assert (last.ok, last.detail) == (False, "connection refused")
    assert last.latency < probe.timing.timeout  # not a timeout: the ICMP error ended it


async def test_ipv6_targets_are_probed_over_tcp_and_dns() -> None:
    listener, server = targets.TcpTarget("::1"), targets.DnsTarget("::1")
    await listener.start()
    await server.start()
    try:
        tcp = spec.parse(f"tcp:{listener.port}", timing=TIMING)
        dns = spec.parse(f"dns:{server.port}:probe.test", timing=TIMING)
        p = prober_mod.Prober(concurrency=8)
        p.set_targets(targets_for(tcp, ["::1"]) | targets_for(dns, ["::1"]))
        async with running(p):
            await until(lambda: len(p.verdicts()) == 2)
        assert set(p.verdicts().values()) == {True}
        assert {s.last.detail for s in p.machine.states.values() if s.last} == {"connected", "rcode NOERROR"}
    finally:
        await listener.stop()
        await server.stop()


async def test_a_failing_flip_listener_does_not_stop_the_results() -> None:
    listeners = [targets.TcpTarget(f"127.0.0.{58 + n}") for n in range(4)]
    for listener in listeners[1:]:
        listener.port = listeners[0].port
    for listener in listeners:
        await listener.start()
    try:
        # Jitter 0: all four connect in one tick and finish in one batch of the reactor.
        timing = spec.Timing(interval=0.4, timeout=0.2, jitter=0.0)
        probe = spec.parse(f"tcp:{listeners[0].port}", timing=timing)
        p = prober_mod.Prober(concurrency=8)

        def broken(_: object) -> None:
            raise RuntimeError("listener bug")

        p.listeners.append(broken)
        p.set_targets(targets_for(probe, [t.host for t in listeners]))
        async with running(p):
            await until(lambda: p.stats.probes >= 12)  # rounds after the failing first verdicts
            assert set(p.verdicts().values()) == {True}
            assert len(p.verdicts()) == 4
    finally:
        for listener in listeners:
            await listener.stop()


async def test_a_prober_run_again_probes_what_was_in_flight_when_it_stopped() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def check(ip: object, probe: spec.Probe) -> Result:
        calls.append(str(ip))
        if len(calls) == 1:
            await release.wait()  # the first probe is still in flight when the run stops
        return Result(True, "ok", 0.0, 0.0)

    probe = spec.parse("tcp:1", timing=spec.Timing(interval=0.2, timeout=0.1, jitter=0.0))
    p = prober_mod.Prober(concurrency=2, check=check)
    wanted = targets_for(probe, ["127.0.0.60"])
    key = next(iter(wanted))
    p.set_targets(wanted)
    async with running(p):
        await until(lambda: len(calls) == 1)
    async with running(p):
        await until(lambda: p.verdict(key) is True)
    assert len(calls) >= 2
