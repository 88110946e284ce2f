"""Running a hook's command: argv, no shell, a timeout that kills the whole process group.

The command starts in a new session, so a shell script's children share its process group and
die with it at the timeout. It is started and waited for in a worker thread with
``subprocess.Popen`` (vfork + exec): the event loop's own spawn forks the whole process, which
under uvloop took 15-50 ms per run here, against about 1.5 ms. Output (stdout and stderr) goes
to an anonymous temporary file, not a pipe, so a daemon the command leaves running cannot hold
the run open; the first :data:`OUTPUT_LIMIT` bytes are kept for the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import IO

OUTPUT_LIMIT = 2048
"""Bytes of a command's output kept for the log; the rest is counted, not kept."""


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


class Running:
    """The process of one run, shared between the thread that waits and a cancelling coroutine."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.pid is not None:
            kill_group(self.pid)


@dataclass
class Started:
    """A command already started (by :func:`start`), to be waited for with :func:`finish`."""

    process: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float
    running: Running


def start(argv: Sequence[str], running: Running | None = None) -> Started | Outcome:
    """Start ``argv`` now (blocking: call from a worker thread); an :class:`Outcome` if it cannot."""
    running = running or Running()
    started = time.monotonic()
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _finish, or below
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        output.close()
        reason = error.strerror or str(error)
        return Outcome("missing", time.monotonic() - started, output=f"cannot run {argv[0]}: {reason}")
    running.pid = process.pid
    if running.cancelled:  # cancelled while starting: the coroutine could not kill it yet
        kill_group(process.pid)
    return Started(process, output, started, running)


async def run(
    argv: Sequence[str],
    timeout: float,  # noqa: ASYNC109 - the command's own limit, enforced by the waiting thread
    limit: int = OUTPUT_LIMIT,
    executor: Executor | None = None,
) -> Outcome:
    """Run ``argv`` to completion or until ``timeout`` seconds; never raises for the command's sake.

    Cancelled (leadership lost, shutdown): the process group is killed before the cancellation
    goes on.
    """
    running = Running()

    def blocking() -> Outcome:
        begun = start(argv, running)
        return begun if isinstance(begun, Outcome) else _finish(begun, timeout, limit)

    return await _waited(asyncio.get_running_loop().run_in_executor(executor, blocking), running)


async def finish(
    started: Started,
    timeout: float,  # noqa: ASYNC109 - as in run()
    limit: int = OUTPUT_LIMIT,
    executor: Executor | None = None,
) -> Outcome:
    """Wait for a command :func:`start` began, as :func:`run` does."""
    loop = asyncio.get_running_loop()
    return await _waited(loop.run_in_executor(executor, _finish, started, timeout, limit), started.running)


async def _waited(future: asyncio.Future[Outcome], running: Running) -> Outcome:
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        running.cancel()
        raise


def _finish(begun: Started, timeout: float, limit: int) -> Outcome:
    process, output = begun.process, begun.output
    with output:
        result = "success"
        remaining = max(timeout - (time.monotonic() - begun.started), 0.0)
        try:
            returncode = process.wait(remaining)
        except subprocess.TimeoutExpired:
            result = "timeout"
            kill_group(process.pid)
            returncode = process.wait()
        duration = time.monotonic() - begun.started
        size = os.fstat(output.fileno()).st_size
        output.seek(0)
        kept = output.read(limit)
    if result == "success" and returncode != 0:
        result = "failed"
    return Outcome(result, duration, returncode, kept.decode("utf-8", "replace"), max(size - len(kept), 0))


def kill_group(pid: int) -> None:
    """SIGKILL to the process group of a command (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
