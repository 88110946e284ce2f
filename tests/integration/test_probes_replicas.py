"""Replicas agree on probe verdicts: the leader probes and publishes, every replica answers from
the published table, with exactly the RBAC the chart renders for probes with leader election.

Two node-dns processes elect a leader on the chart's Lease and read the chart's verdicts
ConfigMap, with a ServiceAccount holding only the chart's ClusterRole and Roles. A third
replica whose identity lacks the verdicts Role cannot read them: it falls back to Ready-only and
says so (log, /readyz, metric).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import probe_targets as targets
from tests.harness.controlplane import ControlPlane
from tests.harness.helm import Helm
from tests.harness.kube import write_kubeconfig
from tests.harness.netns import TcpRelay
from tests.harness.nodedns import NodeDns
from tests.harness.ports import free_port
from tests.integration.livedns import AREAS_ANNOTATION, IPS_ANNOTATION, answers, serial, unique, wait_for

pytestmark = pytest.mark.controlplane

HOSTS = [f"127.0.0.{71 + n}" for n in range(4)]
INTERVAL = 0.5
TIMINGS = ["--leader-lease-duration=4", "--leader-renew-deadline=3", "--leader-retry-period=0.5"]
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
CONVERGE = 20.0


@dataclass
class Release:
    plane: ControlPlane
    token: str
    namespace: str
    area: str
    port: int
    env: dict[str, str]
    probe_file: Path
    kubeconfig: str
    reader_only_kubeconfig: str


def without_verdicts_kubeconfig(plane: ControlPlane, namespace: str, lease_role: str) -> str:
    """An identity with the chart's node rights and its leader election Role, but not the
    verdicts Role."""
    kube = plane.kube
    account = unique("noverdicts")
    kube.create_service_account(namespace, account)
    role = unique("nodes")
    kube.create_cluster_role(
        role, [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
    )
    kube.bind_cluster_role(role, namespace, account)
    kube.bind_role(namespace, lease_role, namespace, account, name=unique("lease"))
    return str(kube.kubeconfig_for_token(kube.mint_token(namespace, account)))


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Release:
    namespace, name, area = unique("probes"), unique("pr"), unique("agree")
    port = free_port(HOSTS[0])
    values = {
        "zone": "lb.example.net",
        "nameservers": [{"name": "ns1.lb.example.net", "ips": ["127.0.0.1"]}],
        "soa": {"email": "hostmaster@example.net"},
        "leaderElection": {"enabled": True},
        "probes": {"areas": {area: f"tcp:{port}"}},
        "config": {"probeInterval": INTERVAL, "probeTimeout": 0.4},
    }
    with Helm() as helm:
        rendered = helm.template(values, release=name, namespace=namespace)
    kube = control_plane.kube
    kube.create_namespace(namespace)
    control_plane.apply_manifests([o for o in rendered if o["kind"] in RBAC_KINDS], namespace=namespace)
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    token = kube.mint_token(namespace, account)
    env = rendered.env()
    probe_file = tmp_path_factory.mktemp("probes") / "probes.yaml"
    probe_file.write_text(
        next(cm for cm in rendered.all("ConfigMap") if cm["metadata"]["name"].endswith("-probes"))["data"][
            "probes.yaml"
        ]
    )
    as_sa = kube.for_token(token)
    try:  # RBAC is served from an informer cache: wait until the grants are visible
        cm = f"/api/v1/namespaces/{namespace}/configmaps/{env['NODE_DNS_PROBE_VERDICTS_NAME']}"
        wait_for(lambda: as_sa.request("GET", cm)[0] == 404, timeout=10, what="verdicts grant")
    finally:
        as_sa.close()
    return Release(
        control_plane,
        token,
        namespace,
        area,
        port,
        env,
        probe_file,
        str(kube.kubeconfig_for_token(token)),
        without_verdicts_kubeconfig(
            control_plane,
            namespace,
            next(
                r["metadata"]["name"]
                for r in rendered.all("Role")
                if r["metadata"]["name"].endswith("-leader-election")
            ),
        ),
    )


def replica(release: Release, identity: str, kubeconfig: str | None = None, **env_overrides: str) -> NodeDns:
    """A node-dns process configured as the chart configures a pod (its env), on loopback ports."""
    env = release.env
    keep = {
        k: v
        for k, v in env.items()
        if k.startswith(("NODE_DNS_PROBE", "NODE_DNS_LEADER_LEASE_NAME", "NODE_DNS_LEADER_ELECT"))
    }
    keep["NODE_DNS_PROBE_FILE"] = str(release.probe_file)
    keep["NODE_DNS_LEADER_LEASE_NAMESPACE"] = release.namespace
    keep["NODE_DNS_LEADER_IDENTITY"] = identity
    keep.update(env_overrides)
    return NodeDns(kubeconfig or release.kubeconfig, env=keep, extra_args=[*TIMINGS, "--no-fail-open"])


def readyz(proc: NodeDns) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        _, body = proc.http_get("/readyz", timeout=1.0)
        result: dict[str, Any] = json.loads(body)
        return result
    return {}


def sample(proc: NodeDns, series: str) -> float | None:
    with contextlib.suppress(OSError):
        _, text = proc.http_get("/metrics")
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[1])
    return None


@pytest.fixture(scope="module")
def listeners(release: Release) -> Iterator[list[targets.ThreadedTarget]]:
    running = [targets.ThreadedTarget(host, release.port).start() for host in HOSTS]
    yield running
    for target in running:
        target.stop()


def agree(procs: list[NodeDns], area: str, expected: set[str], *, same_serial: bool = True) -> None:
    """Every replica answers ``expected`` (with the same SOA serial, unless told otherwise).

    Replicas started at different times may hold different serials for the same first content
    (each took its first list at a different resourceVersion); a verdict change applied from the
    same ConfigMap version brings them to the same serial.
    """

    def same() -> bool:
        seen = [answers(p, area) for p in procs]
        return all(s == expected for s in seen) and (not same_serial or len({serial(p) for p in procs}) == 1)

    try:
        wait_for(same, timeout=CONVERGE, interval=0.05, what=f"replicas agree on {expected}")
    except TimeoutError as error:
        seen = [(answers(p, area), serial(p), readyz(p)) for p in procs]
        logs = "\n".join(line for p in procs for line in p.logs().splitlines()[-20:])
        raise AssertionError(f"{error}: {seen}\n{logs}") from None


def test_replicas_answer_the_same_set_and_a_new_leader_continues_probing(
    release: Release, listeners: list[targets.ThreadedTarget]
) -> None:
    area = release.area
    plane = release.plane
    nodes = {host: unique("rnode") for host in HOSTS}
    for host, node in nodes.items():
        plane.create_node(node, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: host})
    a, b = replica(release, "replica-a"), replica(release, "replica-b")
    with a, b:
        procs = [a, b]
        agree(procs, area, set(HOSTS), same_serial=False)
        wait_for(
            lambda: sum(bool(readyz(p).get("leader_is_leader")) for p in procs) == 1,
            timeout=CONVERGE,
            what="one leader",
        )
        leader = next(p for p in procs if readyz(p).get("leader_is_leader"))
        follower = next(p for p in procs if p is not leader)
        assert sample(leader, "node_dns_probe_active") == 1
        assert sample(follower, "node_dns_probe_active") == 0
        assert readyz(follower)["probe_verdicts"] == "available"

        listeners[0].stop()
        agree(procs, area, set(HOSTS) - {HOSTS[0]})
        # The leader recorded the flip as an Event on the node.
        wait_for(
            lambda: [
                e
                for e in plane.kube.call("GET", "/api/v1/namespaces/default/events")["items"]
                if e["involvedObject"]["name"] == nodes[HOSTS[0]] and e["reason"] == "ProbeUnreachable"
            ],
            timeout=CONVERGE,
            what="ProbeUnreachable event",
        )
        assert (sample(leader, 'node_dns_probe_events_total{result="created"}') or 0) >= 1

        leader.kill()
        wait_for(lambda: readyz(follower).get("leader_is_leader"), timeout=CONVERGE, what="takeover")
        assert answers(follower, area) == set(HOSTS) - {HOSTS[0]}  # the published verdicts stay
        listeners[1].stop()
        wait_for(
            lambda: answers(follower, area) == set(HOSTS) - {HOSTS[0], HOSTS[1]},
            timeout=CONVERGE,
            what="the new leader probes",
        )
        assert sample(follower, "node_dns_probe_active") == 1
        listeners[0].start()
        listeners[1].start()
        wait_for(lambda: answers(follower, area) == set(HOSTS), timeout=CONVERGE, what="both back")
        logs = follower.logs()
    assert "Traceback" not in logs
    for node in nodes.values():
        plane.kube.call("DELETE", f"/api/v1/nodes/{node}")


def test_a_replica_that_cannot_read_the_verdicts_falls_back_to_ready_only_and_says_so(
    release: Release, listeners: list[targets.ThreadedTarget]
) -> None:
    area = release.area
    plane = release.plane
    nodes = [unique("fnode") for _ in HOSTS]
    for host, node in zip(HOSTS, nodes, strict=True):
        plane.create_node(node, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: host})
    listeners[2].stop()
    try:
        with (
            replica(release, "replica-c") as leader,
            replica(release, "blind", release.reader_only_kubeconfig) as blind,
        ):
            wait_for(
                lambda: answers(leader, area) == set(HOSTS) - {HOSTS[2]},
                timeout=CONVERGE,
                what="leader excludes",
            )
            wait_for(
                lambda: str(readyz(blind).get("probe_verdicts", "")).startswith("unavailable: not allowed"),
                timeout=CONVERGE,
                what="fallback reported",
            )
            assert answers(blind, area) == set(HOSTS)  # Ready-only: probes remove nothing here
            assert sample(blind, "node_dns_probe_verdicts_available") == 0
            assert sample(leader, "node_dns_probe_verdicts_available") == 1
            assert "probe verdicts unavailable, serving Ready-only" in blind.logs()
    finally:
        listeners[2].start()
        for node in nodes:
            plane.kube.call("DELETE", f"/api/v1/nodes/{node}")


def test_a_replica_cut_off_from_the_apiserver_falls_back_after_max_age(
    release: Release, listeners: list[targets.ThreadedTarget], tmp_path: Path
) -> None:
    """Its verdicts stay while they are young; after --probe-verdicts-max-age without contact it
    serves Ready-only and says why."""
    area = release.area
    plane = release.plane
    nodes = [unique("cnode") for _ in HOSTS]
    for host, node in zip(HOSTS, nodes, strict=True):
        plane.create_node(node, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: host})
    port = int(plane.kube.server.rsplit(":", 1)[1])
    listeners[3].stop()
    try:
        with TcpRelay("127.0.0.1", ("127.0.0.1", port)) as relay:
            via_relay = write_kubeconfig(
                tmp_path / "relay.yaml",
                f"https://127.0.0.1:{relay.port}",
                release.token,
                ca_data=plane.kube.ca_data,
            )
            with (
                replica(release, "replica-d") as leader,
                replica(release, "cut", str(via_relay), NODE_DNS_PROBE_VERDICTS_MAX_AGE="3") as cut,
            ):
                expected = set(HOSTS) - {HOSTS[3]}
                for proc in (leader, cut):
                    wait_for(lambda p=proc: answers(p, area) == expected, timeout=CONVERGE, what="excluded")
                relay.block()
                wait_for(
                    lambda: str(readyz(cut).get("probe_verdicts", "")).startswith(
                        "unavailable: could not read the verdicts for 3s"
                    ),
                    timeout=CONVERGE,
                    what="fallback after max age",
                )
                assert answers(cut, area) == set(HOSTS)  # Ready-only
                assert answers(leader, area) == expected
                relay.unblock()
                wait_for(lambda: answers(cut, area) == expected, timeout=CONVERGE, what="verdicts again")
                assert readyz(cut).get("probe_verdicts") == "available"
    finally:
        listeners[3].start()
        for node in nodes:
            plane.kube.call("DELETE", f"/api/v1/nodes/{node}")
