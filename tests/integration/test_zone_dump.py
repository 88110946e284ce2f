"""`node-dns zone` and /debug/zone: the zone being served, as a zone file, from one read-only LIST."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from tests.harness.controlplane import REPO_ROOT, ControlPlane
from tests.harness.kube import write_kubeconfig
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION, NodeDns
from tests.integration import recordkit as rk

pytestmark = pytest.mark.controlplane


def zone_command(kubeconfig: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "node_dns",
        "zone",
        f"--zone={DEFAULT_ZONE}",
        f"--nameservers=ns1.{DEFAULT_ZONE}=127.0.0.1",
        "--soa-email=hostmaster@example.net",
        f"--areas-annotation={AREAS_ANNOTATION}",
        f"--ips-annotation={IPS_ANNOTATION}",
        f"--kubeconfig={kubeconfig}",
        *extra,
    ]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT, check=False
    )


def records(text: str) -> dict[tuple[str, str], list[str]]:
    zone = dns.zone.from_text(text, origin=f"{DEFAULT_ZONE}.", relativize=False)
    found: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
        found[key] = sorted(rd.to_text() for rd in rdataset)
    return found


@pytest.fixture(scope="module")
def audited() -> Iterator[ControlPlane]:
    with ControlPlane(audit=True) as plane:
        yield plane


def test_the_dump_prints_areas_services_and_prefixes(audited: ControlPlane) -> None:
    kube = audited.kube
    area = rk.unique("home")
    n1 = rk.node(kube, areas=area, ips="192.0.2.1,2001:db8::1")
    rk.node(kube, areas=area, ips="192.0.2.2", ready=False)
    ns = rk.namespace(kube)
    rk.service(kube, ns, "web")
    pod = rk.pod(kube, ns, "web", n1, "10.244.1.1")
    rk.write_slice(kube, ns, "web", [rk.endpoint(pod, "10.244.1.1")])

    result = zone_command(audited.kubeconfig, "--services", "--static-records=office=192.0.2.50")

    assert result.returncode == 0, result.stderr
    found = records(result.stdout)
    zone = f"{DEFAULT_ZONE}."
    assert found[(f"{area}.{zone}", "A")] == ["192.0.2.1"]
    assert found[(f"{area}.{zone}", "AAAA")] == ["2001:db8::1"]
    assert found[(f"v4.{area}.{zone}", "A")] == ["192.0.2.1"]
    assert (f"v4.{area}.{zone}", "AAAA") not in found
    assert found[(f"web.{ns}.{zone}", "A")] == ["192.0.2.1"]
    assert found[(f"office.{zone}", "A")] == ["192.0.2.50"]
    assert found[(zone, "NS")] == [f"ns1.{zone}"]
    assert (zone, "SOA") in found
    assert "node list loaded" in result.stderr, "logs go to stderr, the zone alone to stdout"


def test_the_dump_is_read_only_and_does_not_watch(audited: ControlPlane) -> None:
    # An identity that may only read: every request it makes is attributable in the audit log.
    kubeconfig, user = rk.identity(audited, cluster_rules=[rk.NODE_READER, *rk.SERVICE_READER], roles={})
    result = zone_command(kubeconfig, "--services")
    assert result.returncode == 0, result.stderr

    def requests() -> set[tuple[str, str]]:
        return {
            (event["verb"], event.get("objectRef", {}).get("resource", event.get("requestURI", "")))
            for event in audited.audit_events()
            if event.get("stage") == "ResponseComplete" and event["user"]["username"] == user
        }

    rk.wait_for(lambda: ("list", "endpointslices") in requests(), timeout=5, what="audit events")
    verbs = requests()
    assert {("list", "nodes"), ("list", "services"), ("list", "endpointslices")} <= verbs
    assert {verb for verb, _ in verbs} <= {"get", "list"}, verbs


def test_the_debug_endpoint_serves_the_same_zone(control_plane: ControlPlane) -> None:
    kube = control_plane.kube
    area = rk.unique("debug")
    rk.node(kube, areas=area, ips="192.0.2.9")

    with NodeDns(control_plane.kubeconfig, extra_args=["--debug-endpoints"]) as server:
        rk.converge(server, area, ("NOERROR", ["192.0.2.9"]))
        status, served = server.http_get("/debug/zone")
        dumped = zone_command(control_plane.kubeconfig)

    assert status == 200
    assert dumped.returncode == 0, dumped.stderr
    assert records(served)[(f"{area}.{DEFAULT_ZONE}.", "A")] == ["192.0.2.9"]
    without_soa = lambda text: {k: v for k, v in records(text).items() if k[1] != "SOA"}  # noqa: E731
    assert without_soa(served) == without_soa(dumped.stdout)


def test_the_debug_endpoint_is_off_by_default(control_plane: ControlPlane) -> None:
    with NodeDns(control_plane.kubeconfig) as server:
        status, _ = server.http_get("/debug/zone")
    assert status == 404


def test_an_unreachable_cluster_is_exit_1_with_a_message(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "dead.yaml", "https://127.0.0.1:9", "token")

    result = zone_command(kubeconfig)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "cannot list the cluster" in result.stderr
