"""kopf alone: node-dns' kopf settings and login, one ``@kopf.on.event`` handler for nodes that
does nothing. The scale benchmark runs it beside node-dns through the same Ready flips, so the
CPU per node update can be split into what kopf (and the watch stream under it) costs and what
node-dns adds. ``python -m bench.kopf_floor KUBECONFIG NODES``: prints ``listed`` once kopf has
delivered NODES objects of its initial listing; runs until terminated.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from node_dns import kube
from node_dns.sources import kopf, watch


async def run(kubeconfig: str, nodes: int) -> None:
    loader = kube.CredentialsLoader(kubeconfig)
    registry = kopf.OperatorRegistry()
    login = watch.login(loader)

    @kopf.on.login(registry=registry)
    async def _login(**_: Any) -> Any:
        return await login()

    listed = 0

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def _nothing(event: Any, **_: Any) -> None:
        nonlocal listed
        if event.get("type") is None:  # an object of the initial listing
            listed += 1
            if listed == nodes:
                print("listed", flush=True)

    await kopf.operator(
        registry=registry, settings=watch.operator_settings(), standalone=True, clusterwide=True
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)  # as node-dns runs in the benchmark
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run(sys.argv[1], int(sys.argv[2])))
    else:
        uvloop.run(run(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
