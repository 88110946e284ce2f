"""One worker process: answers DNS over UDP from its copy of the zone, and nothing else.

Started by the parent (:mod:`.pool`) as ``python -m node_dns.transports.workers.child CTRL FDS
PARENT_PID`` with two inherited sockets: CTRL carries frames both ways (:mod:`.wire`), FDS
carries its UDP socket once its copy of the zone is in place, so the kernel never hands a
query to a worker that has nothing to answer from. It never talks to the apiserver, never
reads a file and serves no HTTP: the parent does all of that.

It exits when the parent goes: ``PR_SET_PDEATHSIG`` (SIGKILL) covers a parent killed outright,
the end of CTRL covers everything else (and a platform without prctl). SIGTERM and SIGINT are
ignored: sent to the whole process group they would end the workers before the parent has
stopped its other listeners, and it would take that for a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from node_dns import access, gcpolicy, logs, loop_lag, tsigkeys
from node_dns.answer import responder as responder_mod
from node_dns.answer import stats as answer_stats
from node_dns.answer import xfr
from node_dns.transports import ratelimit, udp
from node_dns.transports import state as state_mod
from node_dns.transports.workers import counters, wire
from node_dns.zone import journal, stream
from node_dns.zone.snapshot import Snapshot

log = logging.getLogger("node_dns.workers")

PR_SET_PDEATHSIG = 1
SOCKET_WAIT = 60.0
"""Seconds to wait for the UDP socket after asking for it; the parent sends it at once."""


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: nobody would ever stop us
        os._exit(0)


class Worker:
    """The answer path of one worker: its zone copy, responder, gate and counters."""

    def __init__(self, config: wire.WorkerConfig, writer: asyncio.StreamWriter) -> None:
        self.config = config
        self.index = config.index
        self._writer = writer
        self.snapshot: Snapshot | None = None
        self.responder: responder_mod.Responder | None = None
        self.state = state_mod.TransportState()
        self.limiter = ratelimit.RateLimiter(**config.rrl) if config.rrl is not None else None
        self.query_stats = answer_stats.QueryStats(config.duration_bounds, config.receive_wait_bounds)
        self.lag = loop_lag.LagMonitor(config.lag_bounds)
        self.gate: xfr.Transfers | None = None
        if config.transfers:
            options = xfr.Options(
                keys={
                    name: tsigkeys.Key(name, algorithm, secret)
                    for name, algorithm, secret in config.tsig_keys
                },
                rules=access.parse(config.transfer_allow),
                max_transfers=config.max_transfers,
                edns_udp_size=config.edns_udp_size,
            )
            # Over UDP the gate answers signed queries, refuses AXFR and sends IXFR the SOA or
            # TC=1 (the client retries over TCP, which the parent serves): it never reads the
            # journal, so the worker keeps none.
            self.gate = xfr.Transfers(options, self._current, journal.Journal(0, 0))
        self._awaiting_full = False
        self._reported: dict[counters.Key, float] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def _current(self) -> Snapshot:
        assert self.snapshot is not None
        return self.snapshot

    def sources(self) -> counters.Sources:
        return counters.Sources(
            queries=self.query_stats,
            state=self.state,
            rate_limits=self.limiter.stats if self.limiter is not None else None,
            transfers=self.gate.stats if self.gate is not None else None,
            lag=self.lag.histogram,
        )

    def send(self, *message: Any) -> None:
        if not self._writer.is_closing():
            self._writer.write(wire.frame(message))

    def apply(self, message: stream.Message) -> None:
        """Bring the copy up to date; a change that does not fit asks for the whole zone."""
        full = message[0] == stream.FULL
        if self._awaiting_full and not full:
            return  # changes sent before the parent saw our request: the full one follows
        old = self.snapshot
        try:
            new = stream.apply(old, message)
        except stream.StreamError as error:
            log.warning("worker %d: %s; asking for the whole zone", self.index, error)
            self._awaiting_full = True
            self.send(wire.RESYNC, str(error))
            return
        self._awaiting_full = False
        if self.responder is None:
            self.responder = responder_mod.Responder(
                new,
                edns_udp_size=self.config.edns_udp_size,
                max_answers=self.config.max_answers,
                query_stats=self.query_stats,
            )
        elif full or old is None:
            self.responder.update(new)
        else:
            self.responder.publish(old, new)  # keeps cached answers of the names not touched
        self.snapshot = new
        self.send(wire.APPLIED, new.generation, new.serial, new.synced)

    async def listen(self, sock: socket.socket) -> None:
        assert self.responder is not None
        self.transport = await udp.adopt(sock, self.responder, self.state, self.limiter, gate=self.gate)

    def report(self) -> None:
        """Send what the counters moved since the last report (nothing when nothing did)."""
        now = counters.tally(self.sources())
        delta = counters.since(now, self._reported)
        if delta:
            self._reported = now
            self.send(wire.STATS, delta, self.lag.longest)

    async def report_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            self.report()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def receive_socket(channel: socket.socket) -> socket.socket:
    """The UDP socket the parent bound for us, passed over ``channel`` (SCM_RIGHTS)."""
    channel.settimeout(SOCKET_WAIT)
    _, fds, _, _ = await asyncio.to_thread(socket.recv_fds, channel, 16, 1)
    if not fds:
        raise ConnectionError("the parent sent no socket")
    return socket.socket(fileno=fds[0])


async def run(ctrl_fd: int, fds_fd: int) -> int:
    """Serve until the parent closes the pipe; 0 then, 1 when the parent's first words are wrong."""
    ctrl = socket.socket(fileno=ctrl_fd)
    channel = socket.socket(fileno=fds_fd)
    reader, writer = await asyncio.open_connection(sock=ctrl)
    first = await wire.read(reader)
    if first is None or first[0] != wire.CONFIG:
        return 1
    worker = Worker(wire.WorkerConfig.from_wire(first[1]), writer)
    logs.setup(worker.config.log_level, worker.config.log_json)
    gcpolicy.tune()
    tasks: list[asyncio.Task[None]] = []
    try:
        while worker.transport is None:  # the first zone, then the socket
            message = await wire.read(reader)
            if message is None:
                return 0
            if message[0] == wire.ZONE:
                worker.apply(message[1])
                if worker.responder is not None:
                    worker.send(wire.WANT_SOCKET)
                    await writer.drain()
                    await worker.listen(await receive_socket(channel))
        channel.close()
        gc.collect()
        gc.freeze()  # modules and the first zone: no later collection walks them
        tasks = [
            asyncio.create_task(worker.report_periodically(), name="node-dns:worker-stats"),
            asyncio.create_task(worker.lag.run(), name="node-dns:worker-loop-lag"),
        ]
        while (message := await wire.read(reader)) is not None:
            if message[0] == wire.ZONE:
                worker.apply(message[1])
        return 0
    finally:
        for task in tasks:
            task.cancel()
        worker.close()
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or not all(arg.isdigit() for arg in args):
        print("usage: python -m node_dns.transports.workers.child CTRL_FD FDS_FD PARENT_PID", file=sys.stderr)
        return 2
    ctrl_fd, fds_fd, parent = (int(arg) for arg in args)
    die_with_parent(parent)
    # Ctrl-C and a SIGTERM sent to the process group reach every worker: the parent decides when
    # they stop (it closes their pipes after its own listeners), so a shutdown is not a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(ctrl_fd, fds_fd))
    result: int = uvloop.run(run(ctrl_fd, fds_fd))
    return result


if __name__ == "__main__":
    sys.exit(main())
