"""/healthz and /readyz: a task that ends reads as a dead process, so only tasks meant to run
forever are watched -- and work that does not apply on this platform is not started at all.

The server here is the real one, on loopback ports, with a kubeconfig whose apiserver does not
answer (liveness does not depend on the apiserver)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml

from node_dns import app, serving
from node_dns.health import Health
from node_dns.sources.nodes import SourceStats
from tests.unit.zonekit import settings


def unreachable_kubeconfig(folder: Path) -> Path:
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


async def until(predicate: Callable[[], object], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - state owned by the server's tasks
            await asyncio.sleep(0.01)


async def healthz(port: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        return response.status, json.loads(await response.text())


async def test_without_malloc_trim_the_server_stays_alive(tmp_path: Path) -> None:
    """musl and macOS have no malloc_trim: no trim task, and /healthz keeps answering 200."""
    config = settings(
        kubeconfig=str(unreachable_kubeconfig(tmp_path)),
        dns_address="127.0.0.1",
        dns_port=0,
        http_address="127.0.0.1",
        http_port=0,
    )
    server = await app.start(config, trimmer=lambda: None)
    try:
        # The lister has tried (and failed) once: the other tasks have run their first steps.
        await until(lambda: server.source.stats.lists.get("error", 0) >= 1)
        status, body = await healthz(server.http_port)
    finally:
        await serving.stop(server)

    assert "heap" not in server.tasks
    assert (status, body["dead_tasks"]) == (200, [])


async def test_with_malloc_trim_the_trim_task_runs_and_the_server_is_alive(tmp_path: Path) -> None:
    config = settings(
        kubeconfig=str(unreachable_kubeconfig(tmp_path)),
        dns_address="127.0.0.1",
        dns_port=0,
        http_address="127.0.0.1",
        http_port=0,
    )
    server = await app.start(config, trimmer=lambda: lambda: 0)
    try:
        await until(lambda: server.source.stats.lists.get("error", 0) >= 1)
        status, _ = await healthz(server.http_port)
        running = not server.tasks["heap"].done()
    finally:
        await serving.stop(server)

    assert (status, running) == (200, True)


async def test_a_task_that_ended_makes_the_process_not_alive() -> None:
    ended = asyncio.create_task(asyncio.sleep(0))
    await ended
    forever = asyncio.create_task(asyncio.Event().wait())
    health = Health(synced=lambda: True, serial=lambda: 1, source=SourceStats())
    health.tasks = {"ended": ended, "forever": forever}
    try:
        ok, detail = health.live()
    finally:
        forever.cancel()

    assert (ok, detail) == (False, {"dead_tasks": ["ended"]})


def test_ready_reports_the_staleness_on_the_injected_clock() -> None:
    stats = SourceStats(last_contact=1000.0, reachable=True)
    health = Health(synced=lambda: True, serial=lambda: 7, source=stats, wall=lambda: 1002.5)

    ok, detail = health.ready()

    assert ok is True
    assert detail == {"synced": True, "serial": 7, "apiserver_reachable": True, "staleness_seconds": 2.5}
