"""Running a hook's command: argv, no shell, a timeout that kills the whole process group.

The command starts in a new session, so a shell script's children share its process group and
die with it at the timeout. Output (stdout and stderr together) is kept up to a limit for the
log. A protocol collects it by callbacks, so no helper task is created (kopf cancels tasks
created after it started) and a daemon left running by the command cannot hold the run open
by keeping the pipe: the run ends when the command's own process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

OUTPUT_LIMIT = 2048
"""Bytes of a command's output kept for the log; the rest is counted, not kept."""
DRAIN_WAIT = 0.5
"""Seconds to wait for the rest of the output once the command has exited."""


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str
    """success, failed (non-zero exit or killed by a signal), timeout, or missing (cannot start)."""
    duration: float
    returncode: int | None = None
    output: str = ""
    dropped: int = 0
    """Bytes of output past :data:`OUTPUT_LIMIT`."""

    def describe(self) -> str:
        if self.result == "missing":
            return self.output
        if self.result == "timeout":
            status = f"killed after {self.duration:.1f}s (timeout)"
        elif self.returncode is not None and self.returncode < 0:
            status = f"killed by signal {-self.returncode}"
        else:
            status = f"exit {self.returncode}"
        text = self.output.strip()
        more = f" [... {self.dropped} more bytes]" if self.dropped else ""
        return f"{status}; output: {text!r}{more}" if text else status


class _Collect(asyncio.SubprocessProtocol):
    def __init__(self, limit: int, exited: asyncio.Future[None], drained: asyncio.Future[None]) -> None:
        self.kept = bytearray()
        self.dropped = 0
        self._limit = limit
        self._exited = exited
        self._drained = drained

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        room = self._limit - len(self.kept)
        self.kept += data[: max(room, 0)]
        self.dropped += max(len(data) - max(room, 0), 0)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self._drained.done():
            self._drained.set_result(None)

    def process_exited(self) -> None:
        if not self._exited.done():
            self._exited.set_result(None)


async def run(argv: Sequence[str], timeout: float, limit: int = OUTPUT_LIMIT) -> Outcome:  # noqa: ASYNC109
    """Run ``argv`` to completion or until ``timeout`` seconds; never raises for the command's sake.

    Cancelled (leadership lost, shutdown): the process group is killed before the cancellation
    goes on.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    exited: asyncio.Future[None] = loop.create_future()
    drained: asyncio.Future[None] = loop.create_future()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _Collect(limit, exited, drained),
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        reason = error.strerror or str(error)
        return Outcome("missing", time.monotonic() - started, output=f"cannot run {argv[0]}: {reason}")
    pid = transport.get_pid()
    result = "success"
    try:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(exited)
        except TimeoutError:
            result = "timeout"
            _kill_group(pid)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await asyncio.shield(exited)
    except asyncio.CancelledError:
        _kill_group(pid)
        transport.close()
        raise
    returncode = transport.get_returncode()
    duration = time.monotonic() - started
    # Output still in the pipe arrives after the exit; a daemon the command left holding the
    # pipe open is not waited for beyond a moment.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_WAIT):
            await asyncio.shield(drained)
    transport.close()
    if result == "success" and returncode != 0:
        result = "failed"
    return Outcome(
        result,
        duration,
        returncode,
        protocol.kept.decode("utf-8", "replace"),
        protocol.dropped,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
