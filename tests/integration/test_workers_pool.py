"""The worker pool on its own: real worker processes and real sockets, a zone fed by hand.

No apiserver here (tests/integration/test_workers_live.py runs the whole server): this holds the
pool's own promises quickly — each worker gets the zone before its socket, every publication
reaches every worker, a worker that does not fit a change gets the whole zone, a dead one comes
back, and close() ends them all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable

import dns.message
import dns.rcode
import pytest

from node_dns.answer.stats import QueryStats
from node_dns.transports.state import TransportState
from node_dns.transports.workers import pool as pool_mod
from node_dns.transports.workers import wire
from node_dns.zone import stream
from node_dns.zone.writer import Zone
from tests.unit.zonekit import facts, synced_zone

ZONE = "lb.example.net"
PORTS = 48


def config(index: int) -> wire.WorkerConfig:
    return wire.WorkerConfig(index=index, stats_interval=0.1, duration_bounds=(0.001,), lag_bounds=(0.01,))


@pytest.fixture
async def running() -> AsyncIterator[tuple[pool_mod.Pool, Zone]]:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    targets = pool_mod.counters.Targets(QueryStats((0.001,)), TransportState())
    pool = pool_mod.Pool(2, "127.0.0.1", 0, config, lambda: zone.snapshot, targets)
    pool.bind()
    zone.subscribe(pool.publish)
    tasks = pool.start()
    try:
        await until(pool.ready)
        yield pool, zone
    finally:
        await pool.close()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 (the state lives in other processes: poll it)
            await asyncio.sleep(0.02)


def ask_from_many_ports(port: int, name: str, rdtype: str = "A") -> list[dns.message.Message]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(PORTS)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(3)
            sock.sendto(dns.message.make_query(name, rdtype).to_wire(), ("127.0.0.1", port))
        return [dns.message.from_wire(sock.recvfrom(65535)[0]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def answers(replies: list[dns.message.Message]) -> set[tuple[int, frozenset[str]]]:
    return {(r.rcode(), frozenset(rd.to_text() for rrset in r.answer for rd in rrset)) for r in replies}


async def ask(port: int, name: str, rdtype: str = "A") -> list[dns.message.Message]:
    return await asyncio.to_thread(ask_from_many_ports, port, name, rdtype)


async def test_every_worker_answers_each_publication(running: tuple[pool_mod.Pool, Zone]) -> None:
    pool, zone = running
    assert answers(await ask(pool.port, f"home.{ZONE}")) == {(dns.rcode.NOERROR, frozenset({"192.0.2.1"}))}

    zone.apply("n1", facts("n1", ["home"], ["192.0.2.9"]), "200")
    await until(pool.ready)

    assert answers(await ask(pool.port, f"home.{ZONE}")) == {(dns.rcode.NOERROR, frozenset({"192.0.2.9"}))}
    serials = {int(r.answer[0][0].serial) for r in await ask(pool.port, ZONE, "SOA")}
    assert serials == {zone.snapshot.serial}
    await until(lambda: all(link.responses > 0 for link in pool.links))


async def test_counts_reach_the_parent(running: tuple[pool_mod.Pool, Zone]) -> None:
    pool, _ = running
    await ask(pool.port, f"home.{ZONE}")
    await until(lambda: sum(pool.targets.queries.responses.values()) >= PORTS)
    assert sum(pool.targets.queries.responses.values()) == sum(link.responses for link in pool.links)


async def test_a_killed_worker_is_replaced_and_answers_the_current_zone(
    running: tuple[pool_mod.Pool, Zone],
) -> None:
    pool, zone = running
    victim = pool.links[0].pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    await until(lambda: pool.links[0].pid != victim and pool.ready())
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.7"]), "300")
    await until(pool.ready)

    assert answers(await ask(pool.port, f"home.{ZONE}")) == {(dns.rcode.NOERROR, frozenset({"192.0.2.7"}))}
    assert pool.links[0].restarts == 1


async def test_a_worker_that_missed_a_publication_is_sent_the_whole_zone(
    running: tuple[pool_mod.Pool, Zone],
) -> None:
    pool, zone = running
    pool.links[0].sent = -5  # as if a publication had not been written to it: the next goes whole
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.5"]), "400")
    await until(pool.ready)
    assert answers(await ask(pool.port, f"home.{ZONE}")) == {(dns.rcode.NOERROR, frozenset({"192.0.2.5"}))}


async def test_close_ends_every_worker(running: tuple[pool_mod.Pool, Zone]) -> None:
    pool, _ = running
    processes = [link.process for link in pool.links]
    await pool.close()
    assert all(p is not None and p.poll() is not None for p in processes)


async def test_a_change_a_worker_cannot_apply_makes_it_ask_for_the_whole_zone(
    running: tuple[pool_mod.Pool, Zone], caplog: pytest.LogCaptureFixture
) -> None:
    pool, zone = running
    old = zone.snapshot
    zone.apply("n1", facts("n1", ["home"], ["192.0.2.4"]), "500")
    change = stream.change(old, zone.snapshot)
    assert change is not None
    wrong_base = (change[0], change[1] + 1000, *change[2:])
    link = pool.links[1]
    assert link.writer is not None
    link.writer.write(wire.frame((wire.ZONE, wrong_base)))

    await until(lambda: "could not apply a change" in caplog.text)
    await until(pool.ready)
    assert answers(await ask(pool.port, f"home.{ZONE}")) == {(dns.rcode.NOERROR, frozenset({"192.0.2.4"}))}


async def test_rate_limiting_in_workers_is_counted_in_the_parent() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    targets = pool_mod.counters.Targets(QueryStats((0.001,)), TransportState())
    limits = {"responses_per_second": 1, "nxdomains_per_second": None, "slip": 2, "window": 15.0}

    def limited(index: int) -> wire.WorkerConfig:
        return wire.WorkerConfig(index=index, rrl=limits, stats_interval=0.1, duration_bounds=(0.001,))

    pool = pool_mod.Pool(2, "127.0.0.1", 0, limited, lambda: zone.snapshot, targets)
    pool.bind()
    tasks = pool.start()
    try:
        await until(pool.ready)
        replies = await asyncio.to_thread(ask_until_quiet, pool.port, f"home.{ZONE}")
        assert 0 < len(replies) < PORTS  # some dropped, some slipped or answered
        await until(lambda: sum(targets.rate_limits.values()) >= PORTS - len(replies))
        assert set(targets.rate_limits) <= {("responses", "dropped"), ("responses", "slipped")}
        assert targets.queries.dropped.get("rate_limited", 0) >= 1
    finally:
        await pool.close()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


def ask_until_quiet(port: int, name: str) -> list[dns.message.Message]:
    """PORTS queries from one address (one rate-limit account), the replies that came back."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(PORTS)]
    replies = []
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.5)
            sock.sendto(dns.message.make_query(name, "A").to_wire(), ("127.0.0.1", port))
        for sock in socks:
            try:
                replies.append(dns.message.from_wire(sock.recvfrom(65535)[0]))
            except TimeoutError:
                continue
        return replies
    finally:
        for sock in socks:
            sock.close()


