"""The hook loop: coalesced renders, writes only on change, retries, guard, last good file kept.

Renders happen in a real render process; commands are real processes (sh) that append a line
to a file per run, so runs are counted by what actually ran. Debounce is 0 or small; tests wait
on the hook's progress, not on time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node_dns import model
from node_dns.sinks.hooks import HookConfigError, Hooks, feed, runner, spec
from node_dns.sinks.hooks.view import Update

TEMPLATE = "{% for n in nodes if n.healthy %}\nserver {{ n.name }} {{ n.ips[0] }}\n{% endfor %}\n"


class State:
    """The served state the hooks read; tests change it and call ``hooks.changed()``."""

    def __init__(self) -> None:
        self.nodes: dict[str, model.NodeFacts] = {}
        self.synced = True
        self.extra: dict[str, Any] = {}

    def put(self, name: str, ip: str, ready: bool = True) -> None:
        self.nodes[name] = model.NodeFacts(
            name=name, areas=frozenset({"home"}), ips=(model.parse_ip(ip),), ready=ready
        )

    def ready(self) -> bool:
        return self.synced

    def updates(self, timestamp: float, full: bool) -> Iterator[Update]:
        nodes = tuple(feed.record(f, f.ready) for f in self.nodes.values())
        yield Update(zone="lb.example.net", serial=1, timestamp=timestamp, full=True, nodes=nodes)


def make(tmp_path: Path, state: State, **fields: Any) -> Hooks:
    base: dict[str, Any] = {
        "name": "lb",
        "template": TEMPLATE,
        "output": str(tmp_path / "out.cfg"),
        "command": ["sh", "-c", f"echo run >> {tmp_path / 'runs'}"],
        "debounce": 0,
    }
    base.update(fields)
    return Hooks((spec.HookSpec(**base),), state)


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def ran(hook: runner.Hook) -> int:
    return sum(hook.stats.runs.values())


async def until(hook: runner.Hook, predicate: Callable[[], object], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await hook.wait_progress()


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Hooks], runner.Hook]]:
    tasks: list[asyncio.Task[None]] = []

    def start(hooks: Hooks) -> runner.Hook:
        hook = hooks.hooks[0]
        tasks.append(asyncio.get_running_loop().create_task(hooks.process.run()))
        tasks.append(asyncio.get_running_loop().create_task(hook.run()))
        return hook

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_first_render_writes_the_file_and_runs_the_command(tmp_path: Path, started: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hook = started(make(tmp_path, state))
    await until(hook, lambda: ran(hook) == 1)
    assert (tmp_path / "out.cfg").read_text() == "server n1 192.0.2.1\n"
    assert hook.stats.renders == {"written": 1}
    assert hook.stats.runs == {"success": 1}
    assert hook.stats.last_success is not None


async def test_nothing_is_rendered_before_the_zone_is_synced(tmp_path: Path, started: Any) -> None:
    state = State()
    state.synced = False
    hooks = make(tmp_path, state)
    hook = started(hooks)
    await asyncio.sleep(0.05)  # give it the chance to do wrong
    assert not (tmp_path / "out.cfg").exists()
    state.synced = True
    state.put("n1", "192.0.2.1")
    hooks.changed()
    await until(hook, lambda: ran(hook) == 1)


async def test_unchanged_bytes_are_not_written_and_run_nothing(tmp_path: Path, started: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state)
    hook = started(hooks)
    await until(hook, lambda: ran(hook) == 1)
    inode = (tmp_path / "out.cfg").stat().st_ino
    state.put("n2", "192.0.2.2", ready=False)  # not in the output
    hooks.changed()
    await until(hook, lambda: hook.stats.renders.get("unchanged") == 1)
    assert (tmp_path / "out.cfg").stat().st_ino == inode
    assert runs(tmp_path) == 1


async def test_a_burst_of_200_changes_coalesces_into_one_render_and_one_run(
    tmp_path: Path, started: Any
) -> None:
    state = State()
    state.put("n0", "192.0.2.1")
    hooks = make(tmp_path, state, debounce=0.05)
    hook = started(hooks)
    await until(hook, lambda: ran(hook) == 1)
    for i in range(200):
        state.put(f"n{i % 20}", f"192.0.2.{i % 20 + 1}", ready=i % 3 != 0)
        hooks.changed()
    await until(hook, lambda: ran(hook) == 2)
    assert hook.stats.renders == {"written": 2}
    assert hook.stats.runs == {"success": 2}
    expected = "".join(
        f"server {f.name} {f.ips[0]}\n" for f in sorted(state.nodes.values(), key=lambda f: f.name) if f.ready
    )
    assert (tmp_path / "out.cfg").read_text() == expected


async def test_an_undefined_name_at_render_keeps_the_last_good_file_and_logs_once(
    tmp_path: Path, started: Any, caplog: pytest.LogCaptureFixture
) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    template = "{% for n in nodes %}\nserver {{ n.name }} {{ n.labels.rack }}\n{% endfor %}\n"
    (tmp_path / "out.cfg").write_text("last good\n")
    hooks = make(tmp_path, state, template=template)
    hook = started(hooks)
    with caplog.at_level(logging.ERROR, logger="node_dns.hooks"):
        await until(hook, lambda: hook.stats.renders.get("error") == 1)
        state.put("n2", "192.0.2.2")
        hooks.changed()
        await until(hook, lambda: hook.stats.renders.get("error") == 2)
    assert (tmp_path / "out.cfg").read_text() == "last good\n"
    assert runs(tmp_path) == 0
    errors = [r.getMessage() for r in caplog.records if r.name == "node_dns.hooks"]
    assert len(errors) == 1
    assert "hook lb: template line 2: undefined" in errors[0]


async def test_min_nodes_keeps_the_last_good_file(tmp_path: Path, started: Any) -> None:
    state = State()
    for i in range(3):
        state.put(f"n{i}", f"192.0.2.{i + 1}")
    hooks = make(tmp_path, state, min_nodes=2)
    hook = started(hooks)
    await until(hook, lambda: ran(hook) == 1)
    good = (tmp_path / "out.cfg").read_text()
    state.put("n0", "192.0.2.1", ready=False)
    state.put("n1", "192.0.2.2", ready=False)
    hooks.changed()
    await until(hook, lambda: hook.stats.guarded)
    assert hook.stats.renders["guarded"] == 1
    assert (tmp_path / "out.cfg").read_text() == good
    state.put("n0", "192.0.2.1")
    hooks.changed()
    await until(hook, lambda: ran(hook) == 2)
    assert not hook.stats.guarded
    assert (tmp_path / "out.cfg").read_text() == "server n0 192.0.2.1\nserver n2 192.0.2.3\n"


async def test_an_unwritable_output_is_counted_and_tried_again_without_a_change(
    tmp_path: Path, started: Any
) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state)
    hook = hooks.hooks[0]
    hook._backoff_base = 0.01
    out = tmp_path / "out.cfg"
    out.mkdir()  # a directory where the file should be: the rename fails
    started(hooks)
    await until(hook, lambda: hook.stats.renders.get("write_error", 0) >= 2)  # retried by itself
    assert ran(hook) == 0
    out.rmdir()
    await until(hook, lambda: ran(hook) == 1)
    assert out.read_text() == "server n1 192.0.2.1\n"


async def test_a_failing_command_is_retried_with_backoff_until_it_succeeds(
    tmp_path: Path, started: Any
) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    flag = tmp_path / "fixed"
    script = f"echo try >> {tmp_path / 'runs'}; test -e {flag}"
    hooks = make(tmp_path, state, command=["sh", "-c", script])
    hook = hooks.hooks[0]
    hook._backoff_base = 0.01
    started(hooks)
    await until(hook, lambda: hook.stats.runs.get("failed", 0) >= 3)
    flag.touch()
    await until(hook, lambda: hook.stats.runs.get("success") == 1)
    await asyncio.sleep(0.1)  # and then it stops retrying
    assert hook.stats.runs.get("success") == 1
    assert runs(tmp_path) == hook.stats.runs["failed"] + 1


async def test_a_hanging_command_is_killed_and_counted(tmp_path: Path, started: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state, command=["sleep", "300"], timeout=0.2, retry_max=3600)
    hook = started(hooks)
    await until(hook, lambda: hook.stats.runs.get("timeout") == 1)
    assert hook.stats.duration_count == 1


async def test_a_missing_command_is_counted(tmp_path: Path, started: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hooks = make(tmp_path, state, command=["/nonexistent/reload"], retry_max=3600)
    hook = started(hooks)
    await until(hook, lambda: hook.stats.runs.get("missing") == 1)
    assert (tmp_path / "out.cfg").exists()


async def test_a_hook_without_command_only_writes(tmp_path: Path, started: Any) -> None:
    state = State()
    state.put("n1", "192.0.2.1")
    hook = started(make(tmp_path, state, command=None))
    await until(hook, lambda: hook.stats.last_success is not None)
    assert hook.stats.runs == {}


def test_startup_names_the_hook_and_the_template_line(tmp_path: Path) -> None:
    with pytest.raises(HookConfigError, match=r"^hook 'lb': template line 2: unexpected '}'$"):
        make(tmp_path, State(), template="ok\n{{ zone }\n")


def test_startup_checks_the_output_directory(tmp_path: Path) -> None:
    with pytest.raises(HookConfigError, match=r"^hook 'lb': output directory .*/none does not exist$"):
        make(tmp_path, State(), output=str(tmp_path / "none" / "out.cfg"))


def test_startup_checks_the_output_directory_is_writable() -> None:
    """Run without the capabilities that let root write anywhere, against a directory it cannot write.

    Root keeps its uid (so it can still read a clone under a private directory) but loses
    CAP_DAC_OVERRIDE and its relatives from the bounding set: the mode bits then apply to it too.
    """
    directory = Path(tempfile.mkdtemp(prefix="node-dns-hooks-ro-"))
    try:
        directory.chmod(0o555)
        code = (
            "from pathlib import Path; from node_dns.sinks.hooks import files; "
            f"print(files.check_directory(Path({str(directory / 'out.cfg')!r})))"
        )
        argv = [sys.executable, "-c", code]
        if os.geteuid() == 0:
            argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *argv]
        root = Path(__file__).resolve().parents[2]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root)})
        assert done.stdout.strip() == f"output directory {directory} is not writable", done.stderr
    finally:
        directory.rmdir()
