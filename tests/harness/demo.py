"""``make demo``: a local cluster with sample nodes and node-dns answering for them.

What a new user needs to see node-dns work end to end without a cluster: a real apiserver, six
nodes in two areas (one NotReady, one cordoned), node-dns running with a token that may only
read nodes, and the exact commands to query it and to flip a node. Ctrl-C (or SIGTERM) stops
everything and removes all temporary files.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tests.harness.controlplane import REPO_ROOT, ControlPlane
from tests.harness.kube import Kube, NodeSpec
from tests.harness.nodedns import AREAS_ANNOTATION, IPS_ANNOTATION, NodeDns, NodeDnsError
from tests.harness.ports import free_port

NAMESPACE = "node-dns"
SERVICE_ACCOUNT = "node-dns"
READER_ROLE = "node-dns-node-reader"
NODE_READER = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]

# Addresses from the documentation ranges (RFC 5737, RFC 3849) only.
SAMPLE_NODES = [
    ("node-1", "home", ["192.0.2.11", "2001:db8:0:1::11"], True, False),
    ("node-2", "home", ["192.0.2.12", "2001:db8:0:1::12"], True, False),
    ("node-3", "home", ["192.0.2.13", "2001:db8:0:1::13"], False, False),  # NotReady
    ("node-4", "cloud", ["198.51.100.21", "2001:db8:0:2::21"], True, False),
    ("node-5", "cloud", ["198.51.100.22", "2001:db8:0:2::22"], True, True),  # cordoned
    ("node-6", "home,cloud", ["198.51.100.31"], True, False),  # in both areas, IPv4 only
]


def sample_nodes() -> list[NodeSpec]:
    return [
        NodeSpec(
            name,
            annotations={AREAS_ANNOTATION: areas, IPS_ANNOTATION: ",".join(ips)},
            labels={"node-dns.example.net/demo": "true"},
            ready=ready,
            addresses=[("InternalIP", f"10.0.0.{100 + i}")],
            unschedulable=cordoned,
        )
        for i, (name, areas, ips, ready, cordoned) in enumerate(SAMPLE_NODES)
    ]


def read_only_kubeconfig(kube: Kube) -> Path:
    """A kubeconfig for a ServiceAccount allowed only get/list/watch on nodes, like the chart's."""
    kube.create_namespace(NAMESPACE)
    kube.create_service_account(NAMESPACE, SERVICE_ACCOUNT)
    kube.create_cluster_role(READER_ROLE, NODE_READER)
    kube.bind_cluster_role(READER_ROLE, NAMESPACE, SERVICE_ACCOUNT)
    token = kube.mint_token(NAMESPACE, SERVICE_ACCOUNT, expiration_seconds=24 * 3600)
    return kube.kubeconfig_for_token(token, user=SERVICE_ACCOUNT)


def node_dns_can_serve() -> bool:
    """Whether this checkout already has node-dns' ``serve`` command (it is built in stages)."""
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "node_dns", "serve", "--help"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd=REPO_ROOT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def python_command() -> str:
    """How to call this interpreter from the repo root, short when it is the project venv."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(REPO_ROOT))
    except ValueError:
        return str(exe)


def print_try_lines(dns_port: int, http_port: int, zone: str, admin_kubeconfig: Path) -> None:
    dig = f"dig @127.0.0.1 -p {dns_port}"
    flip = f"{python_command()} -m tests.harness.flip --kubeconfig {admin_kubeconfig}"
    print(
        f"""
node-dns is answering for {zone} on 127.0.0.1:{dns_port} (UDP and TCP). Try:

  {dig} home.{zone} A +short       # node-1, node-2, node-6 (node-3 is NotReady)
  {dig} home.{zone} AAAA +short
  {dig} cloud.{zone} A +short      # node-4, node-6 (node-5 is cordoned)
  {dig} {zone} SOA +norecurse
  {dig} nowhere.{zone} A          # NXDOMAIN
  curl -s http://127.0.0.1:{http_port}/readyz; curl -s http://127.0.0.1:{http_port}/metrics | head

Change a node and ask again (from the repo root):

  {flip} node-3 True
  {flip} node-1 False
  {flip} node-5 uncordon

Ctrl-C stops everything.""",
        flush=True,
    )


def print_cluster_only(admin_kubeconfig: Path, reader_kubeconfig: Path) -> None:
    flip = f"{python_command()} -m tests.harness.flip --kubeconfig {admin_kubeconfig}"
    print(
        f"""
node-dns has no `serve` command in this checkout yet, so only the cluster runs.

  admin kubeconfig:      {admin_kubeconfig}
  read-only (nodes):     {reader_kubeconfig}
  flip a node:           {flip} node-3 True

Ctrl-C stops everything.""",
        flush=True,
    )


def wait_forever(node_dns: NodeDns | None) -> int:
    """Idle until interrupted; if node-dns dies, show why and end the demo."""
    while True:
        if node_dns is not None and not node_dns.running:
            print(
                f"\nnode-dns exited with {node_dns.returncode}:\n{node_dns.logs()[-4000:]}", file=sys.stderr
            )
            return 1
        time.sleep(0.5)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(dns_port: int, http_port: int, zone: str) -> int:
    started = time.monotonic()
    with ControlPlane() as plane:
        print(f"control plane ready in {time.monotonic() - started:.1f}s at {plane.server}", flush=True)
        plane.create_nodes(sample_nodes())
        reader = read_only_kubeconfig(plane.kube)
        assert plane.kubeconfig is not None
        for name, areas, ips, _, _ in SAMPLE_NODES:
            print(f"  {name}  areas={areas:<11} ips={','.join(ips)}")
        if not node_dns_can_serve():
            print_cluster_only(plane.kubeconfig, reader)
            return wait_forever(None)
        if not port_is_free(dns_port):
            print(f"port {dns_port} is in use on 127.0.0.1: pass --dns-port", file=sys.stderr)
            return 1
        with NodeDns(reader, zone=zone, dns_port=dns_port, http_port=http_port, ready_timeout=60) as node_dns:
            print_try_lines(dns_port, http_port, zone, plane.kubeconfig)
            return wait_forever(node_dns)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--dns-port", type=int, default=5353)
    parser.add_argument("--http-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--zone", default="lb.example.net")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args.dns_port, args.http_port or free_port(), args.zone)
    except KeyboardInterrupt:
        print("\nstopped; all processes and temporary files are gone.")
        return 0
    except NodeDnsError as exc:
        print(f"node-dns did not start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
