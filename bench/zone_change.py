"""What publishing one node change costs, as the zone grows: 500, 5,000 and 50,000 nodes.

In-process, no apiserver: the zone writer is fed a complete list, then one node at a time
flips Ready (each flip moves served content, so each one rebuilds, stamps a serial and
publishes to a subscriber that swaps the answer path's snapshot, as the server does). Areas
have the same size at every scale (``AREA_SIZE`` nodes), so a flat per-change cost means the
work follows the areas a change touches, not the zone. For contrast, the cost of building the
whole zone from scratch (what a change would cost if every publication rebuilt every name).

CPU seconds of this process (``time.process_time``), so a busy machine slows the run but
hardly moves the numbers. ``python -m bench.zone_change [--sizes 500,5000,50000] [--changes N]``
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import time
from collections.abc import Sequence

from bench.report import Table
from node_dns import model
from node_dns.answer import responder
from node_dns.zone import build, config, diff
from node_dns.zone.policy import Policy
from node_dns.zone.writer import Zone

AREA_SIZE = 20
SIZES = (500, 5_000, 50_000)


def _facts(index: int, ready: bool = True) -> model.NodeFacts:
    return model.NodeFacts(
        name=f"node-{index}",
        areas=frozenset({f"area-{index // AREA_SIZE}"}),
        ips=(
            ipaddress.IPv4Address(0x0A000000 + index + 1),
            ipaddress.IPv6Address((0x20010DB8 << 96) + index + 1),
        ),
        ready=ready,
    )


def _zone_config() -> config.ZoneConfig:
    return config.ZoneConfig(
        zone="lb.example.net",
        nameservers=(config.NameServer("ns1.lb.example.net", (ipaddress.IPv4Address("127.0.0.53"),)),),
        soa_rname="hostmaster.example.net",
    )


def _best(zone: Zone, events: list[tuple[str, model.NodeFacts, str]], rounds: int = 5) -> float:
    """CPU seconds per event: the best of ``rounds`` slices (the machine is shared)."""
    best = float("inf")
    step = len(events) // rounds
    for start in range(0, step * rounds, step):
        gc.collect()
        started = time.process_time()
        for name, facts, version in events[start : start + step]:
            zone.apply(name, facts, version)
        best = min(best, (time.process_time() - started) / step)
    return best


def measure(size: int, changes: int) -> dict[str, float]:
    """CPU microseconds per published change, and milliseconds for a whole build, at ``size`` nodes."""
    zone = Zone(_zone_config(), Policy())
    answers = responder.Responder(zone.snapshot)
    diffs: list[int] = []
    zone.subscribe(lambda old, new: answers.update(new))
    zone.replace_all([(_facts(i), "1") for i in range(size)], "1")
    names = len(zone.snapshot.names)
    # Each change toggles one node's Ready (so every change moves content); the facts are made
    # before the clock starts, as the source has made them before the zone sees them.
    ready = dict.fromkeys(range(size), True)
    events: list[tuple[str, model.NodeFacts, str]] = []
    for turn in range(2 * changes):
        index = (turn * 7919) % size  # spread over the zone
        ready[index] = not ready[index]
        events.append((f"node-{index}", _facts(index, ready[index]), str(10 + turn)))
    per_change = _best(zone, events[:changes])
    # the diff a zone transfer or a render hook takes of each publication
    zone.subscribe(lambda old, new: diffs.append(len(diff.diff(old, new).added)))
    per_change_diff = _best(zone, events[changes:]) - per_change
    assert len(diffs) == changes, "every change must publish"
    rounds = max(1, 20_000 // size)
    started = time.process_time()
    for _ in range(rounds):
        build.build(zone.facts, zone.policy, zone.config)
    full = (time.process_time() - started) / rounds
    return {
        "nodes": size,
        "names": names,
        "change_us": per_change * 1e6,
        "diff_us": max(per_change_diff, 0.0) * 1e6,
        "full_build_ms": full * 1e3,
    }


def run(sizes: Sequence[int] = SIZES, changes: int = 5_000) -> Table:
    table = Table(
        f"Zone: CPU per published node change ({AREA_SIZE} nodes per area)",
        [
            "nodes",
            "names in zone",
            "µs per change (build+serial+publish)",
            "µs per diff",
            "ms per full build",
        ],
    )
    for size in sizes:
        row = measure(size, changes)
        table.rows.append(
            [f"{size:,}", f"{int(row['names']):,}", row["change_us"], row["diff_us"], row["full_build_ms"]]
        )
        table.raw[str(size)] = row
    table.notes.append(
        "a change flips one node's Ready, so its area's A/AAAA and the apex SOA move and a snapshot is "
        "published; CPU time of this process (time.process_time)"
    )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.zone_change", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--changes", type=int, default=5_000)
    args = parser.parse_args(argv)
    print(run([int(s) for s in args.sizes.split(",")], args.changes).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
