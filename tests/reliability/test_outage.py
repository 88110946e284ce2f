"""API server outages: DNS keeps answering from the last known zone, and catches up on return.

While node-dns' apiserver is down (SIGKILL), changes are written through a second apiserver
on another port against the same etcd — as in an HA control plane where one apiserver dies —
so they really happen "while it was down". When the first apiserver comes back, node-dns must
serve them within 5 s, deletions included; after a gap with etcd compaction the watch gets
410 Gone and kopf reports no deletion at all, so only node-dns' own re-list can remove them.

These tests are long (a 120 s outage) and marked ``slow``; ``make test`` runs them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.harness import ControlPlane, Kube, NodeDns
from tests.harness.controlplane import _Process
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION
from tests.harness.ports import free_port
from tests.reliability.common import addresses, ask, metric, wait_until

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

OUTAGE = 120.0
QPS = 20
CONVERGE = 5.0


@contextlib.contextmanager
def second_apiserver(plane: ControlPlane) -> Iterator[Kube]:
    """Another kube-apiserver on its own port, same etcd, certificates and tokens as ``plane``'s."""
    assert plane.workdir is not None and plane._apiserver is not None
    port = free_port()
    argv = [
        f"--secure-port={port}" if arg.startswith("--secure-port=") else arg for arg in plane._apiserver.argv
    ]
    process = _Process("kube-apiserver-2", argv, plane.workdir / "apiserver-2.log")
    process.start()
    kube = Kube(f"https://127.0.0.1:{port}", plane.token, ca_data=plane.ca_data)
    try:

        def ready() -> bool:
            if not process.running():
                raise RuntimeError(f"second apiserver exited:\n{process.log_tail()}")
            return kube.request("GET", "/readyz")[0] == 200

        wait_until(ready, timeout=60, interval=0.1, what="second apiserver /readyz")
        yield kube
    finally:
        kube.close()
        process.kill()


@dataclass
class Querier:
    """Asks one name over UDP at a steady rate from a thread; records every outcome."""

    address: tuple[str, int]
    name: str
    qps: float = QPS
    results: list[tuple[float, str, frozenset[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="querier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        interval = 1.0 / self.qps
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                reply = ask(self.address, self.name, timeout=1.0)
                outcome = dns.rcode.to_text(reply.rcode())
                ips = frozenset(addresses(reply))
            except Exception as error:  # every outcome is recorded: the thread must never die
                outcome, ips = f"error: {type(error).__name__}", frozenset()
            self.results.append((now, outcome, ips))
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def between(self, start: float, end: float) -> list[tuple[float, str, frozenset[str]]]:
        return [r for r in self.results if start <= r[0] < end]


def _metrics(server: NodeDns) -> str:
    return server.http_get("/metrics")[1]


def kopf_events(text: str) -> dict[str, float]:
    """Node events kopf delivered, by type: a change after recovery arrives through kopf's watch
    loop either as MODIFIED or, when kopf has just restarted its watch, in its re-list (LISTED);
    node-dns' own lister counts neither."""
    types = ("LISTED", "MODIFIED")
    return {t: metric(text, "node_dns_watch_events_total", f'type="{t}"') or 0 for t in types}


def node_watches(plane: ControlPlane) -> float:
    """Open WATCH requests on nodes, by the apiserver's own count (node-dns' kopf is the watcher)."""
    status, text = plane.kube.request("GET", "/metrics")
    if status != 200:
        return 0.0
    series = 'apiserver_longrunning_requests{component="apiserver",group="",resource="nodes"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in str(text).splitlines()
        if line.startswith(series) and 'verb="WATCH"' in line
    )


def gone_from(kube: Kube, version: str) -> bool:
    """Whether a watch from ``version`` is refused with 410 (etcd compacted past it)."""
    with kube.watch("/api/v1/nodes", params={"resourceVersion": version}, timeout=5) as watch:
        first = next(iter(watch))
    return first["type"] == "ERROR" and first["object"]["code"] == 410


def _node(plane: ControlPlane | Kube, name: str, area: str, ip: str) -> None:
    plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ip})


