"""Idle RSS of node-dns source trees side by side, with and without leader election.

``python -m bench.idle_rss [--rounds N] TREE [TREE ...]``: one control plane with 10 nodes; for
each round, each tree and each mode (plain, ``--leader-elect``), a node-dns from that tree is
started, left 8 s (past the first heap trim at 2 s), and its RSS sampled three times. Prints
the median per tree and mode. Compare a commit with the working tree, e.g.
``git archive <commit> | tar -x -C /tmp/before`` then ``python -m bench.idle_rss /tmp/before .``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import psutil

from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION

MODES = {
    "plain": [],
    "leader": ["--leader-elect", "--leader-lease-namespace=default", "--leader-identity=rss"],
}
SETTLE = 8.0


def idle_rss(plane: ControlPlane, tree: Path, args: list[str]) -> float:
    """Median RSS (MB) of a settled node-dns run from ``tree`` (its own cwd, so ``-m`` finds it)."""
    previous = Path.cwd()
    os.chdir(tree)
    try:
        with NodeDns(
            plane.kubeconfig, extra_args=["--log-level=warning", *args], env={"PYTHONPATH": str(tree)}
        ) as proc:
            time.sleep(SETTLE)  # a settling period by design: the first heap trim runs 2 s after start
            samples = []
            for _ in range(3):
                samples.append(psutil.Process(proc.pid).memory_info().rss / 2**20)
                time.sleep(1.0)
    finally:
        os.chdir(previous)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_rss", description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    with ControlPlane() as plane:
        for index in range(10):
            plane.create_node(
                f"rss-{index}", annotations={AREAS_ANNOTATION: "web", IPS_ANNOTATION: f"192.0.2.{index + 1}"}
            )
        for _ in range(opts.rounds):
            for tree in opts.trees:
                for mode, args in MODES.items():
                    rss = idle_rss(plane, tree.resolve(), args)
                    results.setdefault((str(tree), mode), []).append(rss)
                    print(f"{tree} {mode}: {rss:.1f} MB", flush=True)
    print("\n| tree | mode | idle RSS (median) | runs |\n|---|---|---|---|")
    for (tree, mode), values in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {tree} | {mode} | {statistics.median(values):.1f} MB | {runs} |")


if __name__ == "__main__":
    main()
