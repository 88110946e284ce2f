"""The parent's side of ``--workers N``: N processes answering UDP from the zone it publishes.

The parent keeps everything that owns state or talks to the apiserver (the one watch, the
zone, leader election, transfers, TCP, HTTP). For each worker it binds a UDP socket with
``SO_REUSEPORT`` on the DNS address and port, so the kernel spreads queries over the workers by
their source address and port, and hands it over only once the worker holds the zone: until
then, and while a dead worker restarts, its share of queries goes to the others.

Each publication is encoded once (:mod:`node_dns.zone.stream`, in proportion to the change)
and written to every worker; a worker that reports a change it could not apply, or that was
not sent the previous generation, gets the whole zone. Workers report what they applied, so
:meth:`Pool.ready` can say every worker serves the current snapshot, and what they counted
(:mod:`.counters`), which is added to the parent's own counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node_dns.transports import sockets
from node_dns.transports.workers import counters, wire
from node_dns.zone import stream
from node_dns.zone.snapshot import Snapshot

log = logging.getLogger("node_dns.workers")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
STABLE_AFTER = 10.0
"""A worker that lived this long before dying is restarted at once (no backoff)."""
MAX_BUFFERED = 64 * 1024 * 1024
"""Bytes of zone messages a worker may leave unread before it is killed (and restarted)."""
STOP_GRACE = 2.0
CHILD = "node_dns.transports.workers.child"


@dataclass
class Link:
    """One worker slot: the process running in it now, and what it reported."""

    index: int
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = None
    writer: asyncio.StreamWriter | None = None
    channel: socket.socket | None = None
    """The parent's end of the socket-passing channel."""
    inode: int | None = None
    """Inode of the worker's UDP socket while it has one (for kernel drops)."""
    sent: int | None = None
    """Generation of the last zone message written to it."""
    applied: tuple[int, int, bool] | None = None
    """(generation, serial, synced) of the snapshot it last reported applied."""
    listening: bool = False
    started: float = 0.0
    restarts: int = 0
    """Times a worker in this slot died and was started again."""
    responses: int = 0
    """Responses the workers of this slot reported, summed over restarts."""
    lag_longest: float = 0.0


