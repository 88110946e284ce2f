"""Bad input against the real process: annotation values through the apiserver, invalid settings
through the command line and the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import ControlPlane, NodeDns
from tests.harness.nodedns import AREAS_ANNOTATION, DEFAULT_ZONE, IPS_ANNOTATION
from tests.reliability.common import addresses, ask, metric, wait_until
from tests.unit.test_corpus_annotations import AREA_CORPUS, IP_CORPUS

ROOT = Path(__file__).resolve().parents[2]
APISERVER_LIMIT = 200 * 1024  # all annotations of an object must stay under 256 KiB


def _fits(value: str) -> str:
    cut = value.encode()[:APISERVER_LIMIT].decode(errors="ignore")  # the limit is in bytes
    return cut.replace("\x00", "")  # keep the test about parsing, not about NUL in JSON


@pytest.mark.controlplane
def test_bad_annotations_through_the_apiserver_affect_no_other_node(
    control_plane: ControlPlane, unique_name: Callable[[str], str]
) -> None:
    area = unique_name("corpus")
    name = f"{area}.{DEFAULT_ZONE}"
    neighbour = unique_name("good")
    control_plane.create_node(neighbour, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.201"})
    bad_nodes = []
    with NodeDns(control_plane.kubeconfig) as server:
        wait_until(lambda: addresses(ask(server.dns_address, name)) == {"192.0.2.201"}, timeout=10)
        try:
            # one node per bad value, each also carrying one valid entry that must be served
            for index, value in enumerate(AREA_CORPUS.values()):
                node = unique_name("bad-area")
                ip = f"198.51.100.{index + 1}"
                notes = {AREAS_ANNOTATION: _fits(f"{area},{value}"), IPS_ANNOTATION: ip}
                control_plane.create_node(node, annotations=notes)
                bad_nodes.append((node, ip))
            for index, value in enumerate(IP_CORPUS.values()):
                node = unique_name("bad-ip")
                ip = f"203.0.113.{index + 1}"
                notes = {AREAS_ANNOTATION: area, IPS_ANNOTATION: _fits(f"{ip},{value}")}
                control_plane.create_node(node, annotations=notes)
                bad_nodes.append((node, ip))
            expected = {"192.0.2.201"} | {ip for _, ip in bad_nodes}
            # the 'many entries' IP value adds 1,023 addresses: ask over TCP and check a subset
            wait_until(
                lambda: expected <= addresses(ask(server.dns_address, name, tcp=True, timeout=5)),
                timeout=20,
                what="every node's valid entries served",
            )
            # and every bad value once more as a change (MODIFIED events), swapped between nodes
            values = list(AREA_CORPUS.values())
            for (node, _), value in zip(bad_nodes, reversed(values), strict=False):
                control_plane.annotate(
                    node, {"example.net/other": "x", AREAS_ANNOTATION: _fits(f"{area},{value}")}
                )
            wait_until(
                lambda: "192.0.2.201" in addresses(ask(server.dns_address, name, tcp=True, timeout=5)),
                timeout=10,
            )
            assert server.running
            _, text = server.http_get("/metrics")
            skipped = metric(
                text, "node_dns_invalid_annotation_entries_total", f'annotation="{AREAS_ANNOTATION}"'
            )
            assert skipped is not None and skipped > 0
            assert metric(text, "node_dns_dns_internal_errors_total") == 0
            logs = server.logs()
        finally:
            control_plane.delete_nodes([node for node, _ in bad_nodes])
    assert "Traceback" not in logs
    assert max(len(line) for line in logs.splitlines()) < 1000, "a huge value was logged whole"


@pytest.mark.parametrize(
    ("how", "setting", "value"),
    [
        ("flag", "record-ttl", "-1"),
        ("flag", "rrl-slip", "eleven"),
        ("flag", "dns-address", "localhost"),
        ("env", "FAIL_OPEN_MIN_FRACTION", "1.5"),
        ("env", "LOG_JSON", "maybe"),
        ("env", "RRL_EXEMPT", "10.0.0.0/33"),
        ("flag", "kubeconfig", "/nonexistent/kubeconfig"),
    ],
)
def test_invalid_setting_in_the_real_process_exits_2_with_one_line(
    how: str, setting: str, value: str
) -> None:
    argv = [sys.executable, "-m", "node_dns", "serve", "--zone=lb.example.net"]
    argv += ["--nameservers=ns.example.org", "--soa-email=hostmaster@example.net"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_DNS_")}
    if how == "flag":
        argv.append(f"--{setting}={value}")
    else:
        env[f"NODE_DNS_{setting}"] = value
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    named = f"--{setting}" if how == "flag" else f"NODE_DNS_{setting}"
    assert named in lines[0]
    assert result.stdout == ""
