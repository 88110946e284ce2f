"""The container image, built and run for real.

The image is built from the Dockerfile with podman (``tools/image.sh``; cached by a hash of its
inputs, see ``tests/harness/image.py``) and its entrypoint runs from the image's own filesystem,
read-only, as its non-root user: ``--version``, ``serve`` answering a real query against the test
apiserver, ``agent --help``, and ``serve --help`` / ``agent --help`` listing every flag the chart
passes.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from tests.harness import netns
from tests.harness.controlplane import REPO_ROOT, ControlPlane, make_workdir
from tests.harness.helm import Helm
from tests.harness.image import ImageRoot, built_image, inspect
from tests.harness.kube import Kube, wait_for, write_kubeconfig
from tests.harness.nodedns import NodeDns
from tests.harness.ports import free_dns_port, free_port
from tests.integration.test_resolvers import UNBOUND_CONF, _Daemon

pytestmark = pytest.mark.image

SIZE_BUDGET_MB = 120
CHART_VALUES: dict[str, Any] = {
    "zone": "lb.example.net",
    "nameservers": [{"name": "ns1.lb.example.net", "ips": ["192.0.2.53"]}],
    "soa": {"email": "hostmaster@example.net"},
}


def project_version() -> str:
    version: str = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


@pytest.fixture(scope="module")
def image() -> str:
    return built_image()


@pytest.fixture(scope="module")
def root(image: str) -> Iterator[ImageRoot]:
    with ImageRoot(image) as entered:
        yield entered


# --- the built image ------------------------------------------------------------------------------


def test_image_fits_the_size_budget(image: str) -> None:
    size_mb = inspect(image)["Size"] / 1_000_000

    assert size_mb <= SIZE_BUDGET_MB, f"{image} is {size_mb:.0f} MB"


def test_image_runs_as_the_numeric_user_the_chart_sets(image: str) -> None:
    config = inspect(image)["Config"]
    chart_values = yaml.safe_load((REPO_ROOT / "charts" / "node-dns" / "values.yaml").read_text())
    security = chart_values["podSecurityContext"]

    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert config["Entrypoint"] == ["node-dns"]
    assert config["Cmd"] == ["serve"]


def test_version_runs_from_the_image(root: ImageRoot) -> None:
    done = root.run(["--version"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"node-dns {project_version()}"


def test_image_starts_with_no_network_at_all(root: ImageRoot) -> None:
    """Nothing is fetched at runtime: the CLI and every module ``serve`` loads import offline."""
    probe = "import node_dns.app, node_dns.agent, uvloop, aiohttp, kopf; print('imported')"
    version = root.run(["--version"], network=False)
    imported = root.run(["-c", probe], entrypoint=["/opt/node-dns/bin/python"], network=False)

    assert version.returncode == 0, version.stderr
    assert imported.stdout.strip() == "imported", imported.stderr


def test_entrypoint_runs_as_the_non_root_user_on_a_read_only_root(root: ImageRoot) -> None:
    probe = (
        "import os\n"
        "try:\n"
        "    open('/opt/node-dns/written', 'w')\n"
        "except OSError as e:\n"
        "    print(os.getuid(), os.getgid(), e.strerror)\n"
    )
    done = root.run(["-c", probe], entrypoint=["/opt/node-dns/bin/python"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=2) == ["10001", "10001", "Read-only file system\n"]


def test_image_holds_no_pip_and_no_source_tree(root: ImageRoot) -> None:
    probe = (
        "import importlib.util, node_dns\n"
        "print(importlib.util.find_spec('pip') is not None, node_dns.__file__)\n"
    )
    done = root.run(["-c", probe], entrypoint=["/opt/node-dns/bin/python"])

    assert done.returncode == 0, done.stderr
    has_pip, package = done.stdout.split()
    assert has_pip == "False"
    assert package.startswith("/opt/node-dns/lib/")


def test_image_answers_udp_with_the_compiled_batch(root: ImageRoot) -> None:
    """The build stage has a compiler: the wheel carries _fastudp and it loads in the runtime image."""
    probe = "from node_dns.transports import accel; c = accel.choose(); print(c.path, c.reason)"
    done = root.run(["-c", probe], entrypoint=["/opt/node-dns/bin/python"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "c"


def test_image_records_the_debian_packages_it_holds_for_scanners(root: ImageRoot) -> None:
    """dpkg's status (a Debian image) or status.d (the bootstrapped runtime), as scanners read them."""
    dpkg = root.mounted / "var" / "lib" / "dpkg"
    records = [dpkg / "status"] if (dpkg / "status").exists() else sorted((dpkg / "status.d").iterdir())
    packages = {
        line.removeprefix("Package: ")
        for r in records
        for line in r.read_text().splitlines()
        if line.startswith("Package: ")
    }

    assert {"libc6", "libssl3", "libpython3.11-stdlib", "python3.11-minimal", "ca-certificates"} <= packages


