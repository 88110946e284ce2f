"""The node agent: an address change on an interface -> the node's annotation -> the DNS answer.

In a network namespace standing for a node (tests/harness/agentworld.py), the bench adds and
removes a global IPv4 address on an interface, alternately, with ``ip address``. The clock
starts when ``ip`` returns (the kernel has the change) and stops (a) when the apiserver's watch
of the Node delivers the new annotation, and (b) when node-dns (``--ip-sources
annotation,discovered``) answers the area with the address present or gone. The agent runs
inside the namespace (on asyncio's own loop), node-dns on CPU 0, the
bench's loops on CPU 1. Then the agent's RSS, and its CPU over an idle stretch (no changes); then
the RSS of a second agent that also serves /healthz, /readyz and /metrics.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import threading
import time

import psutil

from bench import common
from bench.report import Table, verdict
from tests.harness.agent import AgentProcess
from tests.harness.agentworld import AgentWorld, agent_world
from tests.harness.controlplane import ControlPlane
from tests.harness.kube import wait_for
from tests.harness.nodedns import AREAS_ANNOTATION

KEY = "node-dns/discovered-ips"
AREA = "edge"
TARGET_ANNOTATION_P99_S = 1.0
TARGET_ANSWER_P99_S = 1.1
TARGET_RSS_MB = 40.0
GIVE_UP = 10.0
BASE = "11.0.0.10"
MOVING = "11.0.0.20"
HTTP_PORT = 9481


class AnnotationClock:
    """A watch on the Node in a thread: each new value of the annotation, and when it arrived."""

    def __init__(self, plane: ControlPlane, node: str) -> None:
        self.plane, self.node = plane, node
        self.times: list[float] = []
        self.values: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="annotation-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        params = {"fieldSelector": f"metadata.name={self.node}"}
        while not self._stop.is_set():
            try:
                with self.plane.kube.watch("/api/v1/nodes", params=params, timeout=5) as events:
                    for event in events:
                        value = (event["object"]["metadata"].get("annotations") or {}).get(KEY, "")
                        with self._lock:
                            if not self.values or self.values[-1] != value:
                                self.times.append(time.perf_counter())
                                self.values.append(value)
            except (TimeoutError, OSError):
                continue

    def first(self, after: float, wanted: str, timeout: float = GIVE_UP) -> float | None:
        """When ``wanted`` first arrived after ``after`` (waiting up to ``timeout``)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                start = bisect.bisect_left(self.times, after)
                for moment, value in zip(self.times[start:], self.values[start:], strict=True):
                    if value == wanted:
                        return moment
            time.sleep(0.005)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run(opts: common.Options) -> list[Table]:
    """Own control plane: the agent's world needs an apiserver certificate naming the uplink."""
    changes = 30 if opts.quick else 200
    idle = 20.0 if opts.quick else 60.0
    with agent_world({AREAS_ANNOTATION: AREA}, label="bench") as world:
        world.ns.add_link("eth0")
        world.ns.add_address("eth0", f"{BASE}/24")
        with (
            AgentProcess(world.ns, world.kubeconfig, node=world.node) as agent,
            common.node_dns(world.plane, "--ip-sources=annotation,discovered") as dns,
        ):
            wait_for(
                lambda: (
                    (world.plane.get_node(world.node)["metadata"].get("annotations") or {}).get(KEY) == BASE
                ),
                timeout=60,
                what="first annotation",
            )
            port = dns.dns_port
            question = common.query_bytes(f"{AREA}.{common.ZONE}", common.TYPE_A, edns=1232)
            common.wait_answering(port, question)
            to_annotation, to_answer, missed = _changes(world, port, question, changes)
            rss = common.rss_mb(agent.pid)
            before = common.cpu_seconds(agent.pid)
            time.sleep(idle)
            idle_cpu = common.cpu_seconds(agent.pid) - before
            rss_after_idle = common.rss_mb(agent.pid)
            process = psutil.Process(agent.pid)
            full = process.memory_full_info()
            own = (full.uss / 2**20, full.pss / 2**20)
            threads = process.num_threads()
        rss_http = _rss_with_http(world)
    return [
        _table(
            to_annotation,
            to_answer,
            missed,
            changes,
            rss,
            rss_after_idle,
            idle_cpu,
            idle,
            own,
            threads,
            rss_http,
        )
    ]


def _rss_with_http(world: AgentWorld) -> float:
    """RSS of an agent that also serves /healthz, /readyz and /metrics, after a few scrapes."""
    args = [f"--agent-http-port={HTTP_PORT}"]
    with AgentProcess(world.ns, world.kubeconfig, node=world.node, extra_args=args) as agent:
        wait_for(lambda: _answers(agent, "/readyz"), timeout=60, what="agent ready over HTTP")
        for _ in range(3):
            agent.get(HTTP_PORT, "/metrics")
        return common.rss_mb(agent.pid)


