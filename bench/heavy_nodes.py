"""Nodes shaped like the ones a kubelet registers: ~9 KB of JSON each.

The bench's plain nodes carry a few hundred bytes (annotations, a Ready condition). A real Node
also lists its container images, labels, capacity and five conditions, and that is what a list
or a watch event costs to decode: 5,000 such nodes are ~45 MB of JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from tests.harness.controlplane import ControlPlane
from tests.harness.kube import Kube, NodeSpec, now_rfc3339

IMAGES = 40


def body(spec: NodeSpec, index: int) -> dict[str, Any]:
    node = Kube._node_body(spec)
    meta = node["metadata"]
    meta["labels"] = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": spec.name,
        "node.kubernetes.io/instance-type": "m5.2xlarge",
        "topology.kubernetes.io/region": "eu-west-1",
        "topology.kubernetes.io/zone": f"eu-west-1{'abc'[index % 3]}",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/instance-type": "m5.2xlarge",
        "node-role.kubernetes.io/worker": "",
        "pool": f"pool-{index % 7}",
        **(spec.labels or {}),
    }
    meta["annotations"] = {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        "csi.volume.kubernetes.io/nodeid": json.dumps({"ebs.csi.aws.com": f"i-0{index:015x}"}),
        **(spec.annotations or {}),
    }
    node["spec"] = {
        **node.get("spec", {}),
        "providerID": f"aws:///eu-west-1a/i-0{index:015x}",
        "podCIDR": "10.0.0.0/24",
    }
    status = node.setdefault("status", {})
    stamp = now_rfc3339()
    status["conditions"] = [
        {
            "type": kind,
            "status": "False",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
            "reason": f"KubeletHas{reason}",
            "message": f"kubelet has {reason.lower()}",
        }
        for kind, reason in (
            ("MemoryPressure", "SufficientMemory"),
            ("DiskPressure", "NoDiskPressure"),
            ("PIDPressure", "SufficientPID"),
        )
    ] + status.get("conditions", [])
    resources = {
        "cpu": "8",
        "memory": "32386520Ki",
        "pods": "110",
        "ephemeral-storage": "104845292Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    status["capacity"] = resources
    status["allocatable"] = {**resources, "cpu": "7910m", "memory": "31369688Ki"}
    status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
    status["nodeInfo"] = {
        "machineID": f"{index:032x}",
        "systemUUID": f"ec2{index:029x}",
        "bootID": f"{index * 7:032x}",
        "kernelVersion": "6.1.0-1024-aws",
        "osImage": "Ubuntu 24.04.1 LTS",
        "containerRuntimeVersion": "containerd://1.7.22",
        "kubeletVersion": "v1.31.2",
        "kubeProxyVersion": "v1.31.2",
        "operatingSystem": "linux",
        "architecture": "amd64",
    }
    status["images"] = [
        {
            "names": [
                f"registry.example.com/team-{i % 9}/service-{i}@sha256:{(index * 131 + i):064x}",
                f"registry.example.com/team-{i % 9}/service-{i}:v1.{i}.{index % 17}",
            ],
            "sizeBytes": 10_000_000 + i * 1_234_567,
        }
        for i in range(IMAGES)
    ]
    return node


def populate(plane: ControlPlane, specs: Sequence[NodeSpec], concurrency: int = 8) -> None:
    """Replace every node in the cluster by heavy versions of ``specs``."""
    plane.delete_all_nodes()
    deadline = time.monotonic() + 60
    while plane.list_nodes() and time.monotonic() < deadline:
        time.sleep(0.2)
    kube = plane.kube
    items = list(enumerate(specs))
    kube._parallel(
        lambda item: kube.call("POST", "/api/v1/nodes", body(item[1], item[0])), items, concurrency
    )
