"""The agent's rtnetlink reader against a real kernel, inside a network namespace: a dump that
spans many datagrams, and notifications the kernel drops because the event socket is full
(ENOBUFS) -- the agent must notice and read everything again, not go on with a stale view.

The reader runs in a child process entered into the namespace (``ip netns exec``); it reports
as JSON lines on stdout and waits for the test on stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.harness import netns as netns_mod
from tests.harness.controlplane import REPO_ROOT
from tests.harness.netns import Netns

ADDRESSES = 600

READER = """
import asyncio, json, sys
from node_dns.agent import netlink

netlink.EVENT_BUFFER = int(sys.argv[1])  # as small as the kernel allows: easy to overrun


def say(**what):
    print(json.dumps(what), flush=True)


async def main():
    reader = netlink.Netlink()
    await reader.open()
    say(ready=True)
    await asyncio.to_thread(sys.stdin.readline)  # the test changed the addresses meanwhile
    changes = reader.changes()
    relevant = await asyncio.wait_for(anext(changes), 30)
    found = await reader.addresses()
    say(relevant=relevant, overruns=reader.overruns, counts=reader.counts,
        addresses=sorted(str(a.ip) for a in found if a.interface == "eth0" and a.ip.version == 4))
    reader.close()


asyncio.run(main())
"""


@pytest.fixture
def ns() -> Iterator[Netns]:
    assert netns_mod.available() is None, netns_mod.available()
    with Netns.create("nl") as made:
        made.add_link("eth0")
        yield made


def run_reader(ns: Netns, buffer: int, change: list[str]) -> dict[str, object]:
    """Start the reader, apply ``change`` (``ip -batch`` lines) while it is not reading, report."""
    argv = ns.command([sys.executable, "-c", READER, str(buffer)])
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        first = child.stdout.readline()
        assert json.loads(first or "{}").get("ready"), child.stderr.read() if child.stderr else ""
        subprocess.run(
            ["ip", "-n", ns.name, "-batch", "-"], input="\n".join(change) + "\n", text=True, check=True
        )
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    report: dict[str, object] = json.loads(out.splitlines()[-1])
    return report


def many(count: int) -> list[str]:
    return [f"11.3.{n // 250}.{n % 250 + 1}" for n in range(count)]


def test_a_burst_that_overruns_the_event_socket_is_noticed_and_read_whole(ns: Netns) -> None:
    wanted = many(ADDRESSES)

    report = run_reader(ns, 0, [f"address add {ip}/32 dev eth0" for ip in wanted])

    assert isinstance(report["overruns"], int) and report["overruns"] >= 1
    assert report["addresses"] == sorted(wanted)


def test_without_an_overrun_the_events_are_counted_by_type(ns: Netns) -> None:
    report = run_reader(ns, 1 << 20, ["address add 11.4.0.1/32 dev eth0", "address del 11.4.0.1/32 dev eth0"])

    assert report["overruns"] == 0
    counts = report["counts"]
    assert isinstance(counts, dict) and counts["RTM_NEWADDR"] >= 1 and counts["RTM_DELADDR"] >= 1
    assert report["addresses"] == []