def test_apiserver_down_120s_dns_keeps_answering_and_catches_up_on_return() -> None:
    with ControlPlane() as plane:
        area = "outage"
        name = f"{area}.{DEFAULT_ZONE}"
        _node(plane, "keep", area, "192.0.2.1")
        _node(plane, "gone", area, "192.0.2.2")
        _node(plane, "sick", area, "192.0.2.3")
        before = frozenset({"192.0.2.1", "192.0.2.2", "192.0.2.3"})
        after = frozenset({"192.0.2.1", "192.0.2.4"})
        with NodeDns(plane.kubeconfig) as server:
            wait_until(lambda: addresses(ask(server.dns_address, name)) == before, timeout=10)
            querier = Querier(server.dns_address, name)
            querier.start()
            try:
                # a baseline of answers before the outage
                wait_until(lambda: len(querier.results) >= 2 * QPS, timeout=30, what="baseline queries")
                log_lines_before = len(server.logs().splitlines())
                plane.stop_apiserver()
                down_at = time.monotonic()
                health: list[tuple[int, int]] = []
                staleness: list[tuple[float, float]] = []
                reachable: list[float | None] = []
                changed_at: float | None = None
                while time.monotonic() - down_at < OUTAGE:
                    health.append((server.http_get("/readyz")[0], server.http_get("/healthz")[0]))
                    text = _metrics(server)
                    stale = metric(text, "node_dns_zone_staleness_seconds")
                    assert stale is not None
                    staleness.append((time.monotonic() - down_at, stale))
                    reachable.append(metric(text, "node_dns_apiserver_reachable"))
                    if changed_at is None and time.monotonic() - down_at > OUTAGE - 25:
                        # the changes, through another apiserver, while node-dns' one is down
                        with second_apiserver(plane) as other:
                            other.delete_node("gone")
                            other.set_ready("sick", False)
                            _node(other, "new", area, "192.0.2.4")
                        changed_at = time.monotonic()
                    time.sleep(2)  # the sampling period of health and metrics during the outage
                assert changed_at is not None
                # still the old zone: node-dns cannot have seen the changes
                assert addresses(ask(server.dns_address, name)) == before
                restart_at = time.monotonic()
                plane.start_apiserver()  # returns once its /readyz is 200
                back_at = time.monotonic()
                wait_until(
                    lambda: addresses(ask(server.dns_address, name)) == after,
                    timeout=30,
                    interval=0.05,
                    what="changes made during the outage",
                )
                wait_until(
                    lambda: metric(_metrics(server), "node_dns_apiserver_reachable") == 1.0, timeout=10
                )
                fresh = metric(_metrics(server), "node_dns_zone_staleness_seconds")

                # the watch is alive, not just the lister: with a 300 s resync, a change after the
                # recovery re-list can only arrive through the watch (open again, says the apiserver)
                wait_until(lambda: node_watches(plane) >= 1, timeout=30, what="kopf's watch reconnected")
                events_before = kopf_events(_metrics(server))
                plane.set_ready("keep", False)
                flipped = time.monotonic()
                wait_until(
                    lambda: addresses(ask(server.dns_address, name)) == {"192.0.2.4"},
                    timeout=10,
                    what="watch",
                )
                watch_latency = time.monotonic() - flipped
                events_after = kopf_events(_metrics(server))
            finally:
                querier.stop()
            assert server.running
            log_lines_outage = len(server.logs().splitlines()) - log_lines_before

        # down: from the kill until the apiserver process is started again
        during = querier.between(down_at, restart_at)
        failed = [r for r in during if r[1] != "NOERROR" or r[2] != before]
        # coming back: the old answer until the new one, never an error, never back again
        after_return = querier.between(restart_at, flipped)
        failed_after = [r for r in after_return if r[1] != "NOERROR" or r[2] not in (before, after)]
        first_new = next((r[0] for r in after_return if r[2] == after), None)
        assert first_new is not None, (len(after_return), after_return[-5:], querier.results[-5:])
        flapped = [r for r in after_return if r[0] > first_new and r[2] != after]
        convergence = first_new - back_at  # negative: served before the apiserver even said ready
        print(
            f"\noutage {back_at - down_at:.0f}s: {len(during)} queries at {QPS} qps, {len(failed)} failed; "
            f"/readyz,/healthz {sorted(set(health))}; staleness {staleness[0][1]:.0f}s -> "
            f"{staleness[-1][1]:.0f}s, {fresh:.1f}s after return; apiserver restart took "
            f"{back_at - restart_at:.1f}s to /readyz, changes served {first_new - restart_at:.2f}s after its "
            f"restart ({convergence:+.2f}s from /readyz); a later change via the watch in "
            f"{watch_latency:.2f}s; "
            f"{log_lines_outage} log lines during the outage"
        )
        assert len(during) >= QPS * OUTAGE * 0.9
        assert failed == [], failed[:5]
        assert failed_after == [], failed_after[:5]
        assert flapped == [], flapped[:5]
        assert set(health) == {(200, 200)}
        assert staleness[-1][1] >= OUTAGE - 10
        assert staleness[-1][1] > staleness[0][1] + OUTAGE - 20
        assert set(reachable[3:]) == {0.0}
        assert fresh is not None and fresh < 5
        assert convergence <= CONVERGE
        assert watch_latency <= 3
        assert sum(events_after.values()) > sum(events_before.values()), (events_before, events_after)
        assert log_lines_outage < 100, "the outage flooded the log"


