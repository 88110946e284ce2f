"""Leader election end to end: three node-dns processes, one Lease, a real apiserver with RBAC.

Each test runs three ``node-dns serve --leader-elect`` processes with short timings (lease 4 s,
renew deadline 3 s, retry 0.5 s) and ServiceAccount tokens whose only rights are the chart's:
get/list/watch nodes (ClusterRole), create + get/update of the one Lease (Role in the test
namespace) and create events (Role in ``default``). A sampler thread reads the Lease every
100 ms for the whole test and checks that the holder only changes after a release or after the
previous holder's lease expired, so two holders never overlap.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from node_dns.leader.decide import parse_micro_time
from tests.harness import ControlPlane, Kube, KubeError, NodeDns
from tests.harness.kube import wait_for
from tests.harness.logs import denials
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION

pytestmark = pytest.mark.controlplane

DURATION, DEADLINE, RETRY = 4.0, 3.0, 0.5
TIMINGS = [
    f"--leader-lease-duration={DURATION:g}",
    f"--leader-renew-deadline={DEADLINE:g}",
    f"--leader-retry-period={RETRY:g}",
]
# The longest a takeover after a crash can take: the lease, plus how late a replica may have
# seen the last renewal (its jittered poll, up to 2.2 x retry), plus process scheduling slack.
CRASH_TAKEOVER_BOUND = DURATION + 2.2 * RETRY + 0.6
RELEASE_TAKEOVER_BOUND = 2.2 * RETRY + 0.6

NODE_READER = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]


def lease_path(namespace: str, name: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"


# --- the Lease sampler ---------------------------------------------------------------------------


@dataclass
class Version:
    """One stored version of the Lease, and when the sampler first saw it (local monotonic)."""

    seen: float
    spec: dict[str, Any]

    @property
    def holder(self) -> str:
        return str(self.spec.get("holderIdentity") or "")

    def time(self, key: str) -> float:
        return parse_micro_time(self.spec.get(key)) or 0.0


@dataclass
class LeaseSampler:
    """Reads the Lease every 100 ms in a thread, and watches it in another.

    The reads show the Lease as a client sees it over time; the watch adds every version the
    reads would miss (a release followed within 100 ms by a takeover). :meth:`violations`
    checks each change of holder over all versions in resourceVersion order.
    """

    kube: Kube
    namespace: str
    name: str
    interval: float = 0.1
    reads: int = 0
    errors: int = 0
    versions: dict[int, Version] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> LeaseSampler:
        for target in (self._poll, self._watch):
            thread = threading.Thread(target=target, name=f"lease-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _record(self, obj: dict[str, Any]) -> None:
        version = int(obj["metadata"]["resourceVersion"])
        with self._lock:
            if version not in self.versions:
                self.versions[version] = Version(time.monotonic(), dict(obj.get("spec") or {}))

    def _poll(self) -> None:
        path = lease_path(self.namespace, self.name)
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                status, body = self.kube.request("GET", path)
                self.reads += 1
                if status == 200:
                    self._record(body)
            except OSError:
                self.errors += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - at)))

    def _watch(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        since: str | None = None
        while not self._stop.is_set():
            params = {"fieldSelector": f"metadata.name={self.name}"}
            if since:
                params["resourceVersion"] = since
            try:
                with self.kube.watch(path, params=params, timeout=2) as stream:
                    for event in stream:
                        if event.get("type") == "ERROR":  # 410 Gone after a restart: start over
                            since = None
                            break
                        self._record(event["object"])
                        since = event["object"]["metadata"]["resourceVersion"]
                        if self._stop.is_set():
                            return
            except (OSError, KubeError, ValueError):
                self._stop.wait(0.1)

    def ordered(self) -> list[Version]:
        with self._lock:
            return [self.versions[v] for v in sorted(self.versions)]

    def holders(self) -> list[str]:
        """The sequence of holders over all versions ("" = released)."""
        seen: list[str] = []
        for version in self.ordered():
            if not seen or seen[-1] != version.holder:
                seen.append(version.holder)
        return seen

    def violations(self) -> list[str]:
        """Holder changes that were neither after a release nor after the old lease expired."""
        problems: list[str] = []
        versions = self.ordered()
        for before, after in itertools.pairwise(versions):
            old, new = before.holder, after.holder
            lease = int(before.spec.get("leaseDurationSeconds") or 0)
            if old and new and old != new:
                # Taken from a live holder: legal only once the old lease had expired, judged
                # by the writers' clocks (one machine here) and by the sampler's own clock.
                gap = after.time("acquireTime") - before.time("renewTime")
                if gap < lease:
                    problems.append(f"{new} acquired {gap:.3f}s after {old}'s last renewal (lease {lease}s)")
                if after.seen - before.seen < lease - 2 * self.interval:
                    problems.append(f"{old} -> {new} seen {after.seen - before.seen:.2f}s after a renewal")
            counted = after.spec.get("leaseTransitions", 0) == before.spec.get("leaseTransitions", 0) + 1
            if new and new != old and not counted:
                problems.append(f"{old or 'nobody'} -> {new} without counting one transition")
            if old and old == new and after.spec.get("acquireTime") != before.spec.get("acquireTime"):
                problems.append(f"{old} changed its acquireTime while renewing")
        return problems


# --- fixtures --------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A namespace and a least-privilege ServiceAccount kubeconfig for node-dns."""

    plane: ControlPlane
    namespace: str
    lease: str
    kubeconfig: str