@dataclass
class Pool:
    """N workers answering UDP on ``host``:``port``; the zone comes from ``current``."""

    count: int
    host: str
    port: int
    config: Callable[[int], wire.WorkerConfig]
    """The configuration of worker ``index``."""
    current: Callable[[], Snapshot]
    targets: counters.Targets
    receive_buffer: int = 0
    clock: Callable[[], float] = time.monotonic
    links: list[Link] = field(default_factory=list)
    granted_buffer: int = 0
    """Receive buffer of the workers' sockets as the kernel granted it, bytes."""
    drops: counters.DropCounter = field(default_factory=counters.DropCounter)
    _first: socket.socket | None = None
    _closing: bool = False

    def __post_init__(self) -> None:
        self.links = [Link(index) for index in range(self.count)]

    # --- sockets ------------------------------------------------------------------------------
    def bind(self) -> int:
        """Bind the first worker's socket now (a port in use fails here, at start); the port."""
        self._first = self._socket(report=True)
        self.port = self._first.getsockname()[1]
        return self.port

    def _socket(self, *, report: bool = False) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
            sizing = sockets.size_receive_buffer(sock, self.receive_buffer)
            if report:
                sockets.report(sizing, limit=sockets.rmem_max())
            self.granted_buffer = sockets.granted(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    # --- running ------------------------------------------------------------------------------
    def start(self) -> dict[str, asyncio.Task[None]]:
        """One supervising task per worker (create them before kopf starts)."""
        return {
            f"worker-{link.index}": asyncio.create_task(
                self._supervise(link), name=f"node-dns:worker-{link.index}"
            )
            for link in self.links
        }

    async def _supervise(self, link: Link) -> None:
        """Run a worker in this slot forever: start it, serve it, and when it dies say so once
        and start another (at once after a long life, with a growing pause after a short one)."""
        pause = BACKOFF_FIRST
        while not self._closing:
            started = self.clock()
            try:
                outcome = await self._run(link)
            except OSError as error:
                outcome = f"could not start ({error})"
            if self._closing:
                return
            lived = self.clock() - started
            link.restarts += 1
            pause = 0.0 if lived >= STABLE_AFTER else min(BACKOFF_MAX, max(BACKOFF_FIRST, pause * 2))
            log.warning(
                "worker %d %s after %.1f s; starting it again%s (restart %d of this worker)",
                link.index,
                outcome,
                lived,
                f" in {pause:.1f} s" if pause else "",
                link.restarts,
            )
            if pause:
                await asyncio.sleep(pause)

    async def _run(self, link: Link) -> str:
        """Start a worker, feed it until its pipe ends; how it ended, as words for the log."""
        ctrl, ctrl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        channel, channel_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            fds = (ctrl_child.fileno(), channel_child.fileno())
            # Started from the event loop's thread: PR_SET_PDEATHSIG fires when the thread that
            # forked the child ends, so a pool thread would kill the worker with the thread.
            process = subprocess.Popen(  # noqa: ASYNC220 (vfork: milliseconds, on (re)start only)
                [sys.executable, "-m", CHILD, str(fds[0]), str(fds[1]), str(os.getpid())],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            for sock in (ctrl, channel):
                sock.close()
            raise
        finally:
            ctrl_child.close()
            channel_child.close()
        link.process, link.pid, link.channel = process, process.pid, channel
        link.started = self.clock()
        try:
            reader, writer = await asyncio.open_connection(sock=ctrl)
            link.writer = writer
            writer.write(wire.frame((wire.CONFIG, self.config(link.index).to_wire())))
            self._send_full(link)
            while (message := await wire.read(reader)) is not None:
                self._received(link, message)
        except (wire.WireError, OSError) as error:
            log.debug("worker %d: pipe broken: %s", link.index, error)
        except Exception:  # a bug on our side of the pipe: the worker goes, its slot stays
            log.exception("worker %d: unexpected message handling error; stopping it", link.index)
            process.kill()
        finally:
            self._detach(link)
        code = await self._reap(process)
        return _ended(process.pid, code)

    def _detach(self, link: Link) -> None:
        if link.writer is not None:
            link.writer.close()
        if link.channel is not None:
            link.channel.close()
        link.writer = link.channel = None
        link.inode = link.sent = link.applied = None
        link.listening = False

    async def _reap(self, process: subprocess.Popen[bytes]) -> int:
        """The exit status of a worker whose pipe ended (killed if it lingers)."""
        try:
            return await asyncio.to_thread(process.wait, STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            return await asyncio.to_thread(process.wait)

    def _received(self, link: Link, message: tuple[Any, ...]) -> None:
        tag = message[0]
        if tag == wire.APPLIED:
            generation, serial, synced = int(message[1]), int(message[2]), bool(message[3])
            link.applied = (generation, serial, synced)
        elif tag == wire.STATS:
            delta = message[1]
            counters.merge(delta, self.targets)
            link.responses += counters.responses(delta)
            link.lag_longest = max(link.lag_longest, float(message[2]))
        elif tag == wire.WANT_SOCKET:
            self._hand_socket(link)
        elif tag == wire.RESYNC:
            log.warning(
                "worker %d could not apply a change (%s): sending it the whole zone", link.index, message[1]
            )
            self._send_full(link)

    def _hand_socket(self, link: Link) -> None:
        if link.channel is None or link.listening:
            return
        sock = self._first if self._first is not None else self._socket()
        self._first = None
        try:
            socket.send_fds(link.channel, [b"s"], [sock.fileno()])
            link.inode = sockets.inode(sock)
            link.listening = True
        finally:
            sock.close()  # the worker holds it now: when it dies the kernel stops choosing it

    # --- the zone -----------------------------------------------------------------------------
    def _write(self, link: Link, data: bytes, generation: int) -> None:
        writer = link.writer
        if writer is None or writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning(
                "worker %d left %d bytes of zone changes unread: killing it", link.index, MAX_BUFFERED
            )
            if link.process is not None:
                link.process.kill()
            return
        writer.write(data)
        link.sent = generation

    def _send_full(self, link: Link) -> None:
        snap = self.current()
        self._write(link, wire.frame((wire.ZONE, stream.full(snap))), snap.generation)

    def publish(self, old: Snapshot, new: Snapshot) -> None:
        """Zone subscriber: the change to every worker that has ``old``, the whole zone to others.

        Each form is encoded at most once per publication, whatever the number of workers.
        """
        change: bytes | None = None
        whole: bytes | None = None
        tried = False
        for link in self.links:
            if link.writer is None:
                continue
            data = None
            if link.sent == old.generation:
                if not tried:
                    tried = True
                    message = stream.change(old, new)
                    change = wire.frame((wire.ZONE, message)) if message is not None else None
                data = change
            if data is None:
                if whole is None:
                    whole = wire.frame((wire.ZONE, stream.full(new)))
                data = whole
            self._write(link, data, new.generation)

    # --- what the others read -----------------------------------------------------------------
    @staticmethod
    def link_ready(link: Link, snap: Snapshot) -> bool:
        """Listening, and it has applied ``snap`` (the one the parent serves)."""
        return link.listening and link.applied is not None and link.applied[0] == snap.generation

    def ready(self) -> bool:
        """Every worker listens and serves the current snapshot. Right after a publication this
        is False until each worker has applied it and said so (well under a millisecond of its
        own work, plus a turn of both event loops)."""
        snap = self.current()
        return all(self.link_ready(link, snap) for link in self.links)

    def ready_detail(self) -> Mapping[str, Any]:
        snap = self.current()
        return {
            "workers": [
                {
                    "worker": link.index,
                    "pid": link.pid if link.writer is not None else None,
                    "ready": self.link_ready(link, snap),
                    "serial": link.applied[1] if link.applied is not None else None,
                    "restarts": link.restarts,
                }
                for link in self.links
            ]
        }

    def kernel_drops(self, tables: Iterable[Any] = sockets.PROC_TABLES) -> int | None:
        """Kernel drops on every worker socket, past ones included; None where /proc does not say."""
        found: dict[int, int] = {}
        readable = False
        live = {link.inode for link in self.links if link.inode is not None}
        for table in tables:
            try:
                text = table.read_text()
            except OSError:
                continue
            readable = True
            found.update(sockets.parse_drops(text.splitlines(), frozenset(live)))
        return self.drops.update(found, live) if readable else None

    @property
    def lag_longest(self) -> float:
        return max((link.lag_longest for link in self.links), default=0.0)

    async def close(self) -> None:
        """End every worker: close its pipe (it exits on the end of it), kill what lingers."""
        self._closing = True
        processes = [link.process for link in self.links if link.process is not None]
        for link in self.links:
            if link.writer is not None:
                link.writer.close()
        if self._first is not None:
            self._first.close()
            self._first = None
        deadline = self.clock() + STOP_GRACE
        while any(p.poll() is None for p in processes) and self.clock() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        for process in processes:
            if process.poll() is None:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(STOP_GRACE)


def _ended(pid: int, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"(pid {pid}) was killed by {name}"
    return f"(pid {pid}) exited with code {code}"
