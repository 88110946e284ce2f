"""Convergence: a Node's Ready condition flipped through the apiserver, to the first DNS answer
that reflects it, with 1,000 nodes present.

The bench PATCHes ``/status`` from a worker thread and, from the moment it sends, asks node-dns
for the node's area in a tight UDP loop (CPU 1) until the node's address appears or disappears.
Two clocks: from the PATCH being sent (what a user sees) and from the apiserver's response to it
(what node-dns itself adds; it can be negative when the answer changes before the response
arrives).
"""

from __future__ import annotations

import ipaddress
import random
import time
from concurrent.futures import ThreadPoolExecutor

from bench import common
from bench.report import Table, verdict
from tests.harness.controlplane import ControlPlane

NODES, AREAS = 1000, 20
TARGET_P99_MS = 100.0
PEER = "p50 5 ms, p99 7 ms"
GIVE_UP = 10.0
WARM_UP = 3
"""Flips not counted: the first ones open the apiserver connection of the PATCH thread."""


def run(plane: ControlPlane, opts: common.Options) -> list[Table]:
    common.populate(plane, common.node_specs(NODES, AREAS))
    rng = random.Random(61)
    ready = dict.fromkeys(range(NODES), True)
    from_send: list[float] = []
    from_response: list[float] = []
    patch_ms: list[float] = []
    missed = 0
    process = common.node_dns(plane)
    with process:
        port = process.dns_port
        last_area = f"{common.area_name(AREAS - 1)}.{common.ZONE}"
        common.wait_answering(port, common.query_bytes(last_area, common.TYPE_A))
        common.wait_replayed(process, NODES)
        prober = common.Prober(port, timeout=0.5)
        with common.on_cpu(common.CLIENT_CPU), ThreadPoolExecutor(1) as pool:

            def flip(name: str, state: bool) -> float:
                plane.set_ready(name, state)
                return time.perf_counter()

            for flip_number in range(opts.flips + WARM_UP):
                index = rng.randrange(NODES)
                want = not ready[index]
                ready[index] = want
                address = ipaddress.IPv4Address(common.ipv4(index)).packed
                question = common.query_bytes(
                    f"{common.area_name(index % AREAS)}.{common.ZONE}", common.TYPE_A, edns=1232
                )
                sent = time.perf_counter()
                future = pool.submit(flip, f"node-{index:05d}", want)
                while True:
                    reply = prober.ask(question)
                    now = time.perf_counter()
                    if reply is not None and (address in common.answer_rdata(reply, common.TYPE_A)) == want:
                        break
                    if now - sent > GIVE_UP:
                        missed += 1
                        break
                answered = future.result()
                if flip_number < WARM_UP:
                    continue
                from_send.append((now - sent) * 1000)
                from_response.append((now - answered) * 1000)
                patch_ms.append((answered - sent) * 1000)
                time.sleep(rng.uniform(0.005, 0.02))
        prober.close()

    def row(label: str, values: list[float]) -> list[object]:
        return [
            label,
            f"{common.percentile(values, 50):.1f}",
            f"{common.percentile(values, 95):.1f}",
            f"{common.percentile(values, 99):.1f}",
            f"{max(values):.1f}",
        ]

    p99 = common.percentile(from_send, 99)
    table = Table(
        f"Convergence: Ready flip -> first answer that shows it ({NODES} nodes, {AREAS} areas, "
        f"{len(from_send)} flips), ms",
        ["clock starts at", "p50", "p95", "p99", "max"],
        [
            row("PATCH sent", from_send),
            row("PATCH response received", from_response),
            row("(PATCH round trip itself)", patch_ms),
        ],
        notes=[
            f"target p99 < {TARGET_P99_MS:.0f} ms: {verdict(p99 < TARGET_P99_MS, f'{p99:.1f} ms')}; "
            f"Go peer: {PEER}",
            f"flips not seen within {GIVE_UP:.0f}s: {missed}",
            "node-dns on CPU 0; the polling loop and the PATCH thread on CPU 1; apiserver and etcd unpinned",
            common.load_note(),
        ],
    )
    table.raw = {
        "from_send_ms": from_send,
        "from_response_ms": from_response,
        "summary": [
            (
                "convergence p50 / p99 (flip -> answer)",
                f"{common.percentile(from_send, 50):.1f} / {p99:.1f} ms",
                "p99 < 100 ms",
                p99 < TARGET_P99_MS,
                PEER,
            )
        ],
    }
    return [table]