def least_privilege(plane: ControlPlane, unique_name: Callable[[str], str]) -> Cluster:
    kube = plane.kube
    namespace, sa, lease = unique_name("le"), "node-dns", unique_name("lease")
    kube.create_namespace(namespace)
    kube.create_service_account(namespace, sa)
    reader = unique_name("node-reader")
    kube.create_cluster_role(reader, NODE_READER)
    kube.bind_cluster_role(reader, namespace, sa)
    # The chart's leader election Role: create (no name possible), get/update of the one Lease.
    kube.create_role(
        namespace,
        "leader-election",
        [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [lease],
                "verbs": ["get", "update"],
            },
        ],
    )
    kube.bind_role(namespace, "leader-election", namespace, sa)
    events_role = unique_name("events")
    kube.create_role(
        "default", events_role, [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    )
    kube.bind_role("default", events_role, namespace, sa)
    token = kube.mint_token(namespace, sa)
    as_sa = kube.for_token(token)
    # RBAC is served from an informer cache: wait until every grant is visible.
    wait_for(lambda: as_sa.request("GET", "/api/v1/nodes")[0] == 200, timeout=10, what="nodes grant")
    wait_for(
        lambda: as_sa.request("GET", lease_path(namespace, lease))[0] == 404, timeout=10, what="lease grant"
    )
    return Cluster(plane, namespace, lease, str(kube.kubeconfig_for_token(token)))


@dataclass
class Outages:
    """Wall-clock windows in which the apiserver was down or still starting.

    A restarting apiserver answers 403 until its authorizer has synced the RBAC objects: a
    denial then says nothing about the rights node-dns was given, so those lines are exempt
    from the least-privilege check.
    """

    windows: list[tuple[float, float]] = field(default_factory=list)

    def covers(self, line: str) -> bool:
        match = LOG_TIME.match(line)
        if match is None:
            return False
        stamp = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S")) + int(match[2]) / 1000
        return any(start <= stamp <= end for start, end in self.windows)


LOG_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


@contextlib.contextmanager
def replicas(
    cluster: Cluster, count: int = 3, *, events: bool = True, outages: Outages | None = None
) -> Iterator[dict[str, NodeDns]]:
    """``count`` node-dns processes electing on the cluster's Lease; stopped afterwards."""
    procs = {
        f"replica-{i}": NodeDns(
            cluster.kubeconfig,
            extra_args=[
                "--leader-elect",
                f"--leader-lease-name={cluster.lease}",
                f"--leader-lease-namespace={cluster.namespace}",
                f"--leader-identity=replica-{i}",
                *TIMINGS,
                *([] if events else ["--no-leader-record-events"]),
            ],
        )
        for i in range(count)
    }
    try:
        for proc in procs.values():
            proc.start()
        for proc in procs.values():
            proc.wait_ready(30)
        yield procs
    finally:
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p.stop(5), procs.values()))
        for name, proc in procs.items():
            logs = proc.logs()
            if outages is not None:
                logs = "\n".join(line for line in logs.splitlines() if not outages.covers(line))
            assert not denials(logs), f"{name} was denied something:\n{logs}"
            assert "Traceback" not in logs, f"{name} logged a traceback:\n{logs}"


def readyz(proc: NodeDns) -> dict[str, Any]:
    try:
        _, body = proc.http_get("/readyz", timeout=1.0)
        result: dict[str, Any] = json.loads(body)
        return result
    except (OSError, ValueError):
        return {}


def leaders(procs: dict[str, NodeDns]) -> list[str]:
    return [name for name, proc in procs.items() if proc.running and readyz(proc).get("leader_is_leader")]


