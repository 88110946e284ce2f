"""node-dns is strictly read-only: with a token bound only to get/list/watch on nodes it serves the
zone, logs no 403, and never writes to the cluster (checked in the apiserver's audit log and on
the nodes themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.controlplane import ControlPlane
from tests.harness.logs import denials
from tests.harness.nodedns import NodeDns
from tests.integration.livedns import AREAS_ANNOTATION, IPS_ANNOTATION, answers, node_reader, unique, wait_for

pytestmark = pytest.mark.controlplane

READ_VERBS = {"get", "list", "watch"}


def _fingerprint(node: dict[str, Any]) -> dict[str, Any]:
    meta = node["metadata"]
    return {
        "resourceVersion": meta["resourceVersion"],
        "managedFields": meta.get("managedFields"),
        "annotations": meta.get("annotations"),
        "labels": meta.get("labels"),
        "finalizers": meta.get("finalizers"),
    }


class Run:
    """What one node-dns run against an audited apiserver left behind."""

    def __init__(self, plane: ControlPlane, server: NodeDns, user: str, untouched: dict[str, dict[str, Any]]):
        self.plane, self.server, self.user, self.untouched = plane, server, user, untouched

    def events(self) -> list[dict[str, Any]]:
        return [e for e in self.plane.audit_events() if e.get("user", {}).get("username") == self.user]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    """An audited control plane; node-dns runs through a whole lifecycle of changes, then stops."""
    with ControlPlane(audit=True) as plane:
        kubeconfig, user = node_reader(plane, "readonly")
        area = unique("area")
        quiet = [unique("quiet") for _ in range(3)]
        for name in quiet:
            plane.create_node(name, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.1"})
        busy = unique("busy")
        plane.create_node(busy, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.2"})
        before = {name: _fingerprint(plane.get_node(name)) for name in quiet}

        with NodeDns(kubeconfig) as server:
            wait_for(lambda: answers(server, area) == {"192.0.2.1", "192.0.2.2"}, timeout=5, what="served")
            plane.set_ready(busy, False)
            plane.cordon(busy)
            plane.annotate(busy, {IPS_ANNOTATION: "192.0.2.3"})
            plane.uncordon(busy)
            plane.set_ready(busy, True)
            wait_for(
                lambda: answers(server, area) == {"192.0.2.1", "192.0.2.3"}, timeout=5, what="changes seen"
            )
            late = unique("late")
            plane.create_node(late, annotations={AREAS_ANNOTATION: area, IPS_ANNOTATION: "192.0.2.4"})
            wait_for(lambda: "192.0.2.4" in (answers(server, area) or ()), timeout=5, what="late node")
            plane.delete_node(late)
            wait_for(lambda: "192.0.2.4" not in (answers(server, area) or ()), timeout=5, what="delete")
            server.stop()
            yield Run(plane, server, user, before)


def test_controller_serves_with_node_read_only_token(run: Run) -> None:
    assert run.events(), "the audit log shows no request by node-dns' ServiceAccount"


def test_controller_makes_only_read_requests(run: Run) -> None:
    verbs = {event["verb"] for event in run.events()}

    assert verbs <= READ_VERBS, verbs


def test_controller_reads_only_nodes_and_discovery(run: Run) -> None:
    resources = {
        (event.get("objectRef") or {}).get("resource")
        for event in run.events()
        if event.get("objectRef") is not None
    }

    assert resources <= {"nodes"}, resources


def test_controller_gets_no_403(run: Run) -> None:
    denied = [
        (event["verb"], event["requestURI"])
        for event in run.events()
        if (event.get("responseStatus") or {}).get("code") == 403
    ]

    assert denied == []


def test_controller_logs_no_forbidden_and_no_error(run: Run) -> None:
    text = run.server.logs()

    assert denials(text) == []
    assert " ERROR " not in text


def test_untouched_nodes_are_unchanged(run: Run) -> None:
    after = {name: _fingerprint(run.plane.get_node(name)) for name in run.untouched}

    assert after == run.untouched


def test_no_node_carries_kopf_annotations_or_finalizers(run: Run) -> None:
    for node in run.plane.list_nodes():
        meta = node["metadata"]
        assert not any("kopf" in key for key in meta.get("annotations") or {}), meta["name"]
        assert not meta.get("finalizers"), meta["name"]
        managers = {entry.get("manager") for entry in meta.get("managedFields") or ()}
        assert not any("kopf" in str(m) or "node-dns" in str(m) or "python" in str(m) for m in managers)


def test_controller_exits_cleanly_on_sigterm(run: Run) -> None:
    assert run.server.returncode == 0
