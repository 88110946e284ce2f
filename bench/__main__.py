"""``python -m bench [--only PART,PART...] [--quick] [--json PATH]`` (parts: see ``PARTS``).

Starts one throw-away etcd + kube-apiserver (tests/harness), runs the selected parts in order and
prints one Markdown table per measurement, then a summary against the performance targets and the
Go peer. Never fails on a missed target: a benchmark reports, it does not judge CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    agent,
    common,
    convergence,
    hooks,
    probes,
    qps,
    scale,
    soak,
    summary,
    workers,
    xfr,
    zone_change,
)
from bench.report import Table
from tests.harness.controlplane import ControlPlane

PARTS = ("udp", "tcp", "workers", "convergence", "scale", "zone", "hooks", "agent", "soak", "xfr", "probes")
EXTRA_PARTS = ("soak-rss", "soak-rss-big")
"""Parts run only when named in --only: each soak-rss is one 10-minute run (the full soak has four)."""
NEEDED = ("dnsperf", "taskset")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma separated parts: {','.join(PARTS + EXTRA_PARTS)}"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, one round, fewer flips")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per comparison (default 3, 1 with --quick)"
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS) - set(EXTRA_PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {','.join(PARTS + EXTRA_PARTS)}")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        print(f"bench: {', '.join(missing)} not installed (make apt)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="node-dns-bench-"))
    opts = common.Options.make(args.quick, workdir)
    if args.rounds is not None:
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        opts.rounds = args.rounds
    print(f"# node-dns benchmarks ({'quick' if args.quick else 'full'}): {', '.join(sorted(parts))}")
    print(
        f"server CPU {common.SERVER_CPU}, client CPU {common.CLIENT_CPU}; {common.load_note()}\n", flush=True
    )
    tables: list[Table] = []
    started = time.monotonic()
    try:
        with ControlPlane() as plane:
            steps: list[tuple[str, Callable[[], list[Table]]]] = []
            if parts & {"udp", "tcp"}:
                steps.append(("udp,tcp", lambda: qps.run(plane, opts, parts)))
            if "workers" in parts:  # both CPUs: --workers 0/1/2 beside NSD server-count 1/2
                steps.append(("workers", lambda: workers.run(plane, opts)))
            if "convergence" in parts:
                steps.append(("convergence", lambda: convergence.run(plane, opts)))
            if "scale" in parts:
                steps.append(("scale", lambda: scale.run(plane, opts)))
            if "zone" in parts:  # in-process, no apiserver needed
                steps.append(("zone", lambda: [zone_change.run(changes=1_000 if args.quick else 5_000)]))
            if "hooks" in parts:
                steps.append(("hooks", lambda: hooks.run(plane, opts)))
            if "xfr" in parts:  # zone transfers: node-dns as primary beside NSD and Knot
                steps.append(("xfr", lambda: xfr.run(plane, opts)))
            if "agent" in parts:  # its own control plane and network namespace (needs root)
                steps.append(("agent", lambda: agent.run(opts)))
            if "soak" in parts:  # fixed rate with node churn, beside NSD: 4 x 60 s quick, 4 x 10 min full
                steps.append(("soak", lambda: soak.run(plane, opts)))
            if "soak-rss" in parts:  # one node-dns run, 10 min (60 s quick) at 5 flips/s: RSS over time
                steps.append(("soak-rss", lambda: soak.run_rss(plane, opts)))
            if "soak-rss-big" in parts:  # the same at 5,000 kubelet-shaped nodes and 50 flips/s
                steps.append(("soak-rss-big", lambda: soak.run_rss(plane, opts, big=True)))
            if "probes" in parts:
                steps.append(("probes", lambda: probes.run(plane, opts)))
            for name, step in steps:
                try:
                    for table in step():
                        tables.append(table)
                        print(table.markdown(), flush=True)
                except Exception:
                    print(
                        f"bench: part {name} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    overview = summary.table(tables)
    if overview.rows:
        print(overview.markdown())
    print(f"total {time.monotonic() - started:.0f}s; {common.load_note()}")
    if args.json:
        args.json.write_text(json.dumps({t.title: {"rows": t.rows, "raw": t.raw} for t in tables}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