def metric(proc: NodeDns, name: str) -> float:
    _, text = proc.http_get("/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def sample(proc: NodeDns, series: str) -> float:
    """One labelled sample, e.g. ``node_dns_leader_events_total{result="created"}`` (0 if absent)."""
    _, text = proc.http_get("/metrics")
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0


def events_metric(proc: NodeDns, result: str) -> float:
    return sample(proc, f'node_dns_leader_events_total{{result="{result}"}}')


def counted_bad_ips(proc: NodeDns) -> float:
    return sample(proc, f'node_dns_invalid_annotation_entries_total{{annotation="{IPS_ANNOTATION}"}}')


def holder(kube: Kube, cluster: Cluster) -> dict[str, Any] | None:
    status, body = kube.request("GET", lease_path(cluster.namespace, cluster.lease))
    return body.get("spec") if status == 200 else None


def wait_new_holder(
    kube: Kube, cluster: Cluster, old: str, timeout: float, polling: threading.Event | None = None
) -> tuple[str, float, bool]:
    """Poll the Lease every 20 ms until a holder other than ``old`` (and not empty) appears.

    Returns the new holder, the seconds waited, and whether a release (empty holder) was seen.
    ``polling`` is set once the first read is done (the caller may act from then on).
    """
    started = time.monotonic()
    released = False
    while time.monotonic() - started < timeout:
        spec = holder(kube, cluster) or {}
        if polling is not None:
            polling.set()
        name = spec.get("holderIdentity") or ""
        if not name and spec:
            released = released or spec.get("leaseDurationSeconds") == 1
        elif name and name != old:
            return name, time.monotonic() - started, released
        time.sleep(0.02)
    raise AssertionError(f"no new holder within {timeout}s (last: {holder(kube, cluster)})")


def node_events(kube: Kube, node: str) -> list[dict[str, Any]]:
    body = kube.call(
        "GET", "/api/v1/namespaces/default/events", params={"fieldSelector": f"involvedObject.name={node}"}
    )
    return [e for e in body.get("items") or [] if e.get("reason") == "InvalidAnnotation"]


def answers(proc: NodeDns, name: str) -> tuple[str, list[str]]:
    query = dns.message.make_query(name, "A")
    response = dns.query.udp(query, proc.address, port=proc.dns_port, timeout=1.0)
    ips = [item.address for rrset in response.answer for item in rrset]
    return dns.rcode.to_text(response.rcode()), ips


@pytest.fixture
def cluster(control_plane: ControlPlane, unique_name: Callable[[str], str]) -> Cluster:
    return least_privilege(control_plane, unique_name)


# --- tests -----------------------------------------------------------------------------------------


def test_one_leader_records_each_bad_annotation_once_and_a_crash_is_taken_over_after_expiry(
    cluster: Cluster, kube: Kube, unique_name: Callable[[str], str]
) -> None:
    bad = unique_name("node-bad")
    kube.create_node(bad, annotations={AREAS_ANNOTATION: "web", IPS_ANNOTATION: "192.0.2.1,not-an-ip"})

    with (
        LeaseSampler(kube.for_token(kube.token), cluster.namespace, cluster.lease) as sampler,
        replicas(cluster) as procs,
    ):
        first = wait_for(lambda: leaders(procs), timeout=10, what="a leader")[0]
        # Exactly one leader, for a while, by every replica's own account and by the Lease.
        for _ in range(10):
            assert leaders(procs) == [first]
            time.sleep(0.1)
        assert (holder(kube, cluster) or {}).get("holderIdentity") == first
        assert [metric(p, "node_dns_leader_is_leader") for p in procs.values()].count(1.0) == 1
        assert metric(procs[first], "node_dns_leader_transitions_total") == 1.0
        for proc in procs.values():
            assert readyz(proc)["leader_holder"] == first

        # One Event for the bad entry, posted by the leader, not one per replica: every replica has
        # seen the bad entry and the leader has recorded it before the Events are counted.
        wait_for(lambda: node_events(kube, bad), timeout=10, what="an InvalidAnnotation event")
        wait_for(
            lambda: all(counted_bad_ips(p) >= 1 for p in procs.values()),
            timeout=10,
            what="every replica to have seen the bad entry",
        )
        # (>= 1: nodes with bad entries that other tests left in the shared cluster count too;
        # this node's Events are counted exactly below.)
        wait_for(lambda: events_metric(procs[first], "created") >= 1, timeout=10, what="the leader's record")
        (event,) = node_events(kube, bad)
        assert event["type"] == "Warning"
        assert event["involvedObject"]["kind"] == "Node"
        assert event["involvedObject"]["uid"] == kube.get_node(bad)["metadata"]["uid"]
        assert "not-an-ip" in event["message"]
        assert event["reportingInstance"] == first

        # kill -9: nothing released; another replica leads once the lease has expired.
        procs[first].kill()
        second, took, released = wait_new_holder(kube, cluster, first, CRASH_TAKEOVER_BOUND + 2)
        print(f"\ntakeover after kill -9 of the leader: {took:.2f}s (lease {DURATION:g}s, retry {RETRY:g}s)")
        assert not released
        assert DURATION - RETRY <= took <= CRASH_TAKEOVER_BOUND
        wait_for(lambda: leaders(procs) == [second], timeout=3, what="the new leader to report itself")

        # The new leader does not post the same state again (its create finds the Event: 409);
        # a change is posted once.
        wait_for(lambda: events_metric(procs[second], "exists") >= 1, timeout=10, what="the known event")
        assert len(node_events(kube, bad)) == 1
        kube.annotate(bad, {IPS_ANNOTATION: "192.0.2.1,still-not-an-ip"})
        wait_for(lambda: len(node_events(kube, bad)) == 2, timeout=10, what="a second event")
        wait_for(lambda: events_metric(procs[second], "created") >= 1, timeout=10, what="the new record")
        assert len(node_events(kube, bad)) == 2
        assert {e["reportingInstance"] for e in node_events(kube, bad)} == {first, second}

    print(f"lease holders seen: {sampler.holders()}; {sampler.reads} reads, {len(sampler.versions)} versions")
    assert sampler.violations() == []
    assert sampler.reads > 50


def test_graceful_stop_releases_the_lease_for_a_takeover_within_a_retry_period(
    cluster: Cluster, kube: Kube
) -> None:
    with (
        LeaseSampler(kube.for_token(kube.token), cluster.namespace, cluster.lease) as sampler,
        replicas(cluster, events=False) as procs,
    ):
        first = wait_for(lambda: leaders(procs), timeout=10, what="a leader")[0]
        before = holder(kube, cluster) or {}
        # The leader is in its steady state: it has renewed the Lease at least once.
        wait_for(
            lambda: (holder(kube, cluster) or {}).get("renewTime") != before.get("renewTime"),
            timeout=10,
            what="a renewal",
        )

        with ThreadPoolExecutor(1) as pool:
            polling = threading.Event()
            watch = pool.submit(wait_new_holder, kube, cluster, first, RELEASE_TAKEOVER_BOUND + 3, polling)
            assert polling.wait(10)
            signalled = time.monotonic()
            assert procs[first].stop(10) == 0
            second, _, released = watch.result()
        took = time.monotonic() - signalled
        print(f"\ntakeover after SIGTERM of the leader: <= {took:.2f}s (retry {RETRY:g}s)")

        assert released, "the stopping leader did not write an empty holder with a 1 s lease"
        assert took <= RELEASE_TAKEOVER_BOUND
        after = holder(kube, cluster) or {}
        assert after["holderIdentity"] == second
        assert after["leaseTransitions"] == before.get("leaseTransitions", 0) + 1
        assert "released the lease" in procs[first].logs()

    assert sampler.violations() == []
    assert "" in sampler.holders()


def test_leader_steps_down_when_the_apiserver_is_gone_and_every_replica_keeps_answering(
    unique_name: Callable[[str], str],
) -> None:
    with ControlPlane() as plane:
        cluster = least_privilege(plane, unique_name)
        kube = plane.kube
        node = unique_name("node")
        kube.create_node(node, annotations={AREAS_ANNOTATION: "web", IPS_ANNOTATION: "192.0.2.7"})
        sampler = LeaseSampler(kube.for_token(kube.token), cluster.namespace, cluster.lease)
        outages = Outages()
        with sampler, replicas(cluster, events=False, outages=outages) as procs:
            first = wait_for(lambda: leaders(procs), timeout=10, what="a leader")[0]
            name = f"web.{procs[first].zone}"
            for proc in procs.values():
                assert answers(proc, name) == ("NOERROR", ["192.0.2.7"])

            down_since = time.time()
            plane.stop_apiserver()
            stopped = time.monotonic()
            wait_for(lambda: not leaders(procs), timeout=DEADLINE + 2, what="the leader to step down")
            stepped_down = time.monotonic() - stopped
            print(f"\nleader stepped down {stepped_down:.2f}s after the apiserver stopped")
            assert stepped_down <= DEADLINE + 0.6
            assert "not renewed within the renew deadline" in procs[first].logs()

            # Blind (every replica has noticed): every replica still answers from its zone.
            wait_for(
                lambda: all(metric(p, "node_dns_apiserver_reachable") == 0.0 for p in procs.values()),
                timeout=10,
                what="every replica to notice the apiserver is gone",
            )
            assert leaders(procs) == []
            for proc in procs.values():
                assert proc.running
                assert answers(proc, name) == ("NOERROR", ["192.0.2.7"])

            plane.start_apiserver()
            back = time.monotonic()
            wait_for(lambda: len(leaders(procs)) == 1, timeout=DURATION + 10, what="a leader again")
            outages.windows.append((down_since - 1.0, time.time() + 1.0))
            print(f"a leader again {time.monotonic() - back:.2f}s after the apiserver came back")
            for proc in procs.values():
                assert answers(proc, name) == ("NOERROR", ["192.0.2.7"])

        assert sampler.violations() == []