def test_agent_help_runs_from_the_image(root: ImageRoot) -> None:
    done = root.run(["agent", "--help"])

    assert done.returncode == 0, done.stdout + done.stderr
    assert "--node-name" in done.stdout


# --- serve, against the test apiserver ------------------------------------------------------------


class ImageNodeDns(NodeDns):
    """The harness' node-dns process, but the image's entrypoint from the image's filesystem."""

    def __init__(self, root: ImageRoot, kubeconfig_dir: Path, **kwargs: Any) -> None:
        super().__init__("/run/kube/kubeconfig", **kwargs)
        # argv is [python, -m, node_dns, serve, --flags...]: keep what follows the interpreter.
        settings = {k: v for k, v in self.env.items() if k.startswith("NODE_DNS_")}
        self.argv = root.command(self.argv[3:], env=settings)
        self.env = root.env(settings)


@pytest.mark.controlplane
def test_serve_from_the_image_answers_a_query_against_the_apiserver(image: str, kube: Kube) -> None:
    suffix = uuid.uuid4().hex[:8]
    area, node = f"web-{suffix}", f"image-{suffix}"
    kubedir = make_workdir("node-dns-image-kube-")
    config = kube.kubeconfig_for_token(kube.token, path=kubedir / "kubeconfig", user="image")
    # The image's user reads it, as a pod reads its mounted ServiceAccount files.
    kubedir.chmod(0o755)
    config.chmod(0o644)
    kube.create_node(
        node, annotations={"example.net/node-areas": area, "example.net/node-ips": "203.0.113.9"}
    )
    try:
        with (
            ImageRoot(image, binds={kubedir: "/run/kube"}) as root,
            ImageNodeDns(root, kubedir, ready_timeout=60) as proc,
        ):
            name = f"{area}.lb.example.net."
            response = wait_for(
                lambda: _answer(proc.dns_address, name), timeout=30, what=f"the A record of {name}"
            )
            status = _process_status(proc)
    finally:
        kube.delete_node(node, missing_ok=True)

    assert response.rcode() == dns.rcode.NOERROR
    assert {r.address for rrset in response.answer for r in rrset} == {"203.0.113.9"}
    assert response.flags & dns.flags.AA
    assert status["Uid"].split()[:2] == ["10001", "10001"]
    assert status["CapEff"] == status["CapPrm"] == "0000000000000000"


@dataclass
class EdgeRun:
    """The chart's edge container running from the image: where it answers and what it logged."""

    values: dict[str, Any]
    host_ip: str
    area: str
    log: Path

    @property
    def name(self) -> str:
        return f"{self.area}.lb.example.net."