def _answers(agent: AgentProcess, path: str) -> bool:
    try:
        return '"ok": true' in agent.get(HTTP_PORT, path)
    except RuntimeError:
        return False


def _changes(
    world: AgentWorld, port: int, question: bytes, changes: int
) -> tuple[list[float], list[float], int]:
    clock = AnnotationClock(world.plane, world.node)
    prober = common.Prober(port, timeout=0.5)
    moving = ipaddress.IPv4Address(MOVING).packed
    rng = random.Random(16)
    to_annotation: list[float] = []
    to_answer: list[float] = []
    missed = 0
    try:
        with common.on_cpu(common.CLIENT_CPU):
            for number in range(changes):
                present = number % 2 == 0
                if present:
                    world.ns.add_address("eth0", f"{MOVING}/24")
                else:
                    world.ns.delete_address("eth0", f"{MOVING}/24")
                applied = time.perf_counter()
                while True:
                    reply = prober.ask(question)
                    now = time.perf_counter()
                    if reply is not None and (moving in common.answer_rdata(reply, common.TYPE_A)) == present:
                        break
                    if now - applied > GIVE_UP:
                        missed += 1
                        break
                to_answer.append(now - applied)
                wanted = f"{BASE},{MOVING}" if present else BASE
                seen = clock.first(applied, wanted)
                if seen is None:
                    missed += 1
                else:
                    to_annotation.append(seen - applied)
                time.sleep(rng.uniform(0.05, 0.15))
    finally:
        prober.close()
        clock.close()
    return to_annotation, to_answer, missed


def _table(
    to_annotation: list[float],
    to_answer: list[float],
    missed: int,
    changes: int,
    rss: float,
    rss_after_idle: float,
    idle_cpu: float,
    idle: float,
    own: tuple[float, float],
    threads: int,
    rss_http: float,
) -> Table:
    def row(label: str, values: list[float]) -> list[object]:
        ms = [v * 1000 for v in values]
        return [label] + [f"{common.percentile(ms, p):.1f}" for p in (50, 95, 99)] + [f"{max(ms):.1f}"]

    p99_note = common.percentile(to_annotation, 99)
    p99_answer = common.percentile(to_answer, 99)
    cpu_per_minute = idle_cpu * 60.0 / idle
    table = Table(
        f"Node agent: address change -> annotation -> DNS answer ({changes} changes), ms",
        ["clock stops at", "p50", "p95", "p99", "max"],
        [row("annotation seen by a watch", to_annotation), row("DNS answer shows it", to_answer)],
        notes=[
            f"annotation target p99 <= {TARGET_ANNOTATION_P99_S:.1f} s: "
            f"{verdict(p99_note <= TARGET_ANNOTATION_P99_S, f'{p99_note * 1000:.0f} ms')}; answer target "
            f"p99 <= {TARGET_ANSWER_P99_S:.1f} s: "
            f"{verdict(p99_answer <= TARGET_ANSWER_P99_S, f'{p99_answer * 1000:.0f} ms')}",
            f"changes not seen within {GIVE_UP:.0f} s: {missed}",
            f"agent RSS {rss:.1f} MB after the changes, {rss_after_idle:.1f} MB after idling "
            f"(target <= {TARGET_RSS_MB:.0f} MB: {verdict(max(rss, rss_after_idle) <= TARGET_RSS_MB)}); "
            f"of it the agent's own pages (USS) {own[0]:.1f} MB, proportional share (PSS) {own[1]:.1f} MB: "
            "the rest are shared library pages",
            f"agent threads: {threads} (each thread beyond the first may get its own malloc arena)",
            f"an agent started afterwards with --agent-http-port (/metrics scraped 3 times): "
            f"RSS {rss_http:.1f} MB",
            f"agent CPU while idle: {idle_cpu:.3f} s over {idle:.0f} s "
            f"({cpu_per_minute:.3f} CPU-s per minute)",
            "clock starts when `ip address` returns; node-dns on CPU 0, bench loops on CPU 1",
            common.load_note(),
        ],
    )
    table.raw = {
        "to_annotation_s": to_annotation,
        "to_answer_s": to_answer,
        "rss_mb": [rss, rss_after_idle],
        "uss_pss_mb": list(own),
        "threads": threads,
        "rss_http_mb": rss_http,
        "idle_cpu_s": idle_cpu,
        "summary": [
            (
                "agent: address change -> annotation p99",
                f"{p99_note * 1000:.0f} ms",
                "p99 <= 1 s",
                p99_note <= TARGET_ANNOTATION_P99_S,
                "",
            ),
            (
                "agent: address change -> DNS answer p99",
                f"{p99_answer * 1000:.0f} ms",
                "p99 <= 1.1 s",
                p99_answer <= TARGET_ANSWER_P99_S,
                "",
            ),
            (
                "agent RSS",
                f"{max(rss, rss_after_idle):.1f} MB",
                "<= 40 MB",
                max(rss, rss_after_idle) <= TARGET_RSS_MB,
                "",
            ),
        ],
    }
    return table
