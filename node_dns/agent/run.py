"""``node-dns agent``: wire the netlink reader, the loop, the publisher and the HTTP sink; run.

Exit codes: 0 when stopped by SIGTERM/SIGINT, 1 with one line on stderr when the agent cannot
do its job (the node does not exist, the apiserver refuses this identity).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Mapping
from typing import Any

from node_dns import heap, kube
from node_dns.agent import addresses
from node_dns.agent.loop import AgentLoop
from node_dns.agent.netlink import Netlink, follow
from node_dns.agent.publish import Fatal, Publisher
from node_dns.settings.agent import AgentSettings

log = logging.getLogger("node_dns.agent")

FAMILIES = {"ipv4": 4, "ipv6": 6}


def policy(settings: AgentSettings) -> addresses.Policy:
    return addresses.Policy(
        include=settings.agent_interfaces,
        exclude=settings.agent_exclude_interfaces,
        allowed=tuple(ipaddress.ip_network(net) for net in settings.agent_allowed_networks),
        families=frozenset(FAMILIES[name] for name in settings.agent_families),
        temporary=settings.agent_temporary_addresses,
        limit=settings.agent_max_addresses,
    )


async def run(settings: AgentSettings, node: str) -> int:
    """Publish this node's addresses until stopped; the exit code."""
    netlink = Netlink()
    try:
        await netlink.open()
    except OSError as error:
        print(f"node-dns agent: cannot open a netlink socket: {error}", file=sys.stderr)
        return 1
    # The lean client: the full one's aiohttp would be a third of the agent's memory.
    client = kube.LeanClient(kube.CredentialsLoader(settings.kubeconfig), timeout=10.0)
    publisher = Publisher(client, node, settings.discovered_annotation)
    loop = AgentLoop(
        netlink.addresses,
        publisher,
        policy(settings),
        reassert_interval=settings.agent_reassert_interval,
    )
    tasks: dict[str, asyncio.Task[Any]] = {
        "netlink": asyncio.create_task(follow(netlink, loop.kernel_changed), name="netlink"),
        "publish": asyncio.create_task(loop.run(), name="publish"),
    }
    runner = await _http(settings, loop, publisher, netlink, tasks)
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    log.info(
        "agent for node %s: publishing %s (reassert every %gs)",
        node,
        settings.discovered_annotation,
        settings.agent_reassert_interval,
    )
    trim = heap.trimmer()
    if trim is not None:  # what imports and the first reads left freed goes back to the OS
        tasks["heap"] = asyncio.create_task(
            heap.trim_periodically(trim, interval=300.0, off_loop=False), name="heap"
        )
    stopped: asyncio.Task[Any] = asyncio.create_task(stop.wait())
    every = [stopped, *tasks.values()]
    try:
        done, _ = await asyncio.wait(every, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks.values():
            if task in done and not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                if isinstance(failure, Fatal):
                    print(f"node-dns agent: {failure}", file=sys.stderr)
                else:
                    print(f"node-dns agent: {task.get_name()} failed: {failure!r}", file=sys.stderr)
                return 1
        return 0
    finally:
        for task in every:
            task.cancel()
        for task in every:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if runner is not None:
            await runner.cleanup()
        await client.close()
        netlink.close()


async def _http(
    settings: AgentSettings,
    loop: AgentLoop,
    publisher: Publisher,
    netlink: Netlink,
    tasks: Mapping[str, asyncio.Task[Any]],
) -> Any:
    if not settings.agent_http_port:
        return None
    # Imported only when asked for (the metrics library is 2 MB); the server is asyncio's own
    # (aiohttp's would be 12 MB, a third of the agent's memory budget).
    from node_dns.sinks import agent as agent_metrics
    from node_dns.sinks import plain_http

    def published() -> dict[str, int]:
        ips = loop.state.selection.ips
        return {"ipv4": sum(ip.version == 4 for ip in ips), "ipv6": sum(ip.version == 6 for ip in ips)}

    registry = agent_metrics.agent_registry(
        agent_metrics.AgentInputs(
            published=published,
            capped=lambda: loop.state.selection.capped,
            patches=publisher.stats.patches,
            reads=publisher.stats.reads,
            netlink_events=netlink.counts,
            netlink_overruns=lambda: netlink.overruns,
            in_sync=lambda: loop.state.in_sync,
            last_change=lambda: loop.state.last_change,
        )
    )

    def live() -> tuple[bool, Mapping[str, Any]]:
        dead = [name for name, task in tasks.items() if task.done()]
        return not dead, {"dead_tasks": dead}

    def ready() -> tuple[bool, Mapping[str, Any]]:
        return loop.state.in_sync, {"annotation": loop.state.selection.annotation()}

    return await plain_http.start(
        settings.agent_http_address, settings.agent_http_port, live=live, ready=ready, registry=registry
    )
