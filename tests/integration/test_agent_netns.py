"""The node agent end to end: real interfaces in a network namespace, the real apiserver with the
chart's agent RBAC and admission policy, a token bound to the agent's Pod, and the controller
serving the `discovered` addresses.

The namespace stands for a node: several interfaces (veth pairs, both ends inside) carry global
and non-global addresses; one interface is excluded by name; the agent reaches the apiserver
through the namespace's uplink and sends nothing anywhere else.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import netns as netns_mod
from tests.harness.agent import AgentProcess
from tests.harness.agentworld import NAMESPACE, agent_world
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import wait_for
from tests.harness.netns import Netns, TcpRelay
from tests.harness.nodedns import AREAS_ANNOTATION, NodeDns
from tests.integration.livedns import answers

pytestmark = pytest.mark.controlplane

KEY = "node-dns/discovered-ips"
AREA = "home"
HTTP_PORT = 9481
START = "11.0.0.10,11.1.0.20,3ffe::10"


@dataclass
class World:
    plane: ControlPlane
    ns: Netns
    node: str
    kubeconfig: Path
    agent: AgentProcess
    dns: NodeDns
    relay: TcpRelay

    def annotation(self) -> str | None:
        notes = self.plane.get_node(self.node)["metadata"].get("annotations") or {}
        value = notes.get(KEY)
        return str(value) if value is not None else None

    def published(self) -> set[str]:
        return set(filter(None, (self.annotation() or "").split(",")))

    def wait_published(self, expected: set[str], what: str) -> None:
        try:
            wait_for(lambda: self.published() == expected, timeout=15, what=f"{what}: {expected}")
        except TimeoutError as error:
            raise AssertionError(f"{error}; agent log:\n{self.agent.logs()[-3000:]}") from None


def _interfaces(ns: Netns) -> None:
    """eth0 and eth1 carry global and non-global addresses; docker0 is excluded by name."""
    for name in ("eth0", "eth1", "docker0"):
        ns.add_link(name)
    ns.add_address("eth0", "11.0.0.10/24")  # global
    ns.add_address("eth0", "192.168.50.10/24")  # RFC 1918
    ns.add_address("eth0", "100.64.0.10/10")  # CGNAT
    ns.add_address("eth0", "3ffe::10/64", "nodad")  # global
    ns.add_address("eth0", "fd00::10/64", "nodad")  # ULA
    ns.add_address("eth1", "11.1.0.20/24")  # global
    ns.add_address("eth1", "198.18.0.20/15")  # benchmarking
    ns.add_address("eth1", "2001:db8::20/64", "nodad")  # documentation
    ns.add_address("docker0", "11.2.0.30/24")  # global, but on an excluded interface


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    assert netns_mod.available() is None, netns_mod.available()
    with agent_world({AREAS_ANNOTATION: AREA}) as made:
        _interfaces(made.ns)
        args = ["--agent-reassert-interval=10", f"--agent-http-port={HTTP_PORT}", "--log-level=debug"]
        with (
            AgentProcess(made.ns, made.kubeconfig, node=made.node, extra_args=args) as agent,
            NodeDns(made.plane.kubeconfig, extra_args=["--ip-sources=annotation,discovered"]) as dns,
        ):
            world = World(made.plane, made.ns, made.node, made.kubeconfig, agent, dns, made.relay)
            try:
                wait_for(lambda: world.annotation() == START, timeout=30, what=f"first annotation {START}")
            except TimeoutError as error:
                raise AssertionError(f"{error}; agent log:\n{agent.logs()[-3000:]}") from None
            yield world


def test_agent_publishes_global_addresses_of_included_interfaces_only(world: World) -> None:
    assert world.annotation() == START


def test_controller_serves_the_discovered_addresses(world: World) -> None:
    wait_for(lambda: answers(world.dns, AREA) == {"11.0.0.10", "11.1.0.20"}, timeout=10, what="A")

    assert answers(world.dns, AREA, "AAAA") == {"3ffe::10"}


def test_an_added_address_is_published_and_served(world: World) -> None:
    world.ns.add_address("eth1", "11.1.0.21/24")

    world.wait_published({"11.0.0.10", "11.1.0.20", "11.1.0.21", "3ffe::10"}, "added")
    wait_for(lambda: "11.1.0.21" in (answers(world.dns, AREA) or ()), timeout=10, what="served")


def test_a_removed_address_leaves_the_annotation_and_the_answer(world: World) -> None:
    world.ns.add_address("eth1", "11.1.0.22/24")
    world.wait_published({"11.0.0.10", "11.1.0.20", "11.1.0.21", "11.1.0.22", "3ffe::10"}, "added")

    world.ns.delete_address("eth1", "11.1.0.22/24")

    world.wait_published({"11.0.0.10", "11.1.0.20", "11.1.0.21", "3ffe::10"}, "removed")
    wait_for(lambda: "11.1.0.22" not in (answers(world.dns, AREA) or ()), timeout=10, what="unserved")


def test_a_non_global_address_added_changes_nothing(world: World) -> None:
    before = world.annotation()
    world.ns.add_address("eth0", "10.9.9.9/24")
    world.ns.add_address("eth0", "11.0.0.13/24")  # a marker: the agent has read past the first

    wait_for(lambda: "11.0.0.13" in world.published(), timeout=15, what="marker")
    assert world.published() - {"11.0.0.13"} == set((before or "").split(","))


def test_an_address_going_deprecated_is_withdrawn_from_the_answer(world: World) -> None:
    world.ns.add_address("eth1", "3ffe:2::10/64", "nodad")
    wait_for(lambda: "3ffe:2::10" in world.published(), timeout=15, what="second IPv6 published")

    world.ns.change_address("eth1", "3ffe:2::10/64", "preferred_lft", "0")

    assert "deprecated" in world.ns.addresses("eth1")
    wait_for(lambda: "3ffe:2::10" not in world.published(), timeout=15, what="deprecated withdrawn")
    wait_for(lambda: "3ffe:2::10" not in (answers(world.dns, AREA, "AAAA") or ()), timeout=10, what="DNS")


def test_a_tentative_address_is_published_once_duplicate_detection_is_done(world: World) -> None:
    world.ns.sysctl("net.ipv6.conf.eth0.dad_transmits", "3")  # DAD takes ~3 s
    world.ns.add_address("eth0", "3ffe::30/64")
    world.ns.add_address("eth0", "11.0.0.30/24")  # a marker: the agent has read past the add

    wait_for(lambda: "11.0.0.30" in world.published(), timeout=15, what="marker")
    if "tentative" in world.ns.addresses("eth0"):
        assert "3ffe::30" not in world.published()
    wait_for(lambda: "3ffe::30" in world.published(), timeout=20, what="published after DAD")


def test_temporary_addresses_are_not_published(world: World) -> None:
    world.ns.sysctl("net.ipv6.conf.eth1.use_tempaddr", "2")
    world.ns.add_address("eth1", "3ffe:1::1/64", "mngtmpaddr", "nodad")

    wait_for(lambda: "temporary" in world.ns.addresses("eth1"), timeout=15, what="a temporary address")
    temporary = re.findall(r"inet6 (3ffe:1:[0-9a-f:]+)/64 scope global temporary", world.ns.addresses("eth1"))
    wait_for(lambda: "3ffe:1::1" in world.published(), timeout=15, what="the stable address")
    assert temporary and not set(temporary) & world.published()


def test_a_point_to_point_address_publishes_the_local_end_not_the_peer(world: World) -> None:
    world.ns.add_address("eth1", "11.4.0.1", "peer", "11.4.0.2/32")

    wait_for(lambda: "11.4.0.1" in world.published(), timeout=15, what="the local end published")
    assert "11.4.0.2" not in world.published()


def test_addresses_of_an_interface_going_down_are_withdrawn(world: World) -> None:
    world.ns.add_link("eth2")
    world.ns.add_address("eth2", "11.3.0.1/24")
    wait_for(lambda: "11.3.0.1" in world.published(), timeout=15, what="eth2 published")

    world.ns.set_down("eth2")

    wait_for(lambda: "11.3.0.1" not in world.published(), timeout=15, what="eth2 withdrawn")


def test_an_overwritten_annotation_is_put_back(world: World) -> None:
    before = world.annotation()
    world.plane.annotate(world.node, {KEY: "192.0.2.66"})

    wait_for(lambda: world.annotation() == before, timeout=30, what="annotation repaired")


def test_a_change_while_the_apiserver_is_unreachable_lands_once_it_is_back(world: World) -> None:
    world.relay.block()
    try:
        world.ns.add_address("eth1", "11.1.0.40/24")
        wait_for(
            lambda: "cannot update node" in world.agent.logs() and "next in" in world.agent.logs(),
            timeout=30,
            what="a failed attempt, retried with backoff",
        )
        assert "11.1.0.40" not in world.published()
    finally:
        world.relay.unblock()

    wait_for(lambda: "11.1.0.40" in world.published(), timeout=90, what="published after the outage")
    wait_for(lambda: "updated again after" in world.agent.logs(), timeout=10, what="recovery logged")
    assert world.agent.running()


def test_agent_metrics_count_addresses_patches_and_events(world: World) -> None:
    text = world.agent.get(HTTP_PORT, "/metrics")

    ipv4 = re.search(r'^node_dns_agent_addresses\{family="ipv4"\} (\d+)', text, re.M)
    ok = re.search(r'^node_dns_agent_patches_total\{result="ok"\} ([\d.]+)', text, re.M)
    events = re.search(r'^node_dns_agent_netlink_events_total\{type="RTM_NEWADDR"\} ([\d.]+)', text, re.M)
    assert ipv4 and int(ipv4.group(1)) >= 2
    assert ok and float(ok.group(1)) >= 1
    assert events and float(events.group(1)) >= 1
    assert re.search(r"^process_resident_memory_bytes ", text, re.M)


def test_agent_health_and_readiness(world: World) -> None:
    assert '"ok": true' in world.agent.get(HTTP_PORT, "/healthz")
    assert '"ok": true' in world.agent.get(HTTP_PORT, "/readyz")


def test_agent_logs_each_change_it_publishes(world: World) -> None:
    assert f"node {world.node}: {KEY} (absent) -> {START}" in world.agent.logs()


def test_agent_patches_only_its_key(world: World) -> None:
    node = world.plane.get_node(world.node)
    managers = [m for m in node["metadata"]["managedFields"] if "f:node-dns/discovered-ips" in str(m)]

    assert managers
    assert all(
        set(m["fieldsV1"].get("f:metadata", {}).get("f:annotations", {})) <= {".", f"f:{KEY}"}
        for m in managers
    )


# --- failures: one line and a non-zero exit -------------------------------------------------


def run_to_exit(world: World, kubeconfig: Path, node: str | None) -> tuple[int, str]:
    with AgentProcess(world.ns, kubeconfig, node=node) as agent:
        code = agent.wait(timeout=60)
        return code, agent.logs()


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_agent_on_the_wrong_node_is_refused_by_the_apiserver_and_exits_1(world: World) -> None:
    other = f"other-{uuid.uuid4().hex[:6]}"
    world.plane.create_node(other)

    code, logs = run_to_exit(world, world.kubeconfig, other)

    assert code == 1
    assert _last_line(logs).startswith(f"node-dns agent: no permission to patch node '{other}':")
    assert f"the node-dns agent on node {world.node} may not change node {other}" in _last_line(logs)
    assert KEY not in (world.plane.get_node(other)["metadata"].get("annotations") or {})


def test_agent_for_a_missing_node_exits_1_naming_it(world: World) -> None:
    code, logs = run_to_exit(world, world.kubeconfig, "no-such-node")

    assert code == 1
    assert _last_line(logs).startswith("node-dns agent: node 'no-such-node' does not exist")


def test_agent_without_permission_exits_1_with_one_line(world: World) -> None:
    assert world.plane.workdir is not None
    account = f"nobody-{uuid.uuid4().hex[:6]}"
    world.plane.create_service_account(NAMESPACE, account)
    token = world.plane.mint_token(NAMESPACE, account)
    kubeconfig = world.kubeconfig.with_name(f"{account}.yaml")
    kubeconfig.write_text(world.kubeconfig.read_text().replace(_token_of(world.kubeconfig), token))

    code, logs = run_to_exit(world, kubeconfig, world.node)

    assert code == 1
    assert _last_line(logs).startswith(f"node-dns agent: no permission to get node '{world.node}':")
    assert "cannot get resource" in _last_line(logs)


def test_agent_without_a_node_name_exits_2_with_one_line(world: World) -> None:
    code, logs = run_to_exit(world, world.kubeconfig, None)

    assert code == 2
    assert logs.strip() == (
        "node-dns agent: invalid setting --node-name (NODE_DNS_NODE_NAME): is required: no node name "
        "(set NODE_NAME, as the chart does from spec.nodeName)"
    )


def test_agent_stops_cleanly_on_sigterm(world: World) -> None:
    with AgentProcess(world.ns, world.kubeconfig, node=world.node) as agent:
        wait_for(lambda: "publishing" in agent.logs(), timeout=30, what="agent started")

        assert agent.stop() == 0


def _token_of(kubeconfig: Path) -> str:
    match = re.search(r"token: (\S+)", kubeconfig.read_text())
    assert match
    return match.group(1)


def test_nothing_outside_the_namespace_was_addressed(world: World) -> None:
    """The namespace has no route beyond its uplink's /30: nothing the agent reads is reachable."""
    routes = subprocess.run(
        world.ns.command(["ip", "-4", "route", "show", "default"]), capture_output=True, text=True, check=True
    )

    assert routes.stdout.strip() == ""
