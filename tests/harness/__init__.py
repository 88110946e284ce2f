"""Test harness: a real etcd + kube-apiserver, a small REST client, and a node-dns runner.

The harness exists so integration tests, benchmarks and ``make demo`` exercise node-dns against the
same apiserver code a cluster runs (RBAC, resourceVersions, 410 Gone, strict schema validation)
instead of a mock. Binaries are built by ``tools/build.sh`` (``make tools``) from the Go module
sources at the versions pinned in ``tools/versions.env``.
"""

from tests.harness.controlplane import ControlPlane, ControlPlaneError, tools_dir, versions
from tests.harness.kube import Kube, KubeError, NodeSpec
from tests.harness.nodedns import NodeDns, NodeDnsError
from tests.harness.ports import free_dns_port, free_port

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "Kube",
    "KubeError",
    "NodeDns",
    "NodeDnsError",
    "NodeSpec",
    "free_dns_port",
    "free_port",
    "tools_dir",
    "versions",
]