async def test_kernel_drops_of_every_worker_socket_are_counted_and_survive_a_restart() -> None:
    zone = synced_zone([facts("n1", ["home"], ["192.0.2.1"])])
    targets = pool_mod.counters.Targets(QueryStats((0.001,)), TransportState())
    pool = pool_mod.Pool(2, "127.0.0.1", 0, config, lambda: zone.snapshot, targets, receive_buffer=16384)
    pool.bind()
    tasks = pool.start()
    try:
        await until(pool.ready)
        assert pool.kernel_drops() == 0
        stopped = pool.links[1].pid
        assert stopped is not None
        os.kill(stopped, signal.SIGSTOP)  # its small buffer fills, then the kernel drops
        try:
            await asyncio.to_thread(flood, pool.port, f"home.{ZONE}")
        finally:
            os.kill(stopped, signal.SIGCONT)
        dropped = pool.kernel_drops()
        assert dropped is not None and dropped > 0
        os.kill(stopped, signal.SIGKILL)
        await until(lambda: pool.links[1].pid != stopped and pool.ready())
        after = pool.kernel_drops()
        assert after is not None and after >= dropped
    finally:
        await pool.close()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


def flood(port: int, name: str) -> None:
    """2,000 queries from each of PORTS source ports: some flows land on every worker."""
    query = dns.message.make_query(name, "A").to_wire()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(PORTS)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        for _ in range(2000 // PORTS + 1):
            for sock in socks:
                sock.sendto(query, ("127.0.0.1", port))
    finally:
        for sock in socks:
            sock.close()
