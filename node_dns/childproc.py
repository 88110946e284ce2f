"""Helper processes: a clean Python interpreter running one module, spoken to over a socket.

Work that must not share the serving process's CPU time slice and GIL (rendering hook
templates at thousands of nodes) runs in a child started as ``python -m <module> <fd> ...``:
a fresh interpreter that imports only what it needs, not a fork of the big process (a fork
copies page tables of hundreds of MB, and uvloop's own spawn forks: 15-50 ms per start here).
It is started with ``subprocess`` (vfork + exec) from a worker thread.

Parent and child exchange framed messages over a socketpair: a 4-byte big-endian length, then
a pickle. Both ends are the same program of the same version, so pickle is a private format
here, never read from anywhere else. The child reads until end of file: when the parent goes,
for any reason, its end of the socket closes and the child stops (see :func:`child_socket`).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 30
"""Largest message, bytes: a sanity bound against a corrupt stream, far above any real one."""

_ROOT = str(Path(__file__).resolve().parents[1])
"""The directory holding the ``node_dns`` package, put first on the child's path."""


class ChannelClosed(ConnectionError):
    """The other end is gone (end of file, or a broken stream)."""


def frame(message: object) -> bytes:
    """One message as bytes to write (pickled once, so a caller can time or reuse it)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def receive(reader: asyncio.StreamReader) -> Any:
    """The next message; raises :class:`ChannelClosed` at end of file."""
    try:
        (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if size > MAX_MESSAGE:
            raise ChannelClosed(f"message of {size} bytes")
        return pickle.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise ChannelClosed(str(error) or "end of file") from None


@dataclass
class Child:
    """A started helper: the process and the parent's end of its socket."""

    process: subprocess.Popen[bytes]
    sock: socket.socket

    @property
    def pid(self) -> int:
        return self.process.pid


def spawn(module: str, *args: str) -> Child:
    """Start ``python -m module <fd> args...`` (blocking: call from a worker thread).

    The child inherits stdout/stderr (its rare lines join the parent's log), not stdin, and
    no other descriptor than its end of the socket.
    """
    ours, theirs = socket.socketpair()
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *args],
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            close_fds=True,
            env=env,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Child(process, ours)


def child_socket(argv: list[str]) -> socket.socket:
    """In the child: the socket named by the first argument; terminal signals left to the parent.

    Ctrl-C in a terminal reaches the whole process group; the parent decides when to stop, and
    the child follows when the socket closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return socket.socket(fileno=int(argv[0]))