@contextmanager
def running_edge(helm: Helm, image: str, kube: Kube) -> Iterator[EdgeRun]:
    """The rendered hostNetwork edge container, run as rendered: its command, args and environment
    (status.hostIP filled with a loopback address, which is also the glue of its name server),
    only NET_BIND_SERVICE, read-only, as 10001; one node in a fresh area with 203.0.113.10."""
    suffix = uuid.uuid4().hex[:8]
    area, node = f"edge-{suffix}", f"image-edge-{suffix}"
    host_ip = f"127.0.53.{secrets.randbelow(200) + 20}"
    values = {
        "nameservers": [{"name": "ns1.lb.example.net", "ips": [host_ip]}],
        "edge": {**EDGE_ON, "mode": "hostNetwork"},
    }
    containers = chart_invocations(helm, image, values)
    (container,) = [c for c in containers if "command" in c]  # the edge one: python-netbind
    downward = {"status.hostIP": host_ip}
    env = {
        e["name"]: e["value"] if "value" in e else downward[e["valueFrom"]["fieldRef"]["fieldPath"]]
        for e in container["env"]
    }
    probe = container["readinessProbe"]["httpGet"]
    http_port = free_port(probe["host"])  # the rendered 8053 may be taken on a shared machine
    env |= {"NODE_DNS_HTTP_PORT": str(http_port), "NODE_DNS_KUBECONFIG": "/run/kube/kubeconfig"}
    workdir = make_workdir("node-dns-image-edge-")
    kubedir = workdir / "kube"
    kubedir.mkdir(mode=0o755)
    workdir.chmod(0o755)
    config = kube.kubeconfig_for_token(kube.token, path=kubedir / "kubeconfig", user="image-edge")
    config.chmod(0o644)
    kube.create_node(node, annotations={"node-dns/areas": area, "node-dns/ips": "203.0.113.10"})
    keep = [c.lower() for c in container["securityContext"]["capabilities"]["add"]]
    log = workdir / "edge.log"
    try:
        with ImageRoot(image, binds={kubedir: "/run/kube"}) as root, log.open("wb") as out:
            argv = root.command(container["args"], env=env, entrypoint=container["command"], keep_caps=keep)
            proc = subprocess.Popen(
                argv, env=root.env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                ready = f"http://{probe['host']}:{http_port}{probe['path']}"
                wait_for(lambda: _http_ok(ready), timeout=60, what=f"{ready} (the readiness probe)")
                yield EdgeRun({**CHART_VALUES, **values}, host_ip, area, log)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    finally:
        kube.delete_node(node, missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.controlplane
def test_the_charts_edge_container_serves_port_53_from_the_image(helm: Helm, image: str, kube: Kube) -> None:
    with running_edge(helm, image, kube) as edge:
        response = wait_for(
            lambda: _answer((edge.host_ip, 53), edge.name), timeout=30, what="the edge answer"
        )
        status = _status_of(b"/opt/node-dns/bin/python-netbind")
        logs = edge.log.read_text()

    assert {r.address for rrset in response.answer for r in rrset} == {"203.0.113.10"}, logs
    assert status["Uid"].split()[:2] == ["10001", "10001"]
    assert status["CapEff"] == status["CapPrm"] == f"{1 << 10:016x}"  # CAP_NET_BIND_SERVICE only


@pytest.mark.controlplane
def test_a_resolver_follows_the_printed_delegation_to_the_edge_node(
    helm: Helm, image: str, kube: Kube
) -> None:
    """Topology 2 end to end: the NS and glue records helm prints go into the parent zone; unbound,
    which knows only that parent zone, follows the delegation to port 53 of the edge "node"."""
    with running_edge(helm, image, kube) as edge:
        notes = helm.notes(edge.values)
        delegation = [
            line
            for line in notes[notes.index("EDGE MODE") :].splitlines()
            if re.match(r"^\S+\.\s+\d+\s+IN\s+(NS|A|AAAA)\s", line)
        ]
        workdir = make_workdir("unbound-edge")
        zonefile = workdir / "example.net.zone"
        zonefile.write_text(PARENT_SOA + "\n".join(delegation) + "\n")
        port = free_dns_port()
        conf = workdir / "unbound.conf"
        conf.write_text(RESOLVER_ONLY_PARENT.format(port=port, workdir=workdir, zonefile=zonefile))
        unbound = shutil.which("unbound") or "/usr/sbin/unbound"
        resolver = _Daemon([unbound, "-d", "-c", str(conf)], workdir, port)
        try:
            resolver.wait_answering("example.net")
            response = wait_for(
                lambda: _answer(("127.0.0.1", port), edge.name), timeout=30, what="the resolved answer"
            )
        finally:
            resolver.stop()

    assert delegation == [
        "lb.example.net.  3600  IN  NS  ns1.lb.example.net.",
        f"ns1.lb.example.net.  3600  IN  A  {edge.host_ip}",
    ]
    assert response.rcode() == dns.rcode.NOERROR
    assert {r.address for rrset in response.answer for r in rrset} == {"203.0.113.10"}


@pytest.mark.controlplane
def test_the_charts_host_port_edge_pod_answers_on_port_53_of_the_node_address(helm: Helm, image: str) -> None:
    """hostPort mode: the pod keeps its own network namespace, as the chart renders it (DNS on
    0.0.0.0:5353, no capability); the node forwards its port 53 there, as CNI's portmap does
    (DNAT), and the kubelet's probe reaches the pod's address."""
    assert netns.available() is None, netns.available()
    values = {"edge": {**EDGE_ON, "mode": "hostPort"}}
    (container,) = [c for c in chart_invocations(helm, image, values) if "hostPort" in c["ports"][0]]
    (dns_port,) = {p["containerPort"] for p in container["ports"] if p["name"].startswith("dns-")}
    (host_port,) = {p["hostPort"] for p in container["ports"] if p["name"].startswith("dns-")}
    probe = container["readinessProbe"]["httpGet"]
    (http_port,) = [p["containerPort"] for p in container["ports"] if p["name"] == probe["port"]]
    suffix = uuid.uuid4().hex[:8]
    area, node = f"hostport-{suffix}", f"image-hostport-{suffix}"
    with netns.Netns.create("edgepod") as pod:
        uplink = pod.add_uplink()  # the node's address (host end) and the pod's (namespace end)
        with (
            ControlPlane(apiserver_args=[f"--advertise-address={uplink.host_ip}"]) as plane,
            netns.TcpRelay(uplink.host_ip, ("127.0.0.1", plane.apiserver_port)) as relay,
        ):
            workdir = make_workdir("node-dns-image-hostport-")
            workdir.chmod(0o755)
            config = write_kubeconfig(
                workdir / "kubeconfig",
                f"https://{uplink.host_ip}:{relay.port}",
                plane.kube.token,
                ca_data=plane.ca_data,
            )
            config.chmod(0o644)
            plane.kube.create_node(node, annotations={"node-dns/areas": area, "node-dns/ips": "203.0.113.11"})
            env = {e["name"]: e["value"] for e in container["env"]} | {
                "NODE_DNS_KUBECONFIG": "/run/kube/kubeconfig"
            }
            portmap = [
                [
                    "-d",
                    f"{uplink.host_ip}/32",
                    "-p",
                    proto,
                    "--dport",
                    str(host_port),
                    "-j",
                    "DNAT",
                    "--to-destination",
                    f"{uplink.ns_ip}:{dns_port}",
                ]
                for proto in ("udp", "tcp")
            ]
            for rule in portmap:
                subprocess.run(["iptables", "-t", "nat", "-A", "OUTPUT", *rule], check=True, timeout=30)
            try:
                with (
                    ImageRoot(image, binds={workdir: "/run/kube"}) as root,
                    (workdir / "pod.log").open("wb") as out,
                ):
                    argv = pod.command(root.command(container["args"], env=env))
                    proc = subprocess.Popen(
                        argv, env=root.env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                    try:
                        ready = f"http://{uplink.ns_ip}:{http_port}{probe['path']}"
                        wait_for(lambda: _http_ok(ready), timeout=60, what=f"{ready} (the readiness probe)")
                        name = f"{area}.lb.example.net."
                        udp = wait_for(
                            lambda: _answer((uplink.host_ip, 53), name), timeout=30, what="UDP answer"
                        )
                        tcp = dns.query.tcp(
                            dns.message.make_query(name, dns.rdatatype.A), uplink.host_ip, port=53, timeout=5
                        )
                        status = _status_of(b"/opt/node-dns/bin/python")
                    finally:
                        os.killpg(proc.pid, signal.SIGTERM)
                        proc.wait(timeout=30)
            finally:
                for rule in portmap:
                    subprocess.run(["iptables", "-t", "nat", "-D", "OUTPUT", *rule], check=False, timeout=30)
                shutil.rmtree(workdir, ignore_errors=True)

    assert host_port == 53
    assert dns_port == 5353
    assert {r.address for rrset in udp.answer for r in rrset} == {"203.0.113.11"}
    assert {r.address for rrset in tcp.answer for r in rrset} == {"203.0.113.11"}
    assert status["Uid"].split()[:2] == ["10001", "10001"]
    assert status["CapEff"] == status["CapPrm"] == "0000000000000000"


# The parent zone without any delegation yet; the test appends the records helm prints.
PARENT_SOA = """\
$ORIGIN example.net.
@    3600 IN SOA ns.example.net. hostmaster.example.net. 1 7200 3600 1209600 60
@    3600 IN NS  ns.example.net.
ns   3600 IN A   127.0.0.1
"""
# unbound as in the README's topology 1, minus the stub-zone: it must find node-dns by delegation.
RESOLVER_ONLY_PARENT = UNBOUND_CONF[: UNBOUND_CONF.index("stub-zone:")]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _status_of(interpreter: bytes) -> dict[str, str]:
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == interpreter and b"serve" in argv:
            lines = (entry / "status").read_text().splitlines()
            return dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    raise AssertionError(f"no process runs {interpreter.decode()}")


def _answer(address: tuple[str, int], name: str) -> dns.message.Message | None:
    response = dns.query.udp(
        dns.message.make_query(name, dns.rdatatype.A), address[0], port=address[1], timeout=2
    )
    return response if response.answer else None


def _process_status(proc: NodeDns) -> dict[str, str]:
    """/proc status of the serving process, found by its unique --dns-port flag."""
    flag = f"--dns-port={proc.dns_port}".encode()
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if flag in argv and argv[0].endswith(b"/python"):  # the console script's interpreter
            lines = (entry / "status").read_text().splitlines()
            return dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    raise AssertionError(f"no process with {flag.decode()}")


# --- the chart's command lines against the image --------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Iterator[Helm]:
    with Helm() as h:
        yield h


def chart_invocations(helm: Helm, image: str, features: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers ``helm template`` renders with the built image's repository and tag."""
    repository, _, tag = image.rpartition(":")
    rendered = helm.template({**CHART_VALUES, "image": {"repository": repository, "tag": tag}, **features})
    pods = [obj["spec"]["template"]["spec"] for obj in rendered if obj["kind"] in {"Deployment", "DaemonSet"}]
    return [container for pod in pods for container in pod["containers"]]


def flags_of(container: dict[str, Any]) -> set[str]:
    """Every flag the container's environment and arguments set (NODE_DNS_FOO_BAR is --foo-bar)."""
    from_env = {
        "--" + e["name"].removeprefix("NODE_DNS_").lower().replace("_", "-") for e in container["env"]
    }
    from_args = {a.split("=", 1)[0] for a in container["args"] if a.startswith("--")}
    return from_env | from_args


EDGE_ON = {"enabled": True, "nodeSelector": {"node-dns/edge": "true"}}


@pytest.mark.parametrize(
    "features",
    [
        {},
        {"edge": {**EDGE_ON, "mode": "hostNetwork"}},
        {"edge": {**EDGE_ON, "mode": "hostPort"}},
        {"agent": {"enabled": True}},
    ],
    ids=["deployment", "edge-hostNetwork", "edge-hostPort", "agent"],
)
def test_every_flag_the_chart_passes_is_listed_by_help_in_the_image(
    helm: Helm, image: str, root: ImageRoot, features: dict[str, Any]
) -> None:
    containers = chart_invocations(helm, image, features)
    assert {c["image"] for c in containers} == {image}

    for container in containers:
        # The container's own command (edge mode's capable interpreter) or the image's entrypoint.
        command = container.get("command")
        keep = container["securityContext"].get("capabilities", {}).get("add", [])
        done = root.run(
            [*container["args"], "--help"], entrypoint=command, keep_caps=[c.lower() for c in keep]
        )
        assert done.returncode == 0, done.stdout + done.stderr
        listed = set(re.findall(r"--[a-z0-9-]+", done.stdout))
        assert flags_of(container) - listed == set()


# --- edge mode's port 53 ------------------------------------------------------------------------------


def test_edge_interpreter_binds_port_53_as_the_non_root_user_with_net_bind_service(root: ImageRoot) -> None:
    done = root.run(
        ["-c", BIND_53],
        entrypoint=["/opt/node-dns/bin/python-netbind"],
        keep_caps=["net_bind_service"],
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bound 53 as 10001"


def test_plain_interpreter_cannot_bind_port_53(root: ImageRoot) -> None:
    done = root.run(["-c", BIND_53], entrypoint=["/opt/node-dns/bin/python"], keep_caps=["net_bind_service"])

    assert done.returncode == 1
    assert "Permission denied" in done.stderr


def test_edge_interpreter_refuses_to_start_without_the_capability(root: ImageRoot) -> None:
    """A pod that drops NET_BIND_SERVICE gets a clear exec error, not a half-working server."""
    done = root.run(["-c", "print(1)"], entrypoint=["/opt/node-dns/bin/python-netbind"])

    assert done.returncode != 0
    assert "Operation not permitted" in done.stderr


BIND_53 = (
    "import os, socket\n"
    f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.{53}.{7}', 53))\n"
    "print('bound 53 as', os.getuid())\n"
)