def test_410_gone_after_compaction_deleted_node_disappears() -> None:
    """A gap long enough for etcd compaction: kopf's watch resumes into 410 and re-lists."""
    args = ["--etcd-compaction-interval=5s", "--watch-cache=false"]
    with ControlPlane(apiserver_args=args) as plane:
        area = "gap"
        name = f"{area}.{DEFAULT_ZONE}"
        _node(plane, "stays", area, "192.0.2.11")
        _node(plane, "goes", area, "192.0.2.12")
        with NodeDns(plane.kubeconfig) as server:
            wait_until(
                lambda: addresses(ask(server.dns_address, name)) == {"192.0.2.11", "192.0.2.12"}, timeout=10
            )
            seen_version = plane.get_node("goes")["metadata"]["resourceVersion"]
            plane.stop_apiserver()
            with second_apiserver(plane) as other:
                other.delete_node("goes")
                for index in range(20):  # move etcd's revision well past what node-dns saw
                    other.annotate("stays", {"example.net/churn": str(index)})
                # the proof of the 410: a watch from the last version node-dns saw is refused once
                # compaction (every 5 s) has passed it
                wait_until(lambda: gone_from(other, seen_version), timeout=60, interval=1.0, what="410")
            assert addresses(ask(server.dns_address, name)) == {"192.0.2.11", "192.0.2.12"}
            restart_at = time.monotonic()
            plane.start_apiserver()
            back_at = time.monotonic()
            wait_until(
                lambda: addresses(ask(server.dns_address, name)) == {"192.0.2.11"},
                timeout=30,
                what="deleted node gone",
            )
            gone_after = time.monotonic() - back_at
            since_restart = time.monotonic() - restart_at
            reply = ask(server.dns_address, name)
            assert reply.rcode() == dns.rcode.NOERROR
            # and the watch works after its 410: a new node shows up without waiting for a resync
            wait_until(lambda: node_watches(plane) >= 1, timeout=30, what="kopf's watch reconnected")
            _node(plane, "later", area, "192.0.2.13")
            added = time.monotonic()
            wait_until(
                lambda: addresses(ask(server.dns_address, name)) == {"192.0.2.11", "192.0.2.13"},
                timeout=10,
                what="node added after the 410",
            )
            added_after = time.monotonic() - added
            assert server.running
    print(
        f"\n410 gap: deleted node gone {since_restart:.2f}s after the apiserver was restarted "
        f"({gone_after:.2f}s after its /readyz); "
        f"a node added afterwards served in {added_after:.2f}s"
    )
    assert gone_after <= CONVERGE
    assert added_after <= 3
