"""What feeding ``--workers`` costs per publication, as the zone grows: 500, 5,000, 50,000 nodes.

In-process, no apiserver, no processes: the zone writer publishes one node flip at a time; the
parent's side encodes the change once (:func:`node_dns.zone.stream.encode` and the pipe's
framing); a worker's side reads the frame, applies it to its copy and hands old and new copy
to its responder (``Responder.publish``), as a worker does. For contrast, the whole zone: what
every publication would cost if the parent sent snapshots instead of changes.

CPU seconds of this process (``time.process_time``), best of 5 slices, so a busy machine slows
the run but hardly moves the numbers. ``python -m bench.stream [--sizes 500,5000,50000] [--changes N]``
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence

from bench.report import Table
from bench.zone_change import SIZES, _facts, _zone_config
from node_dns.answer import responder
from node_dns.transports.workers import wire
from node_dns.zone import stream
from node_dns.zone.policy import Policy
from node_dns.zone.snapshot import Snapshot
from node_dns.zone.writer import Zone


def measure(size: int, changes: int) -> dict[str, float]:
    zone = Zone(_zone_config(), Policy())
    zone.replace_all([(_facts(i), "1") for i in range(size)], "1")
    copy = stream.apply(None, stream.full(zone.snapshot))
    answers = responder.Responder(copy)
    published: list[tuple[Snapshot, Snapshot]] = []
    zone.subscribe(lambda old, new: published.append((old, new)))
    ready = dict.fromkeys(range(size), True)
    for turn in range(changes):
        index = (turn * 7919) % size
        ready[index] = not ready[index]
        zone.apply(f"node-{index}", _facts(index, ready[index]), str(2 + turn))
    encode_s, apply_s, sizes = [], [], []
    rounds = 5
    step = len(published) // rounds
    for start in range(0, step * rounds, step):
        gc.collect()
        began = time.process_time()
        frames = [
            wire.frame((wire.ZONE, stream.encode(old, new))) for old, new in published[start : start + step]
        ]
        encode_s.append((time.process_time() - began) / step)
        sizes += [len(f) for f in frames]
        gc.collect()
        began = time.process_time()
        for data in frames:
            (message,), _ = wire.split(data)
            new_copy = stream.apply(copy, message[1])
            answers.publish(copy, new_copy)
            copy = new_copy
        apply_s.append((time.process_time() - began) / step)
    whole = wire.frame((wire.ZONE, stream.full(zone.snapshot)))
    gc.collect()
    began = time.process_time()
    (message,), _ = wire.split(whole)
    stream.apply(None, message[1])
    whole_apply = time.process_time() - began
    gc.collect()
    began = time.process_time()
    wire.frame((wire.ZONE, stream.full(zone.snapshot)))
    whole_encode = time.process_time() - began
    return {
        "names": len(zone.snapshot.names),
        "encode_us": min(encode_s) * 1e6,
        "apply_us": min(apply_s) * 1e6,
        "change_bytes": sum(sizes) / len(sizes),
        "whole_encode_ms": whole_encode * 1e3,
        "whole_apply_ms": whole_apply * 1e3,
        "whole_bytes": len(whole),
    }


def run(sizes: Sequence[int] = SIZES, changes: int = 1_000) -> Table:
    table = Table(
        "Feeding the workers: one node flip, encoded by the parent and applied by a worker",
        [
            "nodes",
            "names",
            "encode per change, us",
            "apply + publish per change, us",
            "bytes per change",
            "whole zone: encode ms",
            "whole zone: apply ms",
            "whole zone: bytes",
        ],
    )
    for size in sizes:
        found = measure(size, changes)
        table.rows.append(
            [
                f"{size:,}",
                f"{found['names']:,.0f}",
                f"{found['encode_us']:.0f}",
                f"{found['apply_us']:.0f}",
                f"{found['change_bytes']:,.0f}",
                f"{found['whole_encode_ms']:.1f}",
                f"{found['whole_apply_ms']:.1f}",
                f"{found['whole_bytes']:,.0f}",
            ]
        )
        table.raw[str(size)] = found
    table.notes += [
        "a change carries the owners the build touched (the area of the flipped node, its family "
        "prefixes, the apex with the new SOA) and their parents' counts; encoded once for every worker",
        f"CPU time of this process, best of 5 slices of {changes // 5} changes; areas of 20 nodes",
    ]
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--changes", type=int, default=1_000)
    args = parser.parse_args(argv)
    print(run([int(s) for s in args.sizes.split(",")], args.changes).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
