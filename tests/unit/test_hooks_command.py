"""Hook commands run as real processes: exit codes, a timeout that kills the group, output capped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from node_dns.sinks.hooks import command


async def test_success_and_output() -> None:
    outcome = await command.run(["sh", "-c", "echo reloaded; echo warn >&2"], 10)
    assert (outcome.result, outcome.returncode) == ("success", 0)
    assert outcome.output == "reloaded\nwarn\n"


async def test_a_non_zero_exit_is_a_failure_with_its_output() -> None:
    outcome = await command.run(["sh", "-c", "echo bad config; exit 1"], 10)
    assert (outcome.result, outcome.returncode) == ("failed", 1)
    assert outcome.describe() == "exit 1; output: 'bad config'"


async def test_a_missing_program_is_reported_not_raised() -> None:
    outcome = await command.run(["/nonexistent/reload"], 10)
    assert outcome.result == "missing"
    assert "No such file" in outcome.describe()


async def test_a_hanging_command_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    outcome = await command.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], 2.0)
    assert outcome.result == "timeout"
    child = int(pidfile.read_text())
    async with asyncio.timeout(10):  # SIGKILL is delivered to the whole group, the child too
        while _alive(child):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_output_is_capped() -> None:
    outcome = await command.run(["sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x"], 10, limit=100)
    assert len(outcome.output) == 100
    assert outcome.dropped == 9900
    assert "[... 9900 more bytes]" in outcome.describe()


async def test_a_daemon_left_holding_the_output_does_not_hold_the_run(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon"
    outcome = await command.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; echo started"], 30)
    daemon = int(pidfile.read_text())
    try:
        assert outcome.result == "success"
        os.kill(daemon, 0)  # still running, still holding the pipe: the run did not wait for it
    finally:
        os.kill(daemon, 9)


def test_the_log_keeps_the_first_2_kib_of_output() -> None:
    assert command.OUTPUT_LIMIT == 2048  # README: "its output (first 2 KiB)"


async def test_a_cancelled_run_kills_the_process_group(tmp_path: Path) -> None:
    """Leadership lost or shutdown: the command does not outlive the hook."""
    pidfile = tmp_path / "child"
    run = asyncio.ensure_future(command.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], 60))
    async with asyncio.timeout(10):
        while not (pidfile.exists() and pidfile.read_text().strip()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    child = int(pidfile.read_text())
    async with asyncio.timeout(10):
        while _alive(child):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"
