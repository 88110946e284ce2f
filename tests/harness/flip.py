"""Change a node in the demo (or any harness) cluster: ``python -m tests.harness.flip``.

The demo's point is watching answers change; this is the one-liner that changes them, without
needing kubectl (which this project does not ship).

    python -m tests.harness.flip --kubeconfig KUBECONFIG node-3 True
    python -m tests.harness.flip --kubeconfig KUBECONFIG node-5 uncordon
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from tests.harness.kube import READY_STATES, Kube, KubeError

ACTIONS = (*READY_STATES, "cordon", "uncordon")


def summary(node: dict[str, Any]) -> str:
    """One line: readiness and schedulability, what node-dns' health check looks at."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = next((c["status"] for c in conditions if c["type"] == "Ready"), "none")
    cordoned = bool(node.get("spec", {}).get("unschedulable"))
    return f"{node['metadata']['name']}: Ready={ready}{' cordoned' if cordoned else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.flip", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="admin kubeconfig")
    parser.add_argument("node", help="node name, e.g. node-3")
    parser.add_argument("action", choices=ACTIONS, help="new Ready status, or cordon/uncordon")
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("--kubeconfig (or $KUBECONFIG) is required")
    kube = Kube.from_kubeconfig(args.kubeconfig)
    try:
        if args.action == "cordon":
            node = kube.cordon(args.node)
        elif args.action == "uncordon":
            node = kube.uncordon(args.node)
        else:
            node = kube.set_ready(args.node, args.action)
    except (KubeError, OSError) as exc:
        print(f"flip: {exc}", file=sys.stderr)
        return 1
    print(summary(node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
