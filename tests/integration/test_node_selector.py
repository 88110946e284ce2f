"""--node-selector: only nodes whose labels match are served; the apiserver does the filtering.

Nodes are labelled in and out while node-dns runs: a node that stops matching leaves the zone as
a deleted node does, and comes back when it matches again. The audit log shows the selector on
every node list and watch (server-side, not filtered after the fact), and a bad selector stops
node-dns before it starts, naming the flag.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness.controlplane import REPO_ROOT, ControlPlane
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import AREAS_ANNOTATION, IPS_ANNOTATION, answers, unique, wait_for
from tests.integration.test_zone_dump import zone_command

pytestmark = pytest.mark.controlplane

LABEL = "example.net/serve-dns"
SELECTOR = f"{LABEL}=yes,!example.net/draining"


@dataclass
class Run:
    plane: ControlPlane
    server: NodeDns
    area: str
    inside: str
    outside: str
    draining: str


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with ControlPlane(audit=True) as plane:
        area = unique("area")
        names = {}
        for key, ip, labels in (
            ("inside", "192.0.2.1", {LABEL: "yes"}),
            ("outside", "192.0.2.2", {LABEL: "no"}),
            ("draining", "192.0.2.3", {LABEL: "yes", "example.net/draining": "true"}),
        ):
            names[key] = unique(key)
            plane.create_node(
                names[key], annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: ip}, labels=labels
            )
        with NodeDns(plane.kubeconfig, extra_args=[f"--node-selector={SELECTOR}"]) as server:
            wait_for(lambda: answers(server, area) == {"192.0.2.1"}, timeout=10, what="selected nodes")
            yield Run(plane, server, area, names["inside"], names["outside"], names["draining"])


def test_only_matching_nodes_are_served(run: Run) -> None:
    assert answers(run.server, run.area) == {"192.0.2.1"}


def test_a_node_labelled_in_joins_the_zone(run: Run) -> None:
    run.plane.label(run.outside, {LABEL: "yes"})

    wait_for(lambda: answers(run.server, run.area) == {"192.0.2.1", "192.0.2.2"}, timeout=10, what="joined")
    run.plane.label(run.outside, {LABEL: "no"})
    wait_for(lambda: answers(run.server, run.area) == {"192.0.2.1"}, timeout=10, what="left again")


def test_a_node_that_stops_matching_leaves_like_a_deleted_node(run: Run) -> None:
    run.plane.label(run.inside, {"example.net/draining": "true"})

    wait_for(lambda: answers(run.server, run.area) is None, timeout=10, what="the area gone (NXDOMAIN)")
    run.plane.label(run.inside, {"example.net/draining": None})
    wait_for(lambda: answers(run.server, run.area) == {"192.0.2.1"}, timeout=10, what="back")


def test_the_selector_goes_to_the_apiserver_with_every_node_list_and_watch(run: Run) -> None:
    # node-dns' own client and kopf (its watch); not the harness' client, not the apiserver's own.
    requests = [
        event
        for event in run.plane.audit_events()
        if (event.get("objectRef") or {}).get("resource") == "nodes"
        and event["verb"] in ("list", "watch")
        and (event.get("userAgent") or "").startswith(("Python/", "kopf/"))
    ]
    verbs = {event["verb"] for event in requests}
    selectors = {
        parse_qs(urlsplit(event["requestURI"]).query).get("labelSelector", [""])[0] for event in requests
    }

    assert verbs == {"list", "watch"}
    assert selectors == {SELECTOR}


def test_the_zone_command_lists_only_matching_nodes(run: Run) -> None:
    result = zone_command(run.plane.kubeconfig, f"--node-selector={SELECTOR}")

    assert result.returncode == 0, result.stderr
    assert "192.0.2.1" in result.stdout
    assert "192.0.2.2" not in result.stdout and "192.0.2.3" not in result.stdout


def test_a_bad_selector_stops_node_dns_before_it_starts(run: Run) -> None:
    argv = [sys.executable, "-m", "node_dns", "serve", *NodeDns(run.plane.kubeconfig).argv[4:]]
    argv.append("--node-selector=tier in (web edge)")

    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "node-dns: invalid setting --node-selector (NODE_DNS_NODE_SELECTOR): not a label selector: "
        "expected ',' or ')' in the values of tier, got 'edge'"
    ]
