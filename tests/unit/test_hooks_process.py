"""The render process: a fresh interpreter at a lower priority, restarted when it dies (one log
line, counted), gone with its parent, and killing a command nobody waits for any more."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from node_dns import childproc
from node_dns.sinks.hooks import Hooks, feed, process, runner
from node_dns.sinks.hooks.spec import HookSpec
from tests.unit.test_hooks_runner import State, make, ran, until
from tests.unit.zonekit import facts, new_zone, settings


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def _gone(pid: int) -> None:
    async with asyncio.timeout(10):
        while _alive(pid):  # noqa: ASYNC110 - a process we do not own: no event to wait on
            await asyncio.sleep(0.01)


def _pid_written(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def _pid_in(path: Path) -> int:
    async with asyncio.timeout(10):
        while (pid := _pid_written(path)) is None:  # noqa: ASYNC110 - written by the command
            await asyncio.sleep(0.01)
    return pid


def _argv(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Hooks], tuple[runner.Hook, asyncio.Task[None]]]]:
    tasks: list[asyncio.Task[None]] = []

    def start(hooks: Hooks) -> tuple[runner.Hook, asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks.append(loop.create_task(hooks.process.run()))
        hook_task = loop.create_task(hooks.hooks[0].run())
        tasks.append(hook_task)
        return hooks.hooks[0], hook_task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_it_is_a_fresh_interpreter_at_a_lower_priority(tmp_path: Path, running: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state)
    hook, _ = running(hooks)
    await until(hook, lambda: ran(hook) == 1)
    pid = hooks.process.pid
    assert pid is not None and pid != os.getpid()
    argv = _argv(pid)
    assert argv[1:3] == [b"-m", process.CHILD.encode()]  # started by exec, not forked from us
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + process.NICE)


async def test_a_dead_render_process_is_replaced_logged_once_and_counted(
    tmp_path: Path, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state)
    hook, _ = running(hooks)
    await until(hook, lambda: ran(hook) == 1)
    first = hooks.process.pid
    assert first is not None
    with caplog.at_level(logging.ERROR, logger="node_dns.hooks"):
        os.kill(first, 9)
        await _gone(first)
        state.put("n2", "192.0.2.2")
        hooks.changed()
        await until(hook, lambda: ran(hook) == 2)
    assert hooks.process.restarts == 1
    assert hooks.process.pid not in (None, first)
    assert (tmp_path / "out.cfg").read_text() == "server n1 192.0.2.1\nserver n2 192.0.2.2\n"
    lines = [r.getMessage() for r in caplog.records if r.name == "node_dns.hooks"]
    assert len(lines) == 1
    assert f"hook render process {first} was killed by signal 9; starting another in 1s" == lines[0]
    counted = {m.name: m.samples for m in hooks.metrics()}["node_dns_hook_render_process_restarts"]
    assert [s.value for s in counted if s.name.endswith("_total")] == [1.0]


async def test_losing_the_hook_task_kills_its_running_command(tmp_path: Path, running: Any) -> None:
    """Leadership lost or shutdown: the task is cancelled and the command's group is killed."""
    state = State()
    state.put("n1", "192.0.2.1")
    pidfile = tmp_path / "pid"
    hooks = make(
        tmp_path, state, command=["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=3600
    )
    _, task = running(hooks)
    sleeper = await _pid_in(pidfile)
    task.cancel()
    await _gone(sleeper)


async def test_it_kills_its_commands_and_exits_when_the_parent_goes(tmp_path: Path) -> None:
    """The parent's end of the socket closes when it exits or dies, whatever the cause."""
    pidfile = tmp_path / "pid"
    hook = HookSpec(
        name="lb",
        template="x\n",
        output=str(tmp_path / "out"),
        command=("sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"),
        timeout=3600,
    )
    child = await asyncio.to_thread(childproc.spawn, process.CHILD, "0")
    reader, writer = await asyncio.open_connection(sock=child.sock)
    writer.write(childproc.frame(("start", (hook,))))
    writer.write(childproc.frame(("render", 1, "lb", True, True)))
    note = await childproc.receive(reader)  # the command's pid, sent the moment it starts
    reply = await childproc.receive(reader)
    assert reply[2].result == "written"
    sleeper = await _pid_in(pidfile)
    assert note == ("pid", "lb", reply[2].started)
    writer.close()
    async with asyncio.timeout(10):
        assert await asyncio.to_thread(child.process.wait) == 0
    await _gone(sleeper)


async def test_a_new_render_process_renders_from_a_full_copy_of_a_real_zone(
    tmp_path: Path, running: Any
) -> None:
    """After the first copy only changes are sent; a replacement must get everything again."""
    zone = new_zone(settings())
    zone.replace_all([(facts(name, ["home"], [f"192.0.2.{i + 1}"]), "1") for i, name in enumerate("ab")], "1")
    changes = feed.ZoneFeed(zone)
    hook = HookSpec(
        name="lb",
        template="{% for n in nodes if n.healthy %}\n{{ n.name }}\n{% endfor %}\n",
        output=str(tmp_path / "out"),
        debounce=0,
    )
    hooks = Hooks((hook,), changes)
    changes.listen(hooks.changed)
    started, _ = running(hooks)
    await until(started, lambda: started.stats.renders.get("written") == 1)
    zone.apply("c", facts("c", ["home"], ["192.0.2.3"]), "2")  # a change: sent alone
    await until(started, lambda: started.stats.renders.get("written") == 2)
    assert (tmp_path / "out").read_text() == "a\nb\nc\n"
    first = hooks.process.pid
    assert first is not None
    os.kill(first, 9)
    await _gone(first)
    zone.apply("d", facts("d", ["home"], ["192.0.2.4"]), "3")
    await until(started, lambda: started.stats.renders.get("written") == 3)
    assert (tmp_path / "out").read_text() == "a\nb\nc\nd\n"


async def test_a_command_running_when_the_render_process_dies_is_killed_and_run_again(
    tmp_path: Path, running: Any
) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    pids = tmp_path / "pids"
    command = ["sh", "-c", f"sleep 300 & echo $! >> {pids}; wait"]
    hooks = make(tmp_path, state, command=command, timeout=3600)
    running(hooks)
    first = await _pid_in(pids)
    async with asyncio.timeout(10):  # the render process reports each command it starts
        while "lb" not in hooks.process.commands:  # noqa: ASYNC110 - a message being read
            await asyncio.sleep(0.01)
    renderer = hooks.process.pid
    assert renderer is not None
    os.kill(renderer, 9)
    await _gone(first)  # nobody would enforce its timeout any more
    async with asyncio.timeout(10):
        while len(_lines(pids)) < 2:  # noqa: ASYNC110 - written by the command
            await asyncio.sleep(0.01)
    assert _alive(int(_lines(pids)[1]))
    assert hooks.process.restarts == 1


def _lines(path: Path) -> list[str]:
    return path.read_text().split()
