"""What starting node-dns loads: never kubernetes-asyncio (36 MB of generated models), not even
for leader election; only a kubeconfig with an exec plugin or auth provider imports it. Each
check runs in a fresh interpreter, since this one has imported more."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_the_command_line_entry_point_does_not_load_kubernetes_asyncio() -> None:
    loaded = _loaded_after("import node_dns.cli, node_dns.app")

    assert "kopf" in loaded
    assert "kubernetes_asyncio" not in loaded


AGENT = (
    "import node_dns.cli, node_dns.agent.run\n"
    "from node_dns.settings import agent\n"
    "agent.load({}, {})\n"
    "node_dns.cli.build_agent_parser()\n"
)
"""What ``node-dns agent`` imports before it runs: its command line, settings and loop."""


def test_the_node_agent_loads_neither_kopf_nor_the_dns_server() -> None:
    loaded = _loaded_after(AGENT)

    assert not loaded & {"kopf", "dnslib", "kubernetes_asyncio", "uvloop"}
    assert "node_dns.app" not in _modules_after(AGENT)


def test_the_node_agent_loads_none_of_the_libraries_that_would_double_its_memory() -> None:
    """pydantic(-settings) and the controller's model ~13 MB, aiohttp ~14 MB, pyroute2 ~13 MB
    (docs/benchmarks.md); the metrics library only with --agent-http-port; PyYAML only for a
    kubeconfig file (a pod reads its service account)."""
    loaded = _loaded_after(AGENT)
    modules = _modules_after(AGENT)

    assert not loaded & {"pydantic", "pydantic_settings", "aiohttp", "pyroute2", "prometheus_client", "yaml"}
    assert "node_dns.settings.controller" not in modules


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_kopf_is_usable_and_kubernetes_asyncio_importable_afterwards() -> None:
    loaded = _loaded_after(
        "from node_dns.sources import kopf\n"
        "assert kopf.OperatorRegistry and kopf.ConnectionInfo\n"
        "import kubernetes_asyncio.client\n"
    )

    assert "kubernetes_asyncio" in loaded


def test_the_leader_package_does_not_load_kubernetes_asyncio() -> None:
    loaded = _loaded_after("import node_dns.leader, node_dns.leader.client, node_dns.app")

    assert "kubernetes_asyncio" not in loaded


def test_the_kubernetes_layer_and_the_zone_command_do_not_load_kubernetes_asyncio() -> None:
    loaded = _loaded_after("import node_dns.kube, node_dns.zone_command, node_dns.leader")

    assert "kubernetes_asyncio" not in loaded
